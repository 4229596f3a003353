"""Checking one call's output against both oracles, in PrairieLearn's order.

None -> type -> shape -> finite -> values. A case passes when the output, as float64,
has exactly the expected shape, is finite, and agrees with the reference and with
finite differences entrywise: |got - expected| <= atol + rtol * scale, the scale being
the case's magnitude, the largest entry of the answer or of a real-valued argument
(``Case.scale``; the finite-difference comparison skips entries at a kink and uses its
own tolerances). The report also records
CS231n's relative error, max |a - b| / max(1e-8, |a| + |b|), for each case.

This module decides; ``feedback`` words the verdict, applying the rule of what a
hidden case may say. A verdict keeps every fact (the shape returned, the measures, the
inputs edited) for scoring and for naming the mistake; visible cases also get a compact
diff.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from grader.assignment.rubric import Equation, Settings, Tolerance
from grader.grading import feedback, feedback_verdicts, hints
from grader.grading.case import Case
from grader.grading.shapes import mismatch_facts, shape_lead, squeeze_shape
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
    NONDETERMINISTIC = "nondeterministic"


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
    CallStatus.NOT_RUN: CaseStatus.SKIPPED,  # the submission's time limit, or a child that kept dying: feedback says
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
    parts: tuple[tuple[str, CheckResult], ...] = ()  # an item with outputs: each output's own verdict


def wrong_entries(got: np.ndarray, expected: np.ndarray, tol: Tolerance, scale: float | None = None) -> np.ndarray:
    """True where |got - expected| > atol + rtol * scale (NaN counts as wrong).

    The scale is one number for the whole output, by default its largest entry, and in
    grading the case's magnitude (``Case.scale``), never each entry's own size: an entry
    near zero by cancellation carries the rounding error of the large terms it came
    from, so an entrywise (or output-only) relative test would fail correct float32
    code on some seeds and not others.
    """
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return ~(np.abs(got - expected) <= tol.atol + tol.rtol * scale)


def within(
    got: np.ndarray,
    expected: np.ndarray,
    tol: Tolerance,
    mask: np.ndarray | None = None,
    scale: float | None = None,
) -> bool:
    wrong = wrong_entries(got, expected, tol, scale)
    return not bool(np.any(wrong if mask is None else wrong[mask]))


# A half-unit in the last place of float16, with a margin for the few roundings a
# gradient of small matrices goes through: agreement to this and no better, in numbers
# float16 can hold, is float16 precision. Closer than ROUNDING_RTOL, in other numbers,
# is rounding of another kind.
FLOAT16_RTOL = 2.0**-11 * 16
ROUNDING_RTOL = 1e-3


def rounding_kind(got: np.ndarray, expected: np.ndarray, scale: float) -> str | None:
    """``"float16"`` when wrong answers are right up to float16 rounding, ``"rounding"`` when close
    to that without being float16 numbers; None for a real error."""
    if got.shape != expected.shape or not got.size or not np.all(np.isfinite(got)):
        return None
    if not within(got, expected, Tolerance(rtol=FLOAT16_RTOL, atol=0.0), scale=scale):
        return None
    with np.errstate(over="ignore"):
        if np.array_equal(got.astype(np.float16).astype(np.float64), got):
            return "float16"
    return "rounding" if within(got, expected, Tolerance(rtol=ROUNDING_RTOL, atol=0.0), scale=scale) else None


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """CS231n's relative error: max |a - b| / max(1e-8, |a| + |b|)."""
    if got.size == 0:
        return 0.0
    return float(np.max(np.abs(got - expected) / np.maximum(1e-8, np.abs(got) + np.abs(expected))))


def first_differences(
    got: np.ndarray, expected: np.ndarray, tol: Tolerance, limit: int = 3, scale: float | None = None
) -> tuple[dict, ...]:
    wrong = np.argwhere(wrong_entries(got, expected, tol, scale))
    return tuple(
        {"index": [int(i) for i in idx], "expected": float(expected[tuple(idx)]), "got": float(got[tuple(idx)])}
        for idx in wrong[:limit]
    )


