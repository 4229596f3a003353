"""Correct code passes on every seed, in float64 and float32; every mutant is still caught; float16 is not.

In-process (tests/inprocess.py): the grader's own cases, checks and diagnosis, with
the fixture's functions called directly, so thousands of seeds take seconds.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pytest
import yaml
from inprocess import check, in_dtype, load_fixture

from conftest import FIXTURES, QUIZ4_RUBRIC
from grader.assignment.reference import load_mistakes, load_reference
from grader.assignment.rubric import load_rubric
from grader.grading.case import Case
from grader.grading.cases import build_cases
from grader.grading.checks import CaseStatus, wrong_entries
from grader.grading.diagnosis import diagnose

SEEDS = int(os.environ.get("GRADER_TOLERANCE_SEEDS", 5000))  # fewer for a quick look; the claim is 5,000
CORPUS = FIXTURES / "quiz4"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())
CORRECT = sorted(CORPUS.glob("correct/*.py"))


def caught_mutants(equation, mistakes) -> list[tuple[str, object]]:
    """Every wrong version of the equation's function: the catalog's, and the buggy fixtures' that get it wrong."""
    found = [(f"catalog:{m.id}", getattr(mistakes, m.function)) for m in equation.mistakes]
    for name, entry in sorted(EXPECTED.items()):
        entry = entry or {}
        if name.startswith("buggy/") and equation.id in entry and entry[equation.id] not in ("timeout", "missing"):
            if name.startswith("buggy/whole_"):
                continue  # whole files that can't be imported or called (a notebook's JSON, a main guard)
            found.append((name, getattr(load_fixture(CORPUS / name), equation.function, None)))
    return [(name, f) for name, f in found if f is not None]


def outputs_of(functions, case: Case, dtypes) -> list[np.ndarray | None]:
    """Each function on the case's inputs cast to each dtype (labels stay integers), as float64.

    The inputs are cast once per case and shared, read-only: a function that wrote to
    one would raise, and count as failing. The caller silences numpy's warnings (once
    per sweep, not per call).
    """
    outputs = []
    for dtype in dtypes:
        args = [a.astype(dtype) if a.dtype.kind == "f" else a for a in case.args]
        for a in args:
            a.setflags(write=False)
        for function in functions:
            try:
                outputs.append(np.asarray(function(*args), dtype=np.float64))
            except Exception:  # noqa: BLE001 - counted as a failure, and checked again with words
                outputs.append(None)
    return outputs


def all_pass(outputs, case: Case, settings) -> np.ndarray:
    """For each output, check_case's conditions for PASSED, with its own measure and the case's scale.

    The exact shape, finite entries, agreement with the reference everywhere and with
    finite differences off the kinks, judged for all outputs at once (``wrong_entries``
    broadcasts): millions of calls in a minute or two instead of ten.
    """
    ok = np.array([out is not None and out.shape == case.expected.shape for out in outputs])
    got = np.stack([out if good else np.zeros_like(case.expected) for out, good in zip(outputs, ok)])
    axes = tuple(range(1, got.ndim))
    ok &= np.all(np.isfinite(got), axis=axes)
    ok &= ~np.any(wrong_entries(got, case.expected, settings.tolerance, case.scale), axis=axes)
    off_kinks = wrong_entries(got, case.fd_expected, settings.fd_tolerance, case.scale) & case.fd_mask
    return ok & ~np.any(off_kinks, axis=axes)


DTYPES = (np.float64, np.float32)


def versions_of(equation) -> list[tuple[str, object]]:
    """(name, function) in the order outputs_of(fixtures, case, DTYPES) gives their outputs."""
    fixtures = [(path.stem, getattr(load_fixture(path), equation.function)) for path in CORRECT]
    return [(f"{name}/{np.dtype(dtype).name}", in_dtype(f, dtype)) for dtype in DTYPES for name, f in fixtures]


