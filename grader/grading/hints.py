"""The words of a diagnosis: a named mistake, or a lead drawn from the student's own outputs.

``feedback`` words how a call went; this module words what ``diagnosis`` established
about an equation's wrong answers, and what ``shapes.mismatch_facts`` established from
the shapes numpy quoted when a visible call raised, under the same hidden-case rule (see
``feedback``):
a lead is a fixed category chosen from what the outputs show, and a number the
submission's answer determines (a factor, a size it raised on) is quoted only from a
visible case. A hint is said only when its condition held on this submission's
outputs; otherwise the lead stays general, and true.
"""

from __future__ import annotations

# numpy's words for factors of a matrix product that don't fit, and for operands that don't broadcast
MATMUL_MARKERS = ("mismatch in its core dimension", "not aligned")
BROADCAST_MARKERS = ("could not be broadcast", "non-broadcastable")
SHAPE_MISMATCH_MARKERS = MATMUL_MARKERS + BROADCAST_MARKERS
MISMATCH_LEADS = {
    "matmul": (
        "; the factors of a matrix product don't fit together: write down the shape of each factor and "
        "check their order and whether one needs a transpose (the shape convention)"
    ),
    "matmul_hidden": "; the factors of a matrix product don't fit together: write down the shape of each factor",
    "broadcast": (
        "; the operands of an elementwise operation have shapes that don't broadcast together: write down "
        "the shape of each operand and check how numpy lines them up (from the last axis)"
    ),
    # Established on a visible case from the shapes numpy quoted (``shapes.mismatch_facts``).
    "stray_size": (
        "; an operand has size {size}, which is none of this case's dimensions ({dims}): check for a size "
        "written as a number instead of taken from an input's shape"
    ),
    "two_vectors": (
        "; two 1-d arrays of lengths {first} and {second} meet in an elementwise operation: to combine them "
        "into a grid, give one of them a new axis (e.g. `v[:, None]`)"
    ),
    "vector_on_rows": (
        "; a 1-d array of length {length} meets an array of shape {shape}: numpy lines a 1-d array up with "
        "the last axis, so to line it up with the rows give it a new axis (e.g. `v[:, None]`)"
    ),
}
LABELS_NOTE = " (the labels {labels} have that length: they hold one class index per row, not one-hot rows)"

# The relation of an input to its kink value (``diagnosis.kink_regions``), in words.
REGION_WORDS = {
    frozenset({"below"}): "< {at}",
    frozenset({"at"}): "= {at} exactly",
    frozenset({"above"}): "> {at}",
    frozenset({"below", "at"}): "≤ {at}",
    frozenset({"at", "above"}): "≥ {at}",
    frozenset({"below", "above"}): "≠ {at}",
}
AXIS_LEADS = {
    "rows": "only some rows are wrong: check the indexing along the first axis",
    "columns": "only some columns are wrong: check the indexing along the second axis",
    "none": "the values differ in a way without a simple pattern; recheck each step of the derivation",
}


def likely_mistake(hint: str) -> str:
    return f"Likely mistake: {hint}"


def lead(words: str, label: str) -> str:
    return f"Lead: {words} (see {label})."


def factor_lead(kind: str, batch: str | None = None, factor: float | None = None) -> str:
    """got = c * expected, by category; the factor itself only when a visible case shows it."""
    if kind == "opposite_sign":
        return "your answer has the right size but the opposite sign: check the sign of each term"
    if kind == "over_batch":
        return f"your answer is the right one divided by the batch size {batch}: check whether you averaged where the equation sums"
    if kind == "over_minus_batch":
        return f"your answer is the right one divided by -{batch}: check the sign, and whether you averaged where the equation sums"
    if kind == "zero":
        return "your answer is zero everywhere the right one is not: check that you fill in and return the array you compute"
    if kind == "constant":
        of = "" if factor is None else f" of {factor:.4g}"
        return f"your answer is off by a constant factor{of}: check for an extra scale factor"
    return "your answer is a multiple of the right one, by a factor that changes from case to case"


PRECISION_WORDS = {
    "float16": "every entry is a float16 number, and float16 keeps only about 3 significant digits",
    "float32": (
        "every entry is a float32 number: float32 keeps about 7 significant digits, and this computation "
        "loses some of them (e.g. by subtracting nearly equal numbers)"
    ),
    "rounded": "every entry is rounded to {decimals} decimals",
    "other": "the numbers lose precision somewhere",
}


