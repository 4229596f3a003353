"""Every sentence a student reads about a returned answer's verdict, and an equation's summary line.

The checks and the diagnosis report verdicts, measures and categories (a wrong shape
and its lead, values off, NaN, a second call that disagreed, low-precision rounding,
inputs edited in place); this module words them, and ``case_fields`` keeps a hidden
case's report free of anything its answer chose. It applies the hidden-case rule as
``feedback.py`` states it (that module words the sandbox's codes about a call that
produced no array): for a hidden case, only the grader's own words, the expected shape,
counts and fixed categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from grader.grading.feedback import NOT_GRADED

if TYPE_CHECKING:
    from grader.grading.checks import CheckResult

SHAPE_LEADS = {
    "transposed": ": the values are right but transposed",
    "size_one_axes": ": the shape differs only in axes of size 1, but the values are wrong too",
}
# The report fields of a case whose values come from what the submission returned: a
# hidden case carries none of them (``case_fields``).
SUBMISSION_FIELDS = ("got_shape", "max_abs_error", "relative_error", "fd_max_abs_error")


# -- one returned array -------------------------------------------------------------------------


def wrong_shape(function: str, got: tuple[int, ...], want: tuple[int, ...], lead: str | None, hidden: bool) -> str:
    """A wrong shape: quoted for a visible case; for a hidden one only the expected shape and a category."""
    words = SHAPE_LEADS.get(lead or "", f": expected a {len(want)}-d array" if lead == "rank" else "")
    if hidden:
        return f"{function} returned an array of another shape, expected {want}{words}"
    return f"{function} returned shape {got}, expected {want}{words}"


def shape_credit(
    function: str, got: tuple[int, ...], want: tuple[int, ...], hidden: bool, gradient: bool = True
) -> str:
    """Right values in a shape off by size-1 axes. ``gradient``: the answer is a gradient (the item
    has finite differences); otherwise it is a value (a forward's output, a loss, a running statistic)."""
    what = "a shape that differs only in axes of size 1" if hidden else f"shape {got}"
    if gradient:
        why = "the gradient has the shape of the parameter"
    elif want == ():
        why = "a scalar is a single number, not an array"
    else:
        why = "the value has exactly the shape the assignment states"
    return f"{function} returned {what}, expected {want}: {why} (the shape convention)"


def not_finite(function: str) -> str:
    return f"{function} returned NaN or infinite entries"


def wrong_values(function: str, disagreement: str | None) -> str:
    if disagreement:
        return (
            f"{function}'s answer {disagreement}: this may be a convention question or a bug in the "
            "reference; it has been flagged for your instructor"
        )
    return f"{function} returned wrong values"


def value_fault(kind: str, function: str) -> str:
    """What a second call or the precision check found, by fixed category (safe for hidden cases).

    ``nondeterministic``: two calls on the same inputs returned different values;
    ``second_call_failed``: the second one returned nothing; ``float16`` / ``rounding``:
    right up to low-precision rounding. No input, value or factor is quoted.
    """
    if kind in ("nondeterministic", "second_call_failed"):
        what = (
            "returned different values on two calls with the same inputs"
            if kind == "nondeterministic"
            else "returned an answer on a first call but not on a second one with the same inputs"
        )
        return (
            f"{function} {what}: a gradient is a function of its inputs, so look for randomness or for state "
            "kept between calls (a global, a default argument, an attribute)"
        )
    if kind == "float16":
        return (
            f"{function} is right up to rounding in float16: compute in float64 (or float32), e.g. don't cast "
            "to np.float16 or build arrays with dtype=np.float16"
        )
    if kind == "rounding":
        return (
            f"{function} is right only up to rounding, of about 1e-4 of the inputs' size, as in float16: compute in "
            "float64 (or float32), and look for a value cast to a smaller type or a rounded constant"
        )
    raise ValueError(f"no wording for {kind!r}")


def case_fields(check: CheckResult) -> dict:
    """The report fields of a case that come from the submission's answer; a hidden case carries none."""
    if not check.visible:
        fields = dict.fromkeys(SUBMISSION_FIELDS)
        fields.update(oracle_disagreement=check.oracle_disagreement, mutated_inputs=[], mutated=bool(check.mutated))
        return fields
    return {
        "got_shape": None if check.got_shape is None else list(check.got_shape),
        "max_abs_error": check.max_abs_error,
        "relative_error": check.relative_error,
        "fd_max_abs_error": check.fd_max_abs_error,
        "oracle_disagreement": check.oracle_disagreement,
        "mutated_inputs": list(check.mutated),
        "mutated": bool(check.mutated),
    }


# -- an equation ------------------------------------------------------------------------------


def summary(total: int, passed: int, credited: int, messages: Sequence[str], counted: bool) -> str:
    """One sentence: how many cases passed, then the most useful case message (``messages`` come best first).

    A file that never imported gets the case's one message alone: the count would add nothing.
    """
    if passed == total:
        return f"All {total} cases passed."
    lead = messages[0] if messages else "some cases were not run"
    never_ran = passed == 0 and all(m.startswith(NOT_GRADED) for m in messages)
    if not counted or never_ran:
        return f"{lead}."
    count = f"{passed} of {total} cases passed"
    if credited:
        count += f", {credited} earned shape credit"
    return f"{count}: {lead}."


def mutation_warning(function: str, visible_names: Sequence[str], penalty: float) -> str:
    """In-place edits: the inputs are named from visible cases only; a hidden case adds only the category."""
    if visible_names:
        names = ", ".join(visible_names)
        words = (
            f" Warning: {function} changed its input {names} in place; work on a copy "
            f"(e.g. `{visible_names[0]}.copy()`) so the caller's array is left as it was."
        )
    else:
        words = (
            f" Warning: {function} changed an input in place on a hidden case; work on a copy "
            "(e.g. `x = x.copy()`) so the caller's array is left as it was."
        )
    if penalty:
        words += f" This costs {penalty:.0%} of the points."
    return words