def sweep(job: tuple[str, int, int]) -> dict:
    """Every correct version and every mutant of one equation over hidden seeds [first, last) (a worker's job)."""
    eq_id, first, last = job
    started = time.monotonic()
    rubric = load_rubric(QUIZ4_RUBRIC)
    settings = rubric.settings
    equation = next(eq for eq in rubric.equations if eq.id == eq_id)
    reference, mistakes = load_reference(rubric), load_mistakes(rubric)
    versions, mutants = versions_of(equation), caught_mutants(equation, mistakes)
    visible = build_cases(rubric, reference, 0, hidden=False, equations=[equation])[eq_id]
    # The visible cases are the same for every seed: the full check (and the repeated call) once.
    failures = [
        (name, "visible", case.index, verdict.message)
        for name, function in versions
        for case in visible
        if first == 0 and (verdict := check(equation, case, function, settings)).status != CaseStatus.PASSED
    ]
    alive = [
        (name, f)
        for name, f in mutants
        if all(check(equation, c, f, settings).status == CaseStatus.PASSED for c in visible)
    ]
    escaped, checked, probes = [], 0, set()
    fixtures = [getattr(load_fixture(path), equation.function) for path in CORRECT]
    with np.errstate(all="ignore"):
        for seed in range(first, last):
            cases = build_cases(rubric, reference, seed, equations=[equation], visible=False)[eq_id]
            probes.update(case.probe for case in cases if case.probe)
            for case in cases:
                passed = all_pass(outputs_of(fixtures, case, DTYPES), case, settings)
                checked += len(passed)
                for k in np.flatnonzero(~passed):
                    verdict = check(equation, case, versions[k][1], settings)
                    failures.append((versions[k][0], seed, case.index, verdict.message))
            if alive:
                survived = np.ones(len(alive), dtype=bool)
                for case in cases:
                    survived &= all_pass(outputs_of([f for _, f in alive], case, (np.float64,)), case, settings)
                escaped += [(alive[k][0], seed) for k in np.flatnonzero(survived)]
    return {
        "eq": eq_id,
        "versions": len(versions),
        "checked": checked,
        "probes": probes,
        "failures": failures,
        "mutants": len(mutants),
        "visible_kills": len(mutants) - len(alive),
        "escaped": escaped,
        "seconds": time.monotonic() - started,
    }


# Each equation's seeds in slices, the slowest equations first, so the workers finish together.
SLICES = 4
WORKERS = max(2, len(os.sched_getaffinity(0)))
SLOWEST_FIRST = ("eq9", "eq12", "eq14", "eq13", "eq1", "eq10", "eq15", "eq11")


def jobs(ids) -> list[tuple[str, int, int]]:
    """(equation, first seed, last seed) slices covering SEEDS once per equation, the costly ones first each round."""
    edges = np.linspace(0, SEEDS, SLICES + 1).astype(int)
    order = sorted(ids, key=lambda i: SLOWEST_FIRST.index(i) if i in SLOWEST_FIRST else -1)
    return [(eq_id, int(a), int(b)) for k in range(SLICES) for eq_id in order for a, b in [edges[k : k + 2]] if b > a]


def joined(parts: list[dict]) -> dict:
    """One equation's result from its slices."""
    return {
        **parts[0],
        "checked": sum(p["checked"] for p in parts),
        "probes": sorted(set().union(*(p["probes"] for p in parts))),
        "failures": [f for p in parts for f in p["failures"]],
        "escaped": [e for p in parts for e in p["escaped"]],
        "seconds": sum(p["seconds"] for p in parts),
    }


@pytest.mark.slow
def test_correct_float32_and_float64_code_passes_on_every_seed_and_every_mutant_is_caught(quiz4, capsys):
    ids = [eq.id for eq in quiz4.equations if not eq.outputs]  # each function alone (the chain has its own tests)
    started = time.monotonic()
    # 5,000 seeds x 28 versions x 6 hidden cases x 8 equations is 6.6 million calls, and each case's
    # finite differences are the grader's own (a Python loop): a worker per core, two at least.
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        parts = pool.map(sweep, jobs(ids), chunksize=1)
    results = [joined([p for p in parts if p["eq"] == eq_id]) for eq_id in ids]
    with capsys.disabled():
        print()
        for r in results:
            print(
                f"[tolerance] {r['eq']}: {SEEDS} seeds, {r['versions']} correct versions ({len(CORRECT)} fixtures x "
                f"float64/float32), {r['checked']} hidden-case checks (probes: {', '.join(r['probes']) or 'none'}), "
                f"{len(r['failures'])} failures; {r['mutants']} mutants caught on "
                f"{SEEDS * r['mutants'] - len(r['escaped'])} of {SEEDS * r['mutants']} (mutant, seed) pairs, "
                f"{r['visible_kills']} by the visible case ({r['seconds']:.1f} s of a worker)"
            )
        print(f"[tolerance] the sweep took {time.monotonic() - started:.1f} s on {WORKERS} workers")
    reference = load_reference(quiz4)
    for r, eq in zip(results, quiz4.equations):  # every seed swept once, on every hidden case
        hidden = len(build_cases(quiz4, reference, 0, equations=[eq])[eq.id]) - quiz4.settings.visible_cases
        assert r["checked"] == SEEDS * r["versions"] * hidden, r["eq"]
    assert not [f for r in results for f in r["failures"]][:5]
    assert not [e for r in results for e in r["escaped"]][:5]


