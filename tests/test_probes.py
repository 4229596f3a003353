"""Probes: hidden cases that break shortcuts (square shapes, values by a kink, repeated or single-class
labels), and a second call on the same inputs. Each probe kills the shortcut it is for."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest
from inprocess import check, load_fixture

from conftest import FIXTURES, QUIZ4_RUBRIC
from grader.assignment.reference import load_reference
from grader.assignment.rubric import CASE_PROBES, build_rubric
from grader.errors import RubricError
from grader.grading.cases import build_cases
from grader.grading.checks import CaseStatus
from grader.schemas import schema_error

BUGGY = FIXTURES / "quiz4" / "buggy"
SEEDS = range(300)


def equation(rubric, eq_id):
    return next(eq for eq in rubric.equations if eq.id == eq_id)


def test_each_case_probe_adds_exactly_one_hidden_case_after_the_regular_ones(quiz4):
    reference = load_reference(quiz4)
    s = quiz4.settings
    for seed in range(5):
        cases = build_cases(quiz4, reference, seed)
        for eq in quiz4.equations:
            probes = [p for p in eq.probes if p in CASE_PROBES]
            assert [c.probe for c in cases[eq.id]] == [None] * (s.visible_cases + s.hidden_cases) + probes
            assert [c.index for c in cases[eq.id]] == list(range(len(cases[eq.id])))
            assert not any(c.visible for c in cases[eq.id][s.visible_cases :])


def test_adding_probes_changes_none_of_the_regular_cases(quiz4):
    reference = load_reference(quiz4)
    bare = dataclasses.replace(quiz4, equations=tuple(dataclasses.replace(eq, probes=()) for eq in quiz4.equations))
    with_probes, without = build_cases(quiz4, reference, 9), build_cases(bare, reference, 9)
    for eq in quiz4.equations:
        assert len(without[eq.id]) == 5
        for a, b in zip(with_probes[eq.id], without[eq.id]):
            assert all(np.array_equal(a.inputs[n], b.inputs[n]) for n in a.inputs)


@pytest.mark.slow
def test_the_probe_cases_hold_what_they_promise(quiz4):
    reference = load_reference(quiz4)
    for seed in range(50):
        cases = build_cases(quiz4, reference, seed)
        for eq in quiz4.equations:
            for case in cases[eq.id]:
                if case.probe == "square":
                    assert len(set(case.dims.values())) == 1 and min(case.dims.values()) >= 2
                if case.probe == "kinks":
                    z = case.inputs["Z"]
                    assert (z == 0).any() and ((0 < z) & (z <= 1e-3)).any() and ((-1e-3 <= z) & (z < 0)).any()
                    assert ((0 < z) & (z <= 1e-6)).any() and ((-1e-6 <= z) & (z < 0)).any()
                y = case.inputs.get("y")
                if case.probe == "labels_repeat":
                    assert len(y) >= 2 and len(set(y.tolist())) < len(y)
                if case.probe == "labels_one_class":
                    assert len(y) >= 2 and len(set(y.tolist())) == 1


# (mutant fixture, equation, the probe that kills it, regular cases it passes on at least this share of seeds)
SHORTCUTS = [
    ("eq1_square_shortcut.py", "eq1", "square", 1.0),
    ("eq13_threshold_mask.py", "eq13", "kinks", 0.9),
    ("eq9_label_dict.py", "eq9", "labels_repeat", 0.0),
    ("eq9_one_class_as_one_example.py", "eq9", "labels_one_class", 0.3),
]


@pytest.mark.slow
@pytest.mark.parametrize("fixture, eq_id, probe, regular_share", SHORTCUTS, ids=[s[0] for s in SHORTCUTS])
def test_each_probe_kills_its_shortcut_on_every_seed(quiz4, fixture, eq_id, probe, regular_share, capsys):
    eq = equation(quiz4, eq_id)
    shortcut = getattr(load_fixture(BUGGY / fixture), eq.function)
    reference = load_reference(quiz4)
    killed, regular_passes = 0, 0
    for seed in SEEDS:
        cases = build_cases(quiz4, reference, seed, equations=[eq], visible=False)[eq_id]
        probed = next(c for c in cases if c.probe == probe)
        assert check(eq, probed, getattr(reference, eq.function), quiz4.settings).status == CaseStatus.PASSED
        killed += check(eq, probed, shortcut, quiz4.settings).status != CaseStatus.PASSED
        regular = [c for c in cases if c.probe is None]
        regular_passes += all(check(eq, c, shortcut, quiz4.settings).status == CaseStatus.PASSED for c in regular)
    with capsys.disabled():
        print(
            f"\n[probes] {fixture}: the {probe} probe kills it on {killed} of {len(SEEDS)} seeds; "
            f"without probes it would score full marks on {regular_passes} of {len(SEEDS)}"
        )
    assert killed == len(SEEDS)
    assert regular_passes >= regular_share * len(SEEDS)


@pytest.mark.parametrize("fixture, eq_id", [("eq11_state_between_calls.py", "eq11"), ("eq15_random_noise.py", "eq15")])
def test_the_repeated_call_names_answers_that_change_between_calls(quiz4, fixture, eq_id):
    eq = equation(quiz4, eq_id)
    function = getattr(load_fixture(BUGGY / fixture), eq.function)  # a fresh module: its state starts empty
    visible = build_cases(quiz4, load_reference(quiz4), 0, hidden=True, equations=[eq])[eq_id][0]
    verdict = check(eq, visible, function, quiz4.settings)
    assert verdict.status == CaseStatus.NONDETERMINISTIC and verdict.credit == 0
    assert "returned different values on two calls with the same inputs" in verdict.message


def test_pure_functions_pass_the_repeated_call(quiz4):
    reference = load_reference(quiz4)
    cases = build_cases(quiz4, reference, 0, hidden=False)
    for eq in quiz4.equations:
        if eq.outputs:
            continue  # the end-to-end check chains the functions, each of which has the probe on its own item
        assert eq.repeat_call
        assert check(eq, cases[eq.id][0], getattr(reference, eq.function), quiz4.settings).status == CaseStatus.PASSED


def rubric_with(tmp_path, eq_id, probes):
    import yaml

    document = yaml.safe_load(QUIZ4_RUBRIC.read_text())
    for key in ("reference", "template", "mistakes"):
        document[key] = str((QUIZ4_RUBRIC.parent / document[key]).resolve())
    for item in document["equations"]:
        if item["id"] == eq_id:
            item["probes"] = probes
    return document


@pytest.mark.parametrize(
    "eq_id, probes, message",
    [
        ("eq1", ["kinks"], "equations[0].probes: kinks: needs finite_difference.kinks"),
        ("eq1", ["labels_repeat"], "equations[0].probes: labels_repeat: the equation has no labels input"),
        ("eq13", ["labels_one_class"], "equations[5].probes: labels_one_class: the equation has no labels input"),
    ],
)
def test_a_probe_the_equation_cannot_have_is_a_rubric_error(tmp_path, eq_id, probes, message):
    document = rubric_with(tmp_path, eq_id, probes)
    with pytest.raises(RubricError, match=re.escape(message)):
        build_rubric(tmp_path / "r.yaml", b"", document, "r.yaml")


def test_a_square_probe_needs_dimension_ranges_that_overlap(tmp_path):
    document = rubric_with(tmp_path, "eq1", ["square"])
    document["settings"]["dims"]["D"] = [10, 12]
    with pytest.raises(RubricError, match="square: the ranges of D, H, N have no size in common"):
        build_rubric(tmp_path / "r.yaml", b"", document, "r.yaml")


def test_the_schema_knows_the_probes_and_nothing_else(tmp_path):
    assert schema_error(rubric_with(tmp_path, "eq1", ["square", "repeat_call"]), "rubric.schema.json") is None
    assert schema_error(rubric_with(tmp_path, "eq1", ["transpose"]), "rubric.schema.json") is not None
    assert schema_error(rubric_with(tmp_path, "eq1", ["square", "square"]), "rubric.schema.json") is not None


def test_a_rubric_without_hidden_cases_gets_no_probe_cases_either(quiz4):
    visible_only = dataclasses.replace(quiz4, settings=dataclasses.replace(quiz4.settings, hidden_cases=0))
    cases = build_cases(visible_only, load_reference(quiz4), 3)
    assert all([c.visible for c in cases[eq.id]] == [True] for eq in quiz4.equations)
