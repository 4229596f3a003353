"""Checking one call's output against both oracles, in PrairieLearn's order.

None -> type -> shape -> finite -> values. A case passes when the output, as float64,
has exactly the expected shape, is finite, and agrees with the reference and with
finite differences entrywise: |got - expected| <= atol + rtol * max|expected|, the
scale being the output's largest entry (the finite-difference comparison skips
entries at a kink and uses its own tolerances). The report also records
CS231n's relative error, max |a - b| / max(1e-8, |a| + |b|), for each case.

Messages for hidden cases never quote inputs, expected values or the submission's
exception text (which could echo inputs); visible cases get a compact diff.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from grader.assignment.rubric import Equation, Settings, Tolerance
from grader.grading.cases import Case
from grader.sandbox.outcomes import CallOutcome, CallStatus


class CaseStatus(enum.Enum):
    PASSED = "passed"
    SHAPE_CREDIT = "shape_credit"
    WRONG_SHAPE = "wrong_shape"
    WRONG_VALUES = "wrong_values"
    NOT_FINITE = "not_finite"
    BAD_RETURN = "bad_return"
    ERROR = "error"
    TIMEOUT = "timeout"
    CRASHED = "crashed"
    MISSING = "missing"
    NOT_IMPLEMENTED = "not_implemented"
    FORBIDDEN = "forbidden_import"
    SKIPPED = "skipped"


CALL_TO_CASE = {
    CallStatus.EXCEPTION: CaseStatus.ERROR,
    CallStatus.IMPORT_ERROR: CaseStatus.ERROR,
    CallStatus.MEMORY: CaseStatus.ERROR,
    CallStatus.EXITED: CaseStatus.ERROR,
    CallStatus.PROTOCOL: CaseStatus.ERROR,
    CallStatus.BAD_RETURN: CaseStatus.BAD_RETURN,
    CallStatus.TIMEOUT: CaseStatus.TIMEOUT,
    CallStatus.CRASHED: CaseStatus.CRASHED,
    CallStatus.MISSING: CaseStatus.MISSING,
    CallStatus.NOT_IMPLEMENTED: CaseStatus.NOT_IMPLEMENTED,
}


# numpy's words for operands whose shapes don't multiply or broadcast
SHAPE_MISMATCH_MARKERS = ("mismatch in its core dimension", "not aligned", "could not be broadcast")


@dataclass(frozen=True)
class CheckResult:
    """The verdict on one case, with what the student (and the instructor) may see."""

    index: int
    visible: bool
    status: CaseStatus
    credit: float
    message: str
    got_shape: tuple[int, ...] | None = None
    expected_shape: tuple[int, ...] | None = None
    max_abs_error: float | None = None
    relative_error: float | None = None
    fd_max_abs_error: float | None = None
    oracle_disagreement: str | None = None
    diff: tuple[dict, ...] = ()
    mutated: tuple[str, ...] = ()
    elapsed: float = 0.0
    value: np.ndarray | None = None


def wrong_entries(got: np.ndarray, expected: np.ndarray, tol: Tolerance) -> np.ndarray:
    """True where |got - expected| > atol + rtol * max|expected| (NaN counts as wrong).

    The scale is the whole output's largest entry, not each entry's own size: an entry
    that is near zero by cancellation carries the rounding error of its large terms, so
    an entrywise relative test would fail correct float32 (or merely reordered) code on
    some seeds and not others.
    """
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return ~(np.abs(got - expected) <= tol.atol + tol.rtol * scale)


def within(got: np.ndarray, expected: np.ndarray, tol: Tolerance, mask: np.ndarray | None = None) -> bool:
    wrong = wrong_entries(got, expected, tol)
    return not bool(np.any(wrong if mask is None else wrong[mask]))


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """CS231n's relative error: max |a - b| / max(1e-8, |a| + |b|)."""
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - expected) / np.maximum(1e-8, np.abs(got) + np.abs(expected))))


def squeeze_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def first_differences(got: np.ndarray, expected: np.ndarray, tol: Tolerance, limit: int = 3) -> tuple[dict, ...]:
    wrong = np.argwhere(wrong_entries(got, expected, tol))
    return tuple(
        {"index": [int(i) for i in idx], "expected": float(expected[tuple(idx)]), "got": float(got[tuple(idx)])}
        for idx in wrong[:limit]
    )


def describe_call_fault(outcome: CallOutcome, function: str, hidden: bool) -> str:
    """A student-facing sentence for a call that produced no array."""
    where = outcome.where or {}
    at = f" at line {where['lineno']}" if where.get("lineno") else ""
    code = f": `{where['line']}`" if where.get("line") else ""
    status = outcome.status
    if status == CallStatus.NOT_IMPLEMENTED:
        return f"{function} is not implemented yet (it raises NotImplementedError)"
    if status == CallStatus.EXCEPTION:
        text = "" if hidden or not outcome.message else f" ({outcome.message})"
        lead = ""
        if any(marker in (outcome.message or "") for marker in SHAPE_MISMATCH_MARKERS):
            lead = (
                "; the operands' shapes don't fit together: write down the shape of each factor and check "
                "which one needs a transpose (the shape convention)"
            )
        return f"{function} raised {outcome.error_type}{text}{at}{code}{lead}"
    if status == CallStatus.MEMORY:
        return f"{function} ran out of memory{at}{code}"
    if status == CallStatus.BAD_RETURN:
        return f"{function} {outcome.message}"
    if status == CallStatus.IMPORT_ERROR:
        text = f": {outcome.message}" if outcome.message else ""
        return f"the file could not be imported, {outcome.error_type}{text}{at}{code}"
    return outcome.message or f"{function} failed ({status.value})"


