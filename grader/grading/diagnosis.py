"""Naming the mistake: the rubric's catalog of known wrong answers, then leads in words.

Runs in the parent on the student's own outputs. For the failed cases that returned
an array, each catalogued mistake (a wrong formula next to the reference) is evaluated
on the same inputs; a mistake that reproduces the student's output on every such case
is named with its hint. Otherwise the error is described: a constant factor (the
sign, 1/batch), a transposed result, only some rows or columns, only where an input
sits on a kink, only at (or off) the labelled entries. The words are ``feedback``'s;
what they may say follows its hidden-case rule: a mistake is named on a hidden case
only when the student's array was read and matched by value, and a constant factor is
quoted only as a visible case shows it.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from grader.assignment.rubric import Equation, Settings
from grader.grading import feedback
from grader.grading.cases import Case
from grader.grading.checks import CaseStatus, CheckResult, squeeze_shape, within, wrong_entries
from grader.grading.scoring import Diagnosis

MISTAKE_STATUSES = (CaseStatus.WRONG_VALUES, CaseStatus.WRONG_SHAPE, CaseStatus.SHAPE_CREDIT)


def evaluate_mistake(module: ModuleType, function: str, case: Case) -> np.ndarray | None:
    try:
        with np.errstate(all="ignore"):
            return np.asarray(getattr(module, function)(*(a.copy() for a in case.args)), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a catalogued formula that fails on some shapes just doesn't match
        return None


def reproduces(wrong: np.ndarray | None, check: CheckResult, settings: Settings) -> bool:
    """Does a catalogued wrong answer give what the student returned?

    By value where the parent read the student's array; by shape alone where it
    did not (an answer larger than expected is never read into memory), and then
    only on a visible case: a hidden case's shape is the submission's to choose.
    """
    if wrong is None:
        return False
    if check.value is None:
        return check.visible and check.got_shape is not None and wrong.shape == check.got_shape
    got = check.value
    if wrong.shape != got.shape:
        # A 0-d sum and a (1, 1) one are the same mistake; but where the values were right
        # and only the shape was off, only that exact shape explains it.
        if check.status == CaseStatus.SHAPE_CREDIT:
            return False
        if wrong.size != got.size or squeeze_shape(wrong.shape) != squeeze_shape(got.shape):
            return False
        wrong = wrong.reshape(got.shape)
    return within(got, wrong, settings.tolerance)


def explains(wrong: np.ndarray | None, case: Case, check: CheckResult, settings: Settings) -> bool:
    """A mistake explains a failed case when it is wrong there too and gives what the student gave.

    A mistake that coincides with the right answer on this case (an average when the
    batch has one example) explains nothing about it.
    """
    if wrong is None:
        return False
    right = wrong.shape == case.expected.shape and within(wrong, case.expected, settings.tolerance)
    return not right and reproduces(wrong, check, settings)


def match_mistake(
    equation: Equation, pairs: list[tuple[Case, CheckResult]], module: ModuleType, settings: Settings
) -> Diagnosis | None:
    """The first catalogued mistake that explains every failed case."""
    for mistake in equation.mistakes:
        if all(
            explains(evaluate_mistake(module, mistake.function, case), case, check, settings) for case, check in pairs
        ):
            return Diagnosis("mistake", feedback.likely_mistake(mistake.hint), mistake.id)
    return None


def constant_factor(pairs: list[tuple[Case, CheckResult]], settings: Settings) -> list[float] | None:
    """Per-case c with got = c * expected, or None if some case is not a multiple."""
    factors = []
    for case, check in pairs:
        got, want = check.value, case.expected
        if got.shape != want.shape or not np.any(want):
            return None
        c = float(np.vdot(got, want) / np.vdot(want, want))
        if not within(got, c * want, settings.tolerance):
            return None
        factors.append(c)
    return factors


def describe_factor(pairs: list[tuple[Case, CheckResult]], factors: list[float], settings: Settings) -> str:
    """Words for got = c * expected: a flipped sign, a 1/batch factor, or a constant (quoted from a visible case)."""

    def all_near(values) -> bool:
        return all(abs(v) < 1e-6 for v in values)

    batch = settings.batch_dim
    sizes = [case.dims.get(batch, 0) for case, _ in pairs] if batch else []
    if all_near(c + 1 for c in factors):
        return feedback.factor_lead("opposite_sign")
    if sizes and all_near(c * n - 1 for c, n in zip(factors, sizes)):
        return feedback.factor_lead("over_batch", batch=batch)
    if sizes and all_near(c * n + 1 for c, n in zip(factors, sizes)):
        return feedback.factor_lead("over_minus_batch", batch=batch)
    if max(factors) - min(factors) < 1e-6:
        shown = [c for (case, _), c in zip(pairs, factors) if case.visible]
        return feedback.factor_lead("constant", factor=shown[0] if shown else None)
    return feedback.factor_lead("varying")


def where_wrong(equation: Equation, pairs: list[tuple[Case, CheckResult]], settings: Settings) -> str | None:
    """Words for where the wrong entries sit, when they share a pattern in every failed case."""
    masks = [(case, wrong_entries(check.value, case.expected, settings.tolerance)) for case, check in pairs]
    fd = equation.finite_difference
    if fd.kink_input is not None:
        on_kink = [case.inputs[fd.kink_input] == fd.kink_at for case, _ in masks]
        if all(k.shape == m.shape and not np.any(m & ~k) for k, (_, m) in zip(on_kink, masks)):
            return feedback.kink_lead(fd.kink_input, fd.kink_at)
    labels = [spec.name for spec in equation.inputs if spec.kind == "labels"]
    if labels:
        at_label = [label_marker(case.inputs[labels[0]], mask.shape) for case, mask in masks]
        if all(not np.any(m & ~t) for t, (_, m) in zip(at_label, masks)):
            return feedback.label_lead(labels[0], only_there=True)
        if all(not np.any(m & t) for t, (_, m) in zip(at_label, masks)):
            return feedback.label_lead(labels[0], only_there=False)
    if all(m.ndim == 2 for _, m in masks):
        if all(m.any(axis=1).sum() < m.shape[0] for _, m in masks):
            return feedback.AXIS_LEADS["rows"]
        if all(m.any(axis=0).sum() < m.shape[1] for _, m in masks):
            return feedback.AXIS_LEADS["columns"]
    return None


def label_marker(y: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """True at (i, y_i) of an (N, C) array: each row's labelled entry."""
    marker = np.zeros(shape, dtype=bool)
    if len(shape) == 2 and y.ndim == 1 and len(y) == shape[0] and ((0 <= y) & (y < shape[1])).all():
        marker[np.arange(len(y)), y] = True
    return marker


def diagnose(
    equation: Equation,
    cases: tuple[Case, ...],
    checks: tuple[CheckResult, ...],
    mistakes: ModuleType | None,
    settings: Settings,
) -> Diagnosis | None:
    """A named mistake or a lead for an equation with wrong answers; None when there is nothing to add."""
    pairs = [(case, check) for case, check in zip(cases, checks) if check.status in MISTAKE_STATUSES]
    if not pairs:
        return None
    if mistakes is not None:
        named = match_mistake(equation, pairs, mistakes, settings)
        if named is not None:
            return named
    if any(check.status != CaseStatus.WRONG_VALUES for _, check in pairs):
        return None  # the shape message already says what to check
    factors = constant_factor(pairs, settings)
    if factors is not None:
        lead = describe_factor(pairs, factors, settings)
    else:
        lead = where_wrong(equation, pairs, settings) or feedback.AXIS_LEADS["none"]
    return Diagnosis("lead", feedback.lead(lead, equation.label))
