"""A rubric prepared once (its modules and visible cases, ``grading/preparation.py``) grades as one prepared
per submission, and the number of calls is known before any case is built."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from conftest import FIXTURES, REPO, grade, write_rubric_copy
from grader.assignment.reference import load_reference
from grader.assignment.rubric import load_rubric
from grader.errors import ReferenceModuleError
from grader.frontends.batch.worker import prepare_once
from grader.grading.cases import build_cases, sizes_of, visible_sizes
from grader.grading.pipeline import call_order
from grader.grading.preparation import call_count, prepare

RUBRICS = ["quiz4", "layers"]


def rubric_named(name: str):
    return load_rubric(REPO / "rubrics" / f"{name}.yaml")


@pytest.mark.parametrize("name", RUBRICS)
@pytest.mark.parametrize("seed", [0, 7])
def test_the_call_count_known_before_the_cases_is_the_number_of_calls_a_grade_makes(name, seed):
    rubric = rubric_named(name)
    cases = build_cases(rubric, load_reference(rubric), seed)
    assert call_count(rubric) == len(call_order(rubric, cases))


@pytest.mark.parametrize(
    "counts", [{"visible": 1, "hidden": 0}, {"visible": 1, "hidden": 2}, {"visible": 2, "hidden": 1}]
)
def test_the_call_count_follows_the_rubrics_case_counts(tmp_path, counts):
    rubric = load_rubric(write_rubric_copy(tmp_path, cases=counts))
    cases = build_cases(rubric, load_reference(rubric), 3)
    assert call_count(rubric) == len(call_order(rubric, cases))


@pytest.mark.parametrize("name", RUBRICS)
def test_visible_sizes_read_off_the_visible_cases_are_the_replayed_ones(name):
    rubric = rubric_named(name)
    reference = load_reference(rubric)
    prepared = prepare(rubric)
    for eq in rubric.equations:
        assert sizes_of(prepared.visible[eq.id]) == visible_sizes(rubric, eq, reference), eq.id


@pytest.mark.slow
@pytest.mark.parametrize("name", RUBRICS)
def test_cases_built_on_prepared_visible_cases_are_the_cases_built_from_scratch(name):
    rubric = rubric_named(name)
    prepared = prepare(rubric)
    for seed in (1, 2, 3):
        fresh = build_cases(rubric, load_reference(rubric), seed)
        reused = build_cases(rubric, prepared.reference, seed, shown=prepared.visible)
        assert fresh.keys() == reused.keys()
        for eq_id, cases in fresh.items():
            assert [(c.index, c.visible, dict(c.dims)) for c in cases] == [
                (c.index, c.visible, dict(c.dims)) for c in reused[eq_id]
            ], eq_id
            for a, b in zip(cases, reused[eq_id]):
                assert np.array_equal(a.expected, b.expected), (eq_id, a.index)
                assert a.inputs.keys() == b.inputs.keys()


def test_prepared_visible_cases_cannot_be_changed_by_a_grade():
    prepared = prepare(rubric_named("quiz4"))
    case = next(iter(prepared.visible.values()))[0]
    with pytest.raises(ValueError, match="read-only"):
        case.expected[...] = 0.0


@pytest.mark.parametrize("name", ["correct", "buggy"])
def test_a_grade_with_a_prepared_rubric_is_the_grade_without(quiz4, name):
    path = sorted((FIXTURES / "quiz4" / name).glob("*.py"))[0]
    prepared = prepare(quiz4)
    documents = [grade(path, quiz4, preparation=p)[1] for p in (None, prepared, prepared)]
    for document in documents:
        document.pop("timings", None)
    assert documents[0] == documents[1] == documents[2]


def test_a_worker_whose_cases_fail_to_build_prepares_nothing_and_each_grade_reports_the_fault(tmp_path):
    reference = tmp_path / "broken_reference.py"
    source = (REPO / "solutions" / "quiz4.py").read_text()
    reference.write_text(source + "\n\ndef grad_X(dY, W):\n    raise RuntimeError('broken reference')\n")
    path = write_rubric_copy(tmp_path)
    document = yaml.safe_load(path.read_text())
    document["reference"] = str(reference)
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    rubric = load_rubric(path)
    assert prepare_once(rubric) is None
    submission = sorted((FIXTURES / "quiz4" / "correct").glob("*.py"))[0]
    with pytest.raises(ReferenceModuleError, match="broken reference"):
        grade(submission, rubric, preparation=None)