def check_case(
    equation: Equation,
    case: Case,
    outcome: CallOutcome,
    settings: Settings,
    others: Sequence[str] = (),
    placement: tuple[str, str] | None = None,
) -> CheckResult:
    """The verdict on one call: None -> type -> shape -> finite -> values against both oracles.

    ``others`` and ``placement`` are what the parent knows for a missing function: the
    rubric's other function names, and where the source defines this one instead."""
    hidden = not case.visible
    common = {
        "index": case.index,
        "visible": case.visible,
        "expected_shape": case.expected.shape,
        "mutated": outcome.mutated,
        "elapsed": outcome.elapsed,
    }
    name = equation.function
    scale = case.scale
    if outcome.status != CallStatus.OK:
        status = CALL_TO_CASE.get(outcome.status, CaseStatus.ERROR)
        if outcome.setup is not None:
            return setup_verdict(equation, case, outcome, status, hidden, common)
        facts = None if hidden else mismatch_facts(outcome.message or "", case, equation)
        message = plan_fault(equation, outcome, hidden) or feedback.call_fault(
            outcome, name, hidden, facts, others, placement
        )
        return CheckResult(status=status, credit=0.0, message=message, **common)
    got_shape = tuple(outcome.shape or ())
    want = case.expected.shape
    got = outcome.value
    credit, status, shape_note = 1.0, CaseStatus.PASSED, ""
    if got_shape != want:
        squeezable = squeeze_shape(got_shape) == squeeze_shape(want)
        if squeezable and got is not None and within(got.reshape(want), case.expected, settings.tolerance, None, scale):
            got = got.reshape(want)
            credit, status = settings.shape_credit, CaseStatus.SHAPE_CREDIT
            gradient = equation.finite_difference is not None
            shape_note = feedback_verdicts.shape_credit(name, got_shape, want, hidden, gradient)
        else:
            return CheckResult(
                status=CaseStatus.WRONG_SHAPE,
                credit=0.0,
                got_shape=got_shape,
                message=feedback_verdicts.wrong_shape(name, got_shape, want, shape_lead(got, got_shape, case), hidden),
                value=got,
                **common,
            )
    if not np.all(np.isfinite(got)):
        return CheckResult(
            status=CaseStatus.NOT_FINITE,
            credit=0.0,
            got_shape=got_shape,
            message=feedback_verdicts.not_finite(name),
            **common,
        )
    agrees_ref = within(got, case.expected, settings.tolerance, None, scale)
    measures = {
        "max_abs_error": float(np.max(np.abs(got - case.expected))) if got.size else 0.0,
        "relative_error": relative_error(got, case.expected),
        "fd_max_abs_error": None,
    }
    if case.fd_expected is None:  # an item without finite differences: the reference alone judges
        agrees_fd = agrees_ref_off_kinks = agrees_ref
    else:
        agrees_fd = within(got, case.fd_expected, settings.fd_tolerance, case.fd_mask, scale)
        differences = np.abs(got - case.fd_expected)[case.fd_mask]
        measures["fd_max_abs_error"] = float(np.max(differences)) if differences.size else 0.0
        # Entries at a kink are the reference's call (the quiz's convention), not a disagreement.
        # and a miss smaller than the finite-difference tolerance is precision, not a disagreement.
        agrees_ref_off_kinks = within(got, case.expected, settings.fd_tolerance, case.fd_mask, scale)
    disagreement = None
    if agrees_ref and not agrees_fd:
        disagreement = "matches the reference but not finite differences"
    elif agrees_fd and not agrees_ref_off_kinks:
        disagreement = "matches finite differences but not the reference"
    if agrees_ref and agrees_fd:
        kept = outcome.value if status == CaseStatus.SHAPE_CREDIT else None  # for naming the mistake
        return CheckResult(
            status=status, credit=credit, message=shape_note, got_shape=got_shape, value=kept, **measures, **common
        )
    diff = () if hidden else first_differences(got, case.expected, settings.tolerance, scale=scale)
    return CheckResult(
        status=CaseStatus.WRONG_VALUES,
        credit=0.0,
        message=feedback_verdicts.wrong_values(name, disagreement),
        got_shape=got_shape,
        oracle_disagreement=disagreement,
        diff=diff,
        value=got,
        **measures,
        **common,
    )


