"""The second assignment runs on every platform unchanged: the Gradescope zip and the PrairieLearn question.

The engine claims an assignment is data: ``layers`` is graded by the same zip, the same
entrypoint and the same runners as quiz 4, with only ``--rubric`` changed. Each test
runs the real shipped scripts as the platform runs them (the helpers of the quiz-4
platform tests lay out the roots).
"""

from __future__ import annotations

import csv
import io
import shutil

import pytest
import test_gradescope_autograder as gradescope
import test_prairielearn as prairielearn

from conftest import FIXTURES, REPO
from grader.assignment.rubric import load_rubric
from grader.frontends.cli import main
from grader.frontends.gradescope.build import build_autograder
from grader.frontends.prairielearn.build import build_question

LAYERS_RUBRIC = REPO / "rubrics" / "layers.yaml"
CORPUS = FIXTURES / "layers"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory):
    return build_autograder(LAYERS_RUBRIC, tmp_path_factory.mktemp("zip") / "autograder.zip")


@pytest.fixture(scope="module")
def question(tmp_path_factory):
    return build_question(LAYERS_RUBRIC, tmp_path_factory.mktemp("question") / "layers")


@pytest.fixture
def gradescope_root(autograder_zip, tmp_path):
    base = gradescope.lay_out_root(autograder_zip, tmp_path)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def prairielearn_root(question, tmp_path):
    base = prairielearn.lay_out_root(question, tmp_path)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def test_gradescope_gives_a_correct_layers_submission_full_marks(gradescope_root):
    gradescope.submit(gradescope_root, CORPUS / "correct" / "im2col_namedtuples.py", "layers.py")
    document, _ = gradescope.run_autograder(gradescope_root)
    assert document["score"] == load_rubric(LAYERS_RUBRIC).max_score == 27
    assert {t["status"] for t in document["tests"]} == {"passed"}


def test_gradescope_takes_points_only_from_the_item_a_layers_bug_is_in(gradescope_root):
    gradescope.submit(gradescope_root, CORPUS / "buggy" / "affine_db_keepdims.py", "layers.py")
    document, _ = gradescope.run_autograder(gradescope_root)
    lost = {t["tags"][0]: t for t in document["tests"] if t["score"] < t["max_score"]}
    assert list(lost) == ["affine_backward.db"]
    assert "keepdims" in lost["affine_backward.db"]["output"]


def test_prairielearn_gives_a_correct_layers_submission_score_one(prairielearn_root):
    prairielearn.submit(prairielearn_root, CORPUS / "correct" / "im2col_namedtuples.py", "layers.py")
    document, _ = prairielearn.run_entrypoint(prairielearn_root)
    assert document["gradable"] is True and document["score"] == 1


def test_prairielearn_names_the_forward_a_backward_needs_when_the_forward_crashes(prairielearn_root):
    prairielearn.submit(prairielearn_root, CORPUS / "buggy" / "affine_forward_crash.py", "layers.py")
    document, _ = prairielearn.run_entrypoint(prairielearn_root)
    assert 0 < document["score"] < 1
    backward = [t for t in document["tests"] if "affine_backward()" in t["description"]]
    assert len(backward) == 3 and all(t["points"] == 0 for t in backward)
    assert all("fix affine_forward first" in t["output"] for t in backward)


def test_grade_batch_grades_a_layers_class_into_its_gradebook_and_pages(tmp_path):
    course = tmp_path / "class"
    course.mkdir()
    for sub_id, fixture in {
        "ada": "correct/im2col_namedtuples.py",
        "bob": "buggy/affine_db_keepdims.py",
        "cy": "buggy/affine_forward_crash.py",
    }.items():
        shutil.copy(CORPUS / fixture, course / f"{sub_id}.py")
    outdir = tmp_path / "out"
    assert main(["batch", str(course), "-o", str(outdir), "--rubric", str(LAYERS_RUBRIC), "-j", "2"]) == 0
    text = (outdir / "gradebook.csv").read_text(encoding="utf-8-sig")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(text))}
    assert float(rows["ada"]["total"]) == 27
    assert float(rows["bob"]["total"]) == 26.5  # shape credit only on affine_backward.db
    assert 0 < float(rows["cy"]["total"]) < 26.5  # the forward and the three backward items it feeds
    assert {"affine_backward.db", "conv_backward_naive.dw"} <= set(rows["ada"])
    assert sorted(p.name for p in (outdir / "pages").iterdir()) == ["ada.html", "bob.html", "cy.html"]
    assert "fix affine_forward first" in (outdir / "pages" / "cy.html").read_text(encoding="utf-8")