def precision_lead(kind: str, decimals: int | None = None) -> str:
    """Right up to rounding, with what the values show about where the digits went."""
    # how many decimals is the submission's number: quoted from a visible case only
    why = PRECISION_WORDS[kind].format(decimals=decimals if decimals is not None else "a fixed number of")
    fix = "return the values unrounded" if kind == "rounded" else "keep the computation in float64"
    return (
        f"your answer agrees with the expected one up to rounding but not to the grading tolerance, so the "
        f"formula looks right: {why}; {fix}"
    )


def region_lead(name: str, at: float, regions: frozenset[str]) -> str:
    """Only the entries where the input is on one side of (or at) its kink are wrong."""
    where = REGION_WORDS[regions].format(at=f"{at:g}")
    return (
        f"only the entries where {name} {where} are wrong, the others are right: check what your "
        f"condition on {name} does there"
    )


def label_lead(labels: str, only_there: bool) -> str:
    if only_there:
        return (
            f"only the entries at each row's true class (given by {labels}) are wrong: check what happens at the label"
        )
    return f"the entries at each row's true class (given by {labels}) are right but others are wrong"


def layout_lead(kind: str) -> str:
    """The right numbers in the wrong places."""
    if kind == "reshaped_transpose":
        return (
            "your values are right but laid out in the wrong order: it looks like a reshape where a "
            "transpose was needed (`.reshape` keeps the order of the entries, `.T` swaps the axes)"
        )
    return "your answer holds the right values but in the wrong positions: check how you index or arrange them"


def hidden_only_lead(failed: int, other_shapes: bool) -> str:
    """Right on every visible case, wrong on hidden ones: no hidden shape or value is quoted."""
    cases = "a hidden case" if failed == 1 else f"{failed} hidden cases"
    shapes = " whose sizes differ from the visible case's" if other_shapes else ""
    return (
        f"your answer is right on the visible case but not on {cases}{shapes}: look for a step that depends "
        "on the sizes, such as a size written as a number or code that assumes a particular shape"
    )


def mismatch_lead(message: str, facts: tuple[str, dict] | None, visible: bool) -> str:
    """What a shape mismatch suggests: a fact established on a visible case, else numpy's category.

    A transpose is suggested only where the student can see the shapes: on a hidden case
    the factors may not fit for a reason that has nothing to do with their order (a size
    written as a number that happens to fit the visible case)."""
    if facts is not None:
        kind, values = facts
        words = MISMATCH_LEADS[kind].format(**values)
        return words + (LABELS_NOTE.format(**values) if values.get("labels") else "")
    if any(m in message for m in MATMUL_MARKERS):
        return MISMATCH_LEADS["matmul" if visible else "matmul_hidden"]
    if any(m in message for m in BROADCAST_MARKERS):
        return MISMATCH_LEADS["broadcast"]
    return ""


# -- tuple returns, dict side effects and setup calls ---------------------------------
# (call faults, worded like ``feedback.call_fault``'s under the same hidden-case rule: the
# number of values a hidden call returned is the submission's choice and is not repeated)


def expected_values(slots: tuple[str, ...]) -> str:
    return f"{len(slots)} values ({', '.join(slots)})"


def tuple_fault(function: str, problem: str, detail: str, slots: tuple[str, ...], hidden: bool) -> str:
    """A return that is not the tuple the item expects."""
    want = expected_values(slots)
    if problem == "arity" and not hidden and detail.isdigit():
        count = int(detail)
        return (
            f"{function} returned {count} value{'s' if count != 1 else ''}, expected {len(slots)} ({', '.join(slots)})"
        )
    if problem == "not_tuple" and not hidden and detail:
        return f"{function} returned {detail}, expected a tuple of {want}"
    return f"{function} did not return a tuple of {want}"


def missing_entry(function: str, argument: str, key: str) -> str:
    """A call that left nothing under ``key`` in its dict argument."""
    return f"{function} left no {key!r} in {argument}; it must store it there (creating it when absent)"


def setup_fault(setup_function: str, function: str, needed: tuple[str, ...], fault: str) -> str:
    """A setup call failed, so the graded call never ran: the blame goes to the setup function.

    ``fault`` is ``feedback.call_fault``'s sentence for the setup call itself.
    """
    if setup_function == function:
        return f"an earlier call of {function} on the same inputs failed, so this one was not graded: {fault}"
    what = " and ".join(needed) if needed else "its result"
    return f"fix {setup_function} first: its {what} {'is' if len(needed) <= 1 else 'are'} needed to grade {function}; {fault}"
