"""Naming the mistake: the rubric's catalog of known wrong answers, then leads in words.

Runs in the parent on the student's own outputs. For the failed cases that returned
an array, each catalogued mistake (a wrong formula next to the reference) is evaluated
on the same inputs; a mistake that reproduces the student's output on every such case
is named with its hint. Otherwise the error is described: a constant factor (the
sign, 1/batch), a transposed result, only some rows or columns, only where an input
sits on a kink, only at (or off) the labelled entries. Nothing here quotes an input
or an expected value, so the text is safe for hidden cases.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from grader.cases import Case
from grader.checks import CaseStatus, CheckResult, within
from grader.rubric import Equation, Settings
from grader.scoring import Diagnosis

VALUE_STATUSES = (CaseStatus.WRONG_VALUES, CaseStatus.WRONG_SHAPE)


def evaluate_mistake(module: ModuleType, function: str, case: Case) -> np.ndarray | None:
    try:
        with np.errstate(all="ignore"):
            return np.asarray(getattr(module, function)(*(a.copy() for a in case.args)), dtype=np.float64)
    except Exception:  # noqa: BLE001 - a catalogued formula that fails on some shapes just doesn't match
        return None


def match_mistake(
    equation: Equation, pairs: list[tuple[Case, CheckResult]], module: ModuleType, settings: Settings
) -> Diagnosis | None:
    for mistake in equation.mistakes:
        matched = True
        for case, check in pairs:
            wrong = evaluate_mistake(module, mistake.function, case)
            if wrong is None or wrong.shape != check.value.shape or not within(check.value, wrong, settings.tolerance):
                matched = False
                break
        if matched:
            return Diagnosis("mistake", f"Likely mistake: {mistake.hint}", mistake.id)
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


def describe_factor(equation: Equation, pairs, factors: list[float], settings: Settings) -> str:
    batch = settings.batch_dim
    if all(abs(c + 1) < 1e-6 for c in factors):
        return "your answer has the right size but the opposite sign: check the sign of each term"
    if batch and all(abs(c * case.dims.get(batch, 0) - s) < 1e-6 for c, (case, _) in zip(factors, pairs) for s in (1,)):
        return f"your answer is the right one divided by the batch size {batch}: check whether you averaged where the equation sums"
    if batch and all(abs(c * case.dims.get(batch, 0) + 1) < 1e-6 for c, (case, _) in zip(factors, pairs)):
        return f"your answer is the right one divided by -{batch}: check the sign, and whether you averaged where the equation sums"
    if max(factors) - min(factors) < 1e-6:
        return f"your answer is off by a constant factor of {factors[0]:.4g}: check for an extra scale factor"
    return "your answer is a multiple of the right one, by a factor that changes from case to case"


def where_wrong(equation: Equation, pairs: list[tuple[Case, CheckResult]], settings: Settings) -> str | None:
    """Words for where the wrong entries sit, when they share a pattern across cases."""
    masks = []
    for case, check in pairs:
        if check.value.shape != case.expected.shape:
            return None
        masks.append(
            (
                case,
                ~(
                    np.abs(check.value - case.expected)
                    <= settings.tolerance.atol + settings.tolerance.rtol * np.abs(case.expected)
                ),
            )
        )
    fd = equation.finite_difference
    if fd.kink_input is not None:
        on_kink = [(case.inputs[fd.kink_input] == fd.kink_at) for case, _ in masks]
        if all(k.shape == m.shape and not np.any(m & ~k) for k, (_, m) in zip(on_kink, masks)):
            return (
                f"only the entries where {fd.kink_input} is exactly {fd.kink_at:g} are wrong: check which side "
                "of the kink your condition puts them on"
            )
    labels = [spec for spec in equation.inputs if spec.kind == "labels"]
    if labels:
        name = labels[0].name
        at_label = []
        for case, mask in masks:
            y = case.inputs[name]
            marker = np.zeros(mask.shape, dtype=bool)
            if mask.ndim == 2 and y.ndim == 1 and len(y) == mask.shape[0] and (y < mask.shape[1]).all():
                marker[np.arange(len(y)), y] = True
            at_label.append(marker)
        if all(not np.any(m & ~t) for t, (_, m) in zip(at_label, masks)):
            return f"only the entries at each row's true class (given by {name}) are wrong: check what happens at the label"
        if all(not np.any(m & t) for t, (_, m) in zip(at_label, masks)):
            return f"the entries at each row's true class (given by {name}) are right but others are wrong"
    if all(m.ndim == 2 for _, m in masks):
        rows = all(
            not m.all(axis=1).any() and m.any(axis=1).sum() < m.shape[0] and not (m.any(axis=1) & ~m.all(axis=1)).any()
            for _, m in masks
        )
        if rows:
            return "only some rows are wrong, and those entirely"
        cols = all(m.any(axis=0).sum() < m.shape[1] for _, m in masks)
        if cols:
            return "only some columns are wrong: check the indexing along the second axis"
    return None


def diagnose(
    equation: Equation,
    cases: tuple[Case, ...],
    checks: tuple[CheckResult, ...],
    mistakes: ModuleType | None,
    settings: Settings,
) -> Diagnosis | None:
    """A named mistake or a lead for an equation with wrong answers; None when there is nothing to say."""
    pairs = [
        (case, check)
        for case, check in zip(cases, checks)
        if check.status in VALUE_STATUSES and check.value is not None
    ]
    if not pairs:
        return None
    if mistakes is not None:
        named = match_mistake(equation, pairs, mistakes, settings)
        if named is not None:
            return named
    if any(check.status == CaseStatus.WRONG_SHAPE for _, check in pairs):
        return None  # the shape message already says what to check
    factors = constant_factor(pairs, settings)
    if factors is not None:
        return Diagnosis("lead", f"Lead: {describe_factor(equation, pairs, factors, settings)} (see {equation.label}).")
    where = where_wrong(equation, pairs, settings)
    if where is not None:
        return Diagnosis("lead", f"Lead: {where} (see {equation.label}).")
    return Diagnosis(
        "lead",
        f"Lead: the values differ from {equation.label} in a way without a simple pattern; recheck each step of the derivation.",
    )
