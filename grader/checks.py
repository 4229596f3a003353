"""Checking one call's output against both oracles, in PrairieLearn's order.

None -> type -> shape -> finite -> values. A case passes when the output, as float64,
has exactly the expected shape, is finite, and agrees with the reference and with
finite differences entrywise: |got - expected| <= atol + rtol * |expected| (numpy's
``allclose`` measure, with the rubric's tolerances; the finite-difference comparison
skips entries at a kink and uses its own, looser tolerances). The report also records
CS231n's relative error, max |a - b| / max(1e-8, |a| + |b|), for each case.

Messages for hidden cases never quote inputs, expected values or the submission's
exception text (which could echo inputs); visible cases get a compact diff.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from grader.cases import Case
from grader.rubric import Equation, Settings, Tolerance
from grader.sandbox import CallOutcome, CallStatus


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


def within(got: np.ndarray, expected: np.ndarray, tol: Tolerance, mask: np.ndarray | None = None) -> bool:
    close = np.abs(got - expected) <= tol.atol + tol.rtol * np.abs(expected)
    return bool(np.all(close if mask is None else close[mask]))


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """CS231n's relative error: max |a - b| / max(1e-8, |a| + |b|)."""
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - expected) / np.maximum(1e-8, np.abs(got) + np.abs(expected))))


def squeeze_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def first_differences(got: np.ndarray, expected: np.ndarray, tol: Tolerance, limit: int = 3) -> tuple[dict, ...]:
    wrong = np.argwhere(~(np.abs(got - expected) <= tol.atol + tol.rtol * np.abs(expected)))
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
        return f"{function} raised {outcome.error_type}{text}{at}{code}"
    if status == CallStatus.MEMORY:
        return f"{function} ran out of memory{at}{code}"
    if status == CallStatus.BAD_RETURN:
        return f"{function} {outcome.message}"
    if status == CallStatus.IMPORT_ERROR:
        text = f": {outcome.message}" if outcome.message else ""
        return f"the file could not be imported, {outcome.error_type}{text}{at}{code}"
    return outcome.message or f"{function} failed ({status.value})"


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
    if outcome.value is None:
        hint = ""
        if squeeze_shape(got_shape) == squeeze_shape(want):
            hint = ": check which axes have size 1"
        elif len(got_shape) != len(want):
            hint = f": expected a {len(want)}-d array"
        return CheckResult(
            status=CaseStatus.WRONG_SHAPE,
            credit=0.0,
            got_shape=got_shape,
            message=f"{name} returned shape {got_shape}, expected {want}{hint}",
            **common,
        )
    got = outcome.value
    if not np.all(np.isfinite(got)):
        return CheckResult(
            status=CaseStatus.NOT_FINITE,
            credit=0.0,
            got_shape=got_shape,
            message=f"{name} returned NaN or infinite entries",
            **common,
        )
    credit, status, shape_note = 1.0, CaseStatus.PASSED, ""
    if got_shape != want:
        if squeeze_shape(got_shape) == squeeze_shape(want):
            got = got.reshape(want)
            credit, status = settings.shape_credit, CaseStatus.SHAPE_CREDIT
            shape_note = (
                f"{name} returned shape {got_shape}, expected {want}: the gradient has the shape of "
                "the parameter (the shape convention)"
            )
        else:
            transposed = (
                len(got_shape) == 2 and got_shape == want[::-1] and within(got.T, case.expected, settings.tolerance)
            )
            lead = ": the values are right but transposed" if transposed else ""
            return CheckResult(
                status=CaseStatus.WRONG_SHAPE,
                credit=0.0,
                got_shape=got_shape,
                message=f"{name} returned shape {got_shape}, expected {want}{lead}",
                value=got,
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
    agrees_ref_off_kinks = within(got, case.expected, settings.tolerance, case.fd_mask)
    if agrees_ref and not agrees_fd:
        disagreement = "matches the reference but not finite differences"
    elif agrees_fd and not agrees_ref_off_kinks:
        disagreement = "matches finite differences but not the reference"
    if agrees_ref and agrees_fd:
        return CheckResult(status=status, credit=credit, message=shape_note, got_shape=got_shape, **measures, **common)
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
