"""Naming the mistake: the rubric's catalog of known wrong answers, then leads in words.

Runs in the parent on the student's own outputs. For the failed cases that returned
an array, each catalogued mistake (a wrong formula next to the reference) is evaluated
on the same inputs; a mistake that reproduces the student's output on every such case
is named with its hint. Otherwise the error is described, each lead only when its
condition holds on every failed case: right on the visible case but not on hidden ones,
a constant factor (the sign, 1/batch), right up to rounding, the right values in
another layout, only where an input is below, at or above its kink, only at (or off)
the labelled entries, only some rows or columns. The words are ``hints``'; what they may
say follows ``feedback``'s hidden-case rule: a mistake is named on a hidden case only
when the student's array was read and matched by value, and a constant factor is
quoted only as a visible case shows it.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from grader.assignment.rubric import Equation, Settings
from grader.grading import feedback_verdicts, hints
from grader.grading.calls import CallPlan, module_lookup, run_plan
from grader.grading.case import Case
from grader.grading.checks import (
    CaseStatus,
    CheckResult,
    rounding_kind,
    squeeze_shape,
    within,
    wrong_entries,
)
from grader.grading.scoring import Diagnosis

MISTAKE_STATUSES = (CaseStatus.WRONG_VALUES, CaseStatus.WRONG_SHAPE, CaseStatus.SHAPE_CREDIT)
# Statuses that say nothing about the formula: a hidden case that was not run, or ran out of time.
NOT_A_VERDICT = (CaseStatus.PASSED, CaseStatus.SHAPE_CREDIT, CaseStatus.SKIPPED, CaseStatus.TIMEOUT)
# An answer this close to the expected one (relative to its largest entry) is right up to rounding.
PRECISION = 1e-3


def evaluate_mistake(
    module: ModuleType, function: str, case: Case, reference: ModuleType | None = None
) -> np.ndarray | None:
    """A catalogued mistake's answer on a case: it imitates the whole graded function.

    It replaces the graded function everywhere in the case's plan (setup calls of the
    same function included, so a train-then-test sequence runs the mistake twice); any
    other setup call is the reference's (a backward gets the reference's cache), and the
    item's slot is taken from what the mistake returns.
    """
    mistake = getattr(module, function)
    plan = case.plan or CallPlan(function="", args=case.arg_names)
    try:
        with np.errstate(all="ignore"):
            value = run_plan(plan, case.inputs, module_lookup(reference, replace=(plan.function, mistake)))
            return np.asarray(value, dtype=np.float64)
    except Exception:  # noqa: BLE001 - a catalogued formula that fails on some shapes just doesn't match
        return None


def reproduces(wrong: np.ndarray | None, check: CheckResult, settings: Settings, scale: float | None = None) -> bool:
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
    return within(got, wrong, settings.tolerance, None, scale)


def explains(wrong: np.ndarray | None, case: Case, check: CheckResult, settings: Settings) -> bool:
    """A mistake explains a failed case when it is wrong there too and gives what the student gave.

    A mistake that coincides with the right answer on this case (an average when the
    batch has one example) explains nothing about it.
    """
    if wrong is None:
        return False
    right = wrong.shape == case.expected.shape and within(wrong, case.expected, settings.tolerance, None, case.scale)
    return not right and reproduces(wrong, check, settings, case.scale)


def consistent(wrong: np.ndarray | None, case: Case, check: CheckResult, settings: Settings) -> bool:
    """A mistake that explains the wrong answers must also behave like the submission elsewhere.

    Where the submission passed, the mistake gives the right answer too (an average on a
    batch of one); where it raised, the mistake raises too. A formula that matches one
    wrong case but not what happened on the others is not this submission's mistake.
    """
    if check.status == CaseStatus.PASSED:
        return (
            wrong is not None
            and wrong.shape == case.expected.shape
            and within(wrong, case.expected, settings.tolerance, None, case.scale)
        )
    if check.status == CaseStatus.ERROR:
        return wrong is None
    return True


def match_mistake(
    equation: Equation,
    pairs: list[tuple[Case, CheckResult]],
    module: ModuleType,
    settings: Settings,
    others: list[tuple[Case, CheckResult]] = (),
    reference: ModuleType | None = None,
) -> Diagnosis | None:
    """The first catalogued mistake that explains every failed case and is consistent with the ``others``."""
    for mistake in equation.mistakes:
        if all(
            explains(evaluate_mistake(module, mistake.function, case, reference), case, check, settings)
            for case, check in pairs
        ) and all(
            consistent(evaluate_mistake(module, mistake.function, case, reference), case, check, settings)
            for case, check in others
        ):
            return Diagnosis("mistake", hints.likely_mistake(mistake.hint), mistake.id)
    return None


def constant_factor(pairs: list[tuple[Case, CheckResult]], settings: Settings) -> list[float] | None:
    """Per-case c with got = c * expected, or None if some case is not a multiple."""
    factors = []
    for case, check in pairs:
        got, want = check.value, case.expected
        if got.shape != want.shape or not np.any(want):
            return None
        c = float(np.vdot(got, want) / np.vdot(want, want))
        if not within(got, c * want, settings.tolerance, None, case.scale):
            return None
        factors.append(c)
    return factors


def describe_factor(pairs: list[tuple[Case, CheckResult]], factors: list[float], settings: Settings) -> str:
    """Words for got = c * expected: a flipped sign, a 1/batch factor, or a constant (quoted from a visible case)."""

    def all_near(values) -> bool:
        return all(abs(v) < 1e-6 for v in values)

    batch = settings.batch_dim
    if all_near(factors):
        return hints.factor_lead("zero")  # a factor of 0 is an array left empty, not a scale factor
    if all(abs(c - 1) < PRECISION for c in factors):
        return hints.precision_lead(*precision_kind(pairs))  # a factor of 1 is rounding, not a scale factor
    sizes = [case.dims.get(batch, 0) for case, _ in pairs] if batch else []
    if all_near(c + 1 for c in factors):
        return hints.factor_lead("opposite_sign")
    if sizes and all_near(c * n - 1 for c, n in zip(factors, sizes)):
        return hints.factor_lead("over_batch", batch=batch)
    if sizes and all_near(c * n + 1 for c, n in zip(factors, sizes)):
        return hints.factor_lead("over_minus_batch", batch=batch)
    if max(factors) - min(factors) < 1e-6:
        shown = [c for (case, _), c in zip(pairs, factors) if case.visible]
        return hints.factor_lead("constant", factor=shown[0] if shown else None)
    return hints.factor_lead("varying")


def where_wrong(equation: Equation, pairs: list[tuple[Case, CheckResult]], settings: Settings) -> str | None:
    """Words for where the wrong entries sit, when they share a pattern in every failed case."""
    masks = [(case, wrong_entries(check.value, case.expected, settings.tolerance, case.scale)) for case, check in pairs]
    fd = equation.finite_difference
    if fd is not None and fd.kink_input is not None:
        regions = kink_regions([(case.inputs[fd.kink_input], mask) for case, mask in masks], fd.kink_at)
        if regions:
            return hints.region_lead(fd.kink_input, fd.kink_at, regions)
    labels = [spec.name for spec in equation.inputs if spec.kind == "labels"]
    if labels:
        at_label = [label_marker(case.inputs[labels[0]], mask.shape) for case, mask in masks]
        if all(not np.any(m & ~t) for t, (_, m) in zip(at_label, masks)):
            return hints.label_lead(labels[0], only_there=True)
        if all(not np.any(m & t) for t, (_, m) in zip(at_label, masks)):
            return hints.label_lead(labels[0], only_there=False)
    if all(m.ndim == 2 for _, m in masks):
        if all(m.any(axis=1).sum() < m.shape[0] for _, m in masks):
            return hints.AXIS_LEADS["rows"]
        if all(m.any(axis=0).sum() < m.shape[1] for _, m in masks):
            return hints.AXIS_LEADS["columns"]
    return None


def kink_regions(pairs: list[tuple[np.ndarray, np.ndarray]], at: float) -> frozenset[str] | None:
    """Where the wrong entries sit relative to the kink (below, at, above), if not on every side."""
    found: set[str] = set()
    for value, mask in pairs:
        if value.shape != mask.shape:
            return None
        for name, side in (("below", value < at), ("at", value == at), ("above", value > at)):
            if np.any(mask & side):
                found.add(name)
    return frozenset(found) if found and len(found) < 3 else None


def rounding_only(pairs: list[tuple[Case, CheckResult]]) -> bool:
    """Every failed case is within PRECISION of the expected answer, relative to its largest entry."""
    for case, check in pairs:
        got, want = check.value, case.expected
        scale = float(np.max(np.abs(want))) if want.size else 0.0
        if got.shape != want.shape or not scale or float(np.max(np.abs(got - want))) > PRECISION * scale:
            return False
    return True


def precision_kind(pairs: list[tuple[Case, CheckResult]]) -> tuple[str, int | None]:
    """What the values show about lost precision: all float16 numbers, all float32, rounded to k decimals.

    The number of decimals is quoted only as a visible case shows it.
    """
    values = [check.value for _, check in pairs]
    with np.errstate(all="ignore"):
        for kind, dtype in (("float16", np.float16), ("float32", np.float32)):
            if all(np.array_equal(v.astype(dtype).astype(np.float64), v) for v in values):
                return kind, None
        for decimals in range(9):
            if all(np.array_equal(np.round(v, decimals), v) for v in values):
                shown = any(case.visible for case, _ in pairs)
                return "rounded", decimals if shown else None
    return "other", None


def layout(pairs: list[tuple[Case, CheckResult]], settings: Settings) -> str | None:
    """The right values in other places: a reshape of the transpose, or any rearrangement."""
    if all(
        check.value.ndim == 2 and within(check.value, case.expected.T.reshape(case.expected.shape), settings.tolerance)
        for case, check in pairs
    ):
        return "reshaped_transpose"
    if all(
        within(np.sort(check.value, axis=None), np.sort(case.expected, axis=None), settings.tolerance)
        for case, check in pairs
    ):
        return "rearranged"
    return None


def hidden_only(cases: tuple[Case, ...], checks: tuple[CheckResult, ...]) -> str | None:
    """Right on every visible case, wrong (or raising) on some hidden one; the sizes compared are the grader's."""
    visible = [(case, check) for case, check in zip(cases, checks) if case.visible]
    failed = [(case, c) for case, c in zip(cases, checks) if not case.visible and c.status not in NOT_A_VERDICT]
    if not visible or not failed or any(c.status != CaseStatus.PASSED for _, c in visible):
        return None
    shown = {case.expected.shape for case, _ in visible}
    return hints.hidden_only_lead(len(failed), all(case.expected.shape not in shown for case, _ in failed))


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
    reference: ModuleType | None = None,
    siblings: list[tuple[Case, CheckResult]] = (),
) -> Diagnosis | None:
    """A named mistake or a lead for an equation with wrong answers; None when there is nothing to add.

    ``reference`` makes the setup calls of a catalogued mistake's plan (a backward's cache).
    ``siblings`` are the cases and verdicts of the other items that grade the same
    function (another slot of its tuple): a mistake imitates the whole function, so it
    must be consistent with them too (a sum where the mean belongs is wrong in the loss
    as well; if the loss passed, that was not the mistake).
    """
    if any(check.status == CaseStatus.NONDETERMINISTIC for check in checks):
        return None  # that case's message says so, and no formula explains answers that change
    pairs = [(case, check) for case, check in zip(cases, checks) if check.status in MISTAKE_STATUSES]
    if pairs and mistakes is not None:
        rest = [(case, check) for case, check in zip(cases, checks) if check.status not in MISTAKE_STATUSES]
        rest += [(case, check) for case, check in siblings if check.status == CaseStatus.PASSED]
        named = match_mistake(equation, pairs, mistakes, settings, rest, reference)
        if named is not None:
            return named
    shortcut = hidden_only(cases, checks)
    failed = [check for check in checks if check.status not in (CaseStatus.PASSED, CaseStatus.SHAPE_CREDIT)]
    if not pairs or any(check.status != CaseStatus.WRONG_VALUES for check in [*failed, *(c for _, c in pairs)]):
        # the shape or the fault message already says what to check (a lead from the cases that
        # returned values would leave out the ones that raised); the shortcut adds where
        return None if shortcut is None else Diagnosis("lead", hints.lead(shortcut, equation.label))
    factors = constant_factor(pairs, settings)
    if factors is not None:
        lead = describe_factor(pairs, factors, settings)
    elif rounding_only(pairs):
        lead = hints.precision_lead(*precision_kind(pairs))
    elif (arranged := layout(pairs, settings)) is not None:
        lead = hints.layout_lead(arranged)
    elif (rounded := float16_rounding(pairs)) is not None:
        return Diagnosis("lead", hints.lead(feedback_verdicts.value_fault(rounded, equation.function), equation.label))
    else:
        lead = where_wrong(equation, pairs, settings) or shortcut or hints.AXIS_LEADS["none"]
    return Diagnosis("lead", hints.lead(lead, equation.label))


def float16_rounding(pairs: list[tuple[Case, CheckResult]]) -> str | None:
    """``float16`` or ``rounding`` when every wrong answer is right up to float16-sized rounding of the case."""
    kinds = {rounding_kind(check.value, case.expected, case.scale) for case, check in pairs}
    if None in kinds:
        return None
    return "float16" if kinds == {"float16"} else "rounding"