def shape_lead(got: np.ndarray | None, got_shape: tuple[int, ...], case: Case) -> str:
    """What a wrong shape suggests: a transposed result, a lost axis, or the wrong rank."""
    want = case.expected.shape
    if got is not None and len(want) == 2 and got_shape == want[::-1] and np.allclose(got.T, case.expected):
        return ": the values are right but transposed"
    if squeeze_shape(got_shape) == squeeze_shape(want):
        return ": the shape differs only in axes of size 1, but the values are wrong too"
    if len(got_shape) != len(want):
        return f": expected a {len(want)}-d array"
    return ""


def plausible_shape(got_shape: tuple[int, ...], case: Case) -> bool:
    """Is a shape made only of this case's own dimensions (and 1s)?

    Only such shapes are quoted for hidden cases: any other shape is chosen by the
    submission and could smuggle a hidden input out through the feedback.
    """
    allowed = {1, *case.dims.values()}
    return len(got_shape) <= len(case.expected.shape) + 1 and all(d in allowed for d in got_shape)


def check_case(equation: Equation, case: Case, outcome: CallOutcome, settings: Settings) -> CheckResult:
    """The verdict on one call: None -> type -> shape -> finite -> values against both oracles."""
    hidden = not case.visible
    common = {
        "index": case.index,
        "visible": case.visible,
        "expected_shape": case.expected.shape,
        "mutated": outcome.mutated,
        "elapsed": outcome.elapsed,
    }
    name = equation.function
    if outcome.status != CallStatus.OK:
        status = CALL_TO_CASE.get(outcome.status, CaseStatus.ERROR)
        return CheckResult(status=status, credit=0.0, message=describe_call_fault(outcome, name, hidden), **common)
    got_shape = tuple(outcome.shape or ())
    want = case.expected.shape
    got = outcome.value
    if hidden and not plausible_shape(got_shape, case):
        return CheckResult(
            status=CaseStatus.WRONG_SHAPE,
            credit=0.0,
            message=f"{name} returned a {len(got_shape)}-d array of another shape, expected {want}",
            **common,
        )
    credit, status, shape_note = 1.0, CaseStatus.PASSED, ""
    if got_shape != want:
        squeezable = squeeze_shape(got_shape) == squeeze_shape(want)
        if squeezable and got is not None and within(got.reshape(want), case.expected, settings.tolerance):
            got = got.reshape(want)
            credit, status = settings.shape_credit, CaseStatus.SHAPE_CREDIT
            shape_note = (
                f"{name} returned shape {got_shape}, expected {want}: the gradient has the shape of "
                "the parameter (the shape convention)"
            )
        else:
            return CheckResult(
                status=CaseStatus.WRONG_SHAPE,
                credit=0.0,
                got_shape=got_shape,
                message=f"{name} returned shape {got_shape}, expected {want}{shape_lead(got, got_shape, case)}",
                value=got,
                **common,
            )
    if not np.all(np.isfinite(got)):
        return CheckResult(
            status=CaseStatus.NOT_FINITE,
            credit=0.0,
            got_shape=got_shape,
            message=f"{name} returned NaN or infinite entries",
            **common,
        )
    agrees_ref = within(got, case.expected, settings.tolerance)
    agrees_fd = within(got, case.fd_expected, settings.fd_tolerance, case.fd_mask)
    measures = {
        "max_abs_error": float(np.max(np.abs(got - case.expected))) if got.size else 0.0,
        "relative_error": relative_error(got, case.expected),
        "fd_max_abs_error": float(np.max(np.abs(got - case.fd_expected)[case.fd_mask])) if case.fd_mask.any() else 0.0,
    }
    disagreement = None
    # Entries at a kink are the reference's call (the quiz's convention), not a disagreement.
    # and a miss smaller than the finite-difference tolerance is precision, not a disagreement.
    agrees_ref_off_kinks = within(got, case.expected, settings.fd_tolerance, case.fd_mask)
    if agrees_ref and not agrees_fd:
        disagreement = "matches the reference but not finite differences"
    elif agrees_fd and not agrees_ref_off_kinks:
        disagreement = "matches finite differences but not the reference"
    if agrees_ref and agrees_fd:
        kept = outcome.value if status == CaseStatus.SHAPE_CREDIT else None  # for naming the mistake
        return CheckResult(
            status=status, credit=credit, message=shape_note, got_shape=got_shape, value=kept, **measures, **common
        )
    diff = () if hidden else first_differences(got, case.expected, settings.tolerance)
    message = f"{name} returned wrong values"
    if disagreement:
        message = (
            f"{name}'s answer {disagreement}: this may be a convention question or a bug in the "
            "reference; it has been flagged for your instructor"
        )
    return CheckResult(
        status=CaseStatus.WRONG_VALUES,
        credit=0.0,
        message=message,
        got_shape=got_shape,
        oracle_disagreement=disagreement,
        diff=diff,
        value=got,
        **measures,
        **common,
    )