def confident_single_row():
    """The case that failed correct float32 code before: N = 1, a confident row, dS's largest entry 2.7e-4."""
    scores = np.array([[9.0, 0.8, 0.5]])
    P = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
    return P, np.array([0])


def test_the_confident_single_row_case_is_judged_by_the_size_of_p_not_of_ds(quiz4):
    P, y = confident_single_row()
    expected = P.copy()
    expected[0, 0] -= 1.0
    in_float32 = P.astype(np.float32).astype(np.float64)
    in_float32[0, 0] -= 1.0
    tol = quiz4.settings.tolerance
    assert np.max(np.abs(expected)) < 1e-3
    assert wrong_entries(in_float32, expected, tol).any(), "the old measure (the answer's largest entry) fails it"
    assert not wrong_entries(in_float32, expected, tol, scale=float(np.max(P))).any()


def test_a_case_s_scale_is_its_largest_answer_or_argument_entry(quiz4):
    cases = build_cases(quiz4, load_reference(quiz4), 11)
    for eq in quiz4.equations:
        for case in cases[eq.id]:
            sent = (case.inputs[name] for name in case.shown_inputs)  # an end-to-end case's args are setup results
            sizes = [np.max(np.abs(a)) for a in (case.expected, *sent) if a.dtype.kind == "f"]
            assert case.scale == max(sizes)


@pytest.mark.slow
@pytest.mark.parametrize("eq_id", ["eq1", "eq9", "eq10", "eq11", "eq12", "eq13", "eq14", "eq15"])
def test_float16_code_is_wrong_on_every_seed_with_a_lead_about_precision(quiz4, eq_id):
    equation = next(eq for eq in quiz4.equations if eq.id == eq_id)
    function = in_dtype(getattr(load_fixture(CORPUS / "correct" / "matmul.py"), equation.function), np.float16)
    for seed in range(20):
        cases = build_cases(quiz4, load_reference(quiz4), seed, equations=[equation])[eq_id]
        checks = tuple(check(equation, case, function, quiz4.settings) for case in cases)
        # a case whose answer float16 holds exactly (all zeros, say) may pass; most can't
        assert sum(c.status == CaseStatus.WRONG_VALUES for c in checks) >= len(cases) - 1, [c.status for c in checks]
        regular = [(case, c) for case, c in zip(cases, checks) if case.probe != "kinks"]  # 1e-8 underflows to 0
        diagnosis = diagnose(
            equation, tuple(case for case, _ in regular), tuple(c for _, c in regular), None, quiz4.settings
        )
        # float16 numbers throughout; eq. 9's P16 - 1 are float16 values less one, which are
        # float32 numbers too, and the lead says what the values show
        assert "up to rounding" in diagnosis.text, diagnosis.text
        assert ("float16" if eq_id != "eq9" else "float") in diagnosis.text, diagnosis.text
        assert "float64" in diagnosis.text, "the lead says what to compute in"


def test_two_different_answers_on_the_same_inputs_are_called_nondeterministic(quiz4):
    equation = quiz4.equations[0]
    case = build_cases(quiz4, load_reference(quiz4), 1, equations=[equation])["eq1"][0]
    answers = iter([case.expected, case.expected + 1e-3])
    verdict = check(equation, case, lambda dY, W: next(answers), quiz4.settings)
    assert verdict.status == CaseStatus.NONDETERMINISTIC and verdict.credit == 0
    assert "returned different values on two calls with the same inputs" in verdict.message
    same = check(equation, case, lambda dY, W: case.expected.copy(), quiz4.settings)
    assert same.status == CaseStatus.PASSED
