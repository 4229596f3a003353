"""Scoring: from per-case verdicts to an equation's score, status and feedback.

An equation's score is its points times the mean credit of its cases (1 for a pass,
the rubric's ``shape_credit`` for right values in a shape off by size-1 axes, 0
otherwise), less the rubric's ``mutation_penalty`` (a fraction of the points) when the
function edited its inputs in place.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from grader.assignment.rubric import Equation, Settings
from grader.grading import feedback_verdicts
from grader.grading.checks import CaseStatus, CheckResult


class EquationStatus(enum.Enum):
    PASSED = "passed"
    PARTIAL = "partial"
    FAILED = "failed"
    ERROR = "error"
    TIMEOUT = "timeout"
    MISSING = "missing"
    NOT_IMPLEMENTED = "not_implemented"


FAULTS = {CaseStatus.ERROR, CaseStatus.CRASHED, CaseStatus.FORBIDDEN}


@dataclass(frozen=True)
class Diagnosis:
    """A named mistake from the rubric's catalog, or a lead in words."""

    kind: str  # "mistake" or "lead"
    text: str
    mistake_id: str | None = None


@dataclass(frozen=True)
class EquationResult:
    equation: Equation
    score: float
    status: EquationStatus
    feedback: str
    cases: tuple[CheckResult, ...]
    flags: tuple[str, ...] = ()
    diagnosis: Diagnosis | None = None


def equation_status(cases: tuple[CheckResult, ...], credit: float) -> EquationStatus:
    statuses = [c.status for c in cases]
    if all(s == CaseStatus.PASSED for s in statuses):
        return EquationStatus.PASSED
    if credit > 0:
        return EquationStatus.PARTIAL
    if CaseStatus.TIMEOUT in statuses:
        return EquationStatus.TIMEOUT
    if all(s == CaseStatus.MISSING for s in statuses):
        return EquationStatus.MISSING
    if all(s == CaseStatus.NOT_IMPLEMENTED for s in statuses):
        return EquationStatus.NOT_IMPLEMENTED
    ran = [s for s in statuses if s != CaseStatus.SKIPPED]
    if ran and all(s in FAULTS for s in ran):
        return EquationStatus.ERROR
    return EquationStatus.FAILED


def summarize(equation: Equation, cases: tuple[CheckResult, ...], status: EquationStatus) -> str:
    """One or two sentences: what happened, and the most useful message, visible cases first."""
    failing = [c for c in cases if c.status not in (CaseStatus.PASSED, CaseStatus.SKIPPED)]
    failing.sort(key=lambda c: (not c.visible, c.index))
    return feedback_verdicts.summary(
        total=len(cases),
        passed=sum(c.status == CaseStatus.PASSED for c in cases),
        credited=sum(c.status == CaseStatus.SHAPE_CREDIT for c in cases),
        # a case not run says why (an earlier timeout, the submission's time limit): the lead when none failed
        messages=[c.message for c in failing]
        or [c.message for c in cases if c.status == CaseStatus.SKIPPED and c.message],
        counted=status not in (EquationStatus.MISSING, EquationStatus.NOT_IMPLEMENTED),
    )


def score_equation(
    equation: Equation, cases: tuple[CheckResult, ...], settings: Settings, diagnosis: Diagnosis | None = None
) -> EquationResult:
    """Points times the mean case credit, a status, and student-facing feedback."""
    credit = sum(c.credit for c in cases) / len(cases) if cases else 0.0
    status = equation_status(cases, credit)
    words = summarize(equation, cases, status)
    flags: list[str] = []
    shown = sorted({name for c in cases if c.visible for name in c.mutated})
    score = equation.points * credit
    if any(c.mutated for c in cases):
        flags.append("mutated_inputs")
        words += feedback_verdicts.mutation_warning(equation.function, shown, settings.mutation_penalty)
        if settings.mutation_penalty:
            score = max(0.0, score - settings.mutation_penalty * equation.points)
            if status == EquationStatus.PASSED:
                status = EquationStatus.PARTIAL if score > 0 else EquationStatus.FAILED
    if any(c.oracle_disagreement for c in cases):
        flags.append("oracle_disagreement")
    if any(c.status == CaseStatus.TIMEOUT for c in cases):
        flags.append("timeout")
    if diagnosis is not None:
        words += f" {diagnosis.text}"
    return EquationResult(
        equation=equation,
        score=round(score, 6),
        status=status,
        feedback=words,
        cases=cases,
        flags=tuple(flags),
        diagnosis=diagnosis,
    )
