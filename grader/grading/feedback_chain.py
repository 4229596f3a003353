"""Every sentence a student reads about an item with several outputs (an end-to-end check).

The outputs, the functions that make them and the items that grade those functions
are the rubric's names, so they may be said for a hidden case too; what an output's
own answer was is worded by ``feedback_verdicts`` under the hidden-case rule before it
reaches these sentences, which only join them.
"""

from __future__ import annotations

from collections.abc import Sequence

WHOLE = "the chained backward pass"  # the subject of a fault no single call can be blamed for


def listing(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def disagreeing(failing: Sequence[tuple[str, str]], total: int) -> str:
    """Which outputs of the whole sequence are wrong, each with its own verdict."""
    which = listing([name for name, _ in failing])
    verb = "disagrees" if len(failing) == 1 else "disagree"
    details = "; ".join(f"{name}: {message}" for name, message in failing)
    return f"chained together, {len(failing)} of {total} outputs are wrong ({which} {verb}) — {details}"


def shape_credited(names: Sequence[str], verdicts: Sequence[tuple[str, object]]) -> str:
    messages = dict(verdicts)
    return "; ".join(f"{name}: {messages[name].message}" for name in names)


def unread(function: str) -> str:
    return f"{function}'s output was not compared: the outputs sent back together were far larger than expected"


def output_fault(output: str, fault: str) -> str:
    """An output the child could not send (not an array of numbers)."""
    return f"chained together, {output} could not be graded: {fault}"


def stopped(function: str, fault: str) -> str:
    """A call of the sequence failed, so nothing came back."""
    return f"chained together, the backward pass stopped at {function}: {fault}"


def fix_pieces_first(functions: Sequence[str], items: Sequence[str]) -> str:
    """Some piece failed its own item: the whole can't be right before it is."""
    were = "does" if len(functions) == 1 else "do"
    return (
        f"{listing(functions)} {were} not pass on {'its' if len(functions) == 1 else 'their'} own "
        f"({listing(items)}): fix {'it' if len(functions) == 1 else 'them'} first, and this check follows."
    )


def convention_mismatch(functions: Sequence[str], outputs: Sequence[str]) -> str:
    """Every piece passed on its own, yet the whole disagrees: the pieces don't share a convention."""
    where = f" at {listing(outputs)}" if outputs else ""
    return (
        f"Every function it chains ({listing(functions)}) passed on its own, yet together they go wrong{where}: "
        "a convention mismatch between the pieces. Look for a function that is right alone but assumes "
        "something the others don't: a list returned where the next function takes an array, a returned "
        "array that a later call overwrites (a shared buffer or a view of module-level memory), or state "
        "kept between calls."
    )