def plan_fault(equation: Equation, outcome: CallOutcome, hidden: bool) -> str | None:
    """The words for a return the item's plan can't use: not the tuple of its slots, no such dict entry."""
    if outcome.status != CallStatus.BAD_RETURN:
        return None
    if outcome.problem in ("arity", "not_tuple"):
        return hints.tuple_fault(equation.function, outcome.problem, outcome.detail, equation.slots, hidden)
    if outcome.problem == "missing_key" and equation.output_argument is not None:
        return hints.missing_entry(equation.function, equation.output_argument, equation.output_key or "")
    return None


def setup_verdict(
    equation: Equation, case: Case, outcome: CallOutcome, status: CaseStatus, hidden: bool, common: dict
) -> CheckResult:
    """A setup call failed: the item scores nothing, and the blame goes to the setup function.

    The setup function's own items carry the detailed feedback; a setup function the file
    lacks is an error of this item, not a missing graded function.
    """
    plan = case.plan
    step = plan.setup[outcome.setup] if plan is not None and outcome.setup < len(plan.setup) else None
    setup_function = (step.call if step is not None else None) or equation.function
    needed = tuple(n for n in (step.bind if step else ()) if n in plan.args)
    if outcome.status == CallStatus.BAD_RETURN and outcome.problem in ("arity", "not_tuple"):
        slots = step.bind if step is not None else ()
        fault = hints.tuple_fault(setup_function, outcome.problem, outcome.detail, slots, hidden)
    else:
        fault = feedback.call_fault(outcome, setup_function, hidden)
    if status == CaseStatus.MISSING:
        status = CaseStatus.ERROR
    message = hints.setup_fault(setup_function, equation.function, needed, fault)
    return CheckResult(status=status, credit=0.0, message=message, **common)


def same_answer(first: CallOutcome, again: CallOutcome, settings: Settings, scale: float | None) -> bool:
    """Did two calls on the same inputs return the same array (up to the tolerance)?"""
    if first.status != CallStatus.OK or again.status != CallStatus.OK or first.value is None or again.value is None:
        return first.status == again.status and first.value is None and again.value is None
    a, b = first.value, again.value
    if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
        return False
    finite = np.isfinite(a) & np.isfinite(b)
    return np.array_equal(a[~finite], b[~finite], equal_nan=True) and within(
        a[finite], b[finite], settings.tolerance, scale=scale
    )


def check_repeat(
    case: Case, verdict: CheckResult, first: CallOutcome, again: CallOutcome, settings: Settings, function: str
) -> CheckResult:
    """The verdict on a case called twice (the ``repeat_call`` probe): the first call's verdict,
    unless the second call gave something else, which no function of its inputs does."""
    if (
        first.status != CallStatus.OK
        or again.status == CallStatus.TIMEOUT
        or same_answer(first, again, settings, case.scale)
    ):
        return verdict
    found = feedback_verdicts.value_fault(
        "nondeterministic" if again.status == CallStatus.OK else "second_call_failed", function
    )
    return dataclasses.replace(
        verdict,
        status=CaseStatus.NONDETERMINISTIC,
        credit=0.0,
        # a first answer that was wrong already keeps its own words, ahead of this
        message=found
        if verdict.status in (CaseStatus.PASSED, CaseStatus.SHAPE_CREDIT)
        else f"{verdict.message}; {found}",
        mutated=tuple(sorted({*verdict.mutated, *again.mutated})),
    )
