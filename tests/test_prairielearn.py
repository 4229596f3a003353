"""The PrairieLearn question folder, and its real entrypoint run as PrairieLearn runs it.

Each entrypoint test lays out a grading root as PrairieLearn does (the question's
``tests/`` folder in ``tests/``, the student's files in ``student/``, the question's data
in ``data/``), runs the built ``run.sh`` with ``GRADER_PL_ROOT`` pointing at the root, and
checks the results.json it leaves against PrairieLearn's format (our schema of it, the
1 MB limit, points within max_points) and the expected grade.

As root the roots live under /var/lib rather than /tmp: the sandbox gives student code
a fresh /tmp, so a root under /tmp would be out of its reach for that reason alone, and
the hostile test could not tell whether the permissions hold.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import FIXTURES, QUIZ4_RUBRIC, REPO, grade, write_rubric_copy
from grader.assignment.rubric import load_rubric
from grader.frontends.cli import main
from grader.frontends.prairielearn.build import ENTRYPOINT, build_question
from grader.frontends.prairielearn.results import (
    IMAGES_LEFT_OUT,
    MAX_RESULTS_BYTES,
    NOT_SHOWN_NAME,
    STAFF_MESSAGE,
    TRUNCATION_NOTE,
    encoded,
    fit_size,
    results_from_report,
    validate_results,
)

AS_ROOT = os.geteuid() == 0
CORPUS = FIXTURES / "quiz4"


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> Path:
    return build_question(QUIZ4_RUBRIC, tmp_path_factory.mktemp("question") / "quiz4")


@pytest.fixture
def root(question, tmp_path):
    """A /grade laid out as PrairieLearn lays it out for one grading job."""
    base = lay_out_root(question, tmp_path)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def lay_out_root(question: Path, tmp_path: Path) -> Path:
    base = Path(tempfile.mkdtemp(prefix="grader-pl-test-", dir="/var/lib")) if AS_ROOT else tmp_path / "grade"
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    shutil.copytree(question / "tests", base / "tests")
    (base / "student").mkdir()
    (base / "data").mkdir()
    (base / "data" / "data.json").write_text(json.dumps({"params": {}, "submitted_answers": {}}))
    return base


def environment(base: Path, **extra: str) -> dict:
    kept = ("GRADER_CACHE_DIR",)  # the test run's own rubric cache (conftest), not ~/.cache
    env = {k: v for k, v in os.environ.items() if k in kept or not k.startswith(("GRADER_", "PYTHON"))}
    env.update({"GRADER_PL_ROOT": str(base), "GRADER_PYTHON": sys.executable})
    env.update(extra)
    return env


def run_entrypoint(base: Path, **extra: str) -> tuple[dict, str]:
    """Run the question's run.sh; returns the results.json (checked against the format) and the job output."""
    done = subprocess.run(
        ["bash", str(base / "tests" / "run.sh")],
        env=environment(base, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (base / "results").iterdir()) == ["results.json"]
    raw = (base / "results" / "results.json").read_bytes()
    assert len(raw) <= MAX_RESULTS_BYTES
    document = json.loads(raw)
    validate_results(document)
    return document, done.stdout


def submit(base: Path, source: Path | str, name: str = "quiz4.py") -> None:
    text = source.read_text() if isinstance(source, Path) else source
    (base / "student" / name).write_text(text)


def by_name(document: dict) -> dict:
    return {t["name"]: t for t in document["tests"]}


def label(eq_id: str) -> str:
    return next(eq.label for eq in load_rubric(QUIZ4_RUBRIC).equations if eq.id == eq_id)


# --- the question folder --------------------------------------------------------------------


def test_the_question_is_an_externally_graded_v3_question_with_networking_off(question):
    info = json.loads((question / "info.json").read_text())
    options = info["externalGradingOptions"]
    assert info["type"] == "v3" and info["gradingMethod"] == "External" and info["singleVariant"] is True
    assert options["enabled"] is True and options["enableNetworking"] is False
    assert options["image"] == "prairielearn/grader-python" and options["entrypoint"] == ENTRYPOINT
    assert 1 <= options["timeout"] <= 600
    assert "serverFilesCourse" not in options, "the question carries all it needs in tests/"


def test_the_question_page_has_an_editor_for_the_expected_file_prefilled_with_the_template(question):
    page = (question / "question.html").read_text()
    assert '<pl-file-editor file-name="quiz4.py"' in page and 'source-file-name="quiz4.py"' in page
    assert "<pl-external-grader-results>" in page
    assert (question / "quiz4.py").read_bytes() == (REPO / "student_template" / "quiz4.py").read_bytes()


def test_tests_holds_the_grader_rubric_and_reference_and_nothing_names_the_build_machine(question):
    tests = question / "tests"
    assert (tests / "run.sh").stat().st_mode & stat.S_IXUSR
    assert (tests / "grader" / "untrusted" / "launch.py").is_file()
    assert (tests / "grader" / "schemas" / "prairielearn_results.schema.json").is_file()
    manifest = json.loads((tests / "prairielearn.json").read_text())
    assert (tests / manifest["rubric"]).read_bytes() == QUIZ4_RUBRIC.read_bytes()
    assert (tests / "assignment" / "solutions" / "quiz4.py").is_file()
    for path in question.rglob("*"):
        if path.is_file():
            assert str(REPO) not in path.read_text(errors="replace"), path


@pytest.mark.slow
def test_a_rebuild_keeps_the_uuid_so_students_submissions_stay_attached(tmp_path):
    folder = build_question(QUIZ4_RUBRIC, tmp_path / "q")
    first = json.loads((folder / "info.json").read_text())["uuid"]
    (folder / "tests" / "stale.txt").write_text("from an older build")
    assert main(["prairielearn", "build", "-o", str(folder)]) == 0
    assert json.loads((folder / "info.json").read_text())["uuid"] == first
    assert not (folder / "tests" / "stale.txt").exists()
    other = build_question(QUIZ4_RUBRIC, tmp_path / "other")
    assert json.loads((other / "info.json").read_text())["uuid"] != first


def test_a_folder_holding_something_else_is_refused(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["prairielearn", "build", "-o", str(tmp_path)]) == 2
    assert "not a question folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.slow
def test_a_reference_that_disagrees_with_finite_differences_builds_no_question(tmp_path, capsys):
    bad = tmp_path / "bad_reference.py"
    bad.write_text((REPO / "solutions" / "quiz4.py").read_text().replace("return dY @ W.T", "return 2 * dY @ W.T"))
    rubric = write_rubric_copy(tmp_path)
    rubric.write_text(rubric.read_text().replace(str(REPO / "solutions" / "quiz4.py"), str(bad)))
    assert main(["prairielearn", "build", "--rubric", str(rubric), "-o", str(tmp_path / "q")]) == 1
    assert "disagrees with finite differences" in capsys.readouterr().err
    assert not (tmp_path / "q").exists()


@pytest.mark.slow
def test_a_notebook_assignment_gets_an_upload_element(tmp_path):
    document = yaml.safe_load(QUIZ4_RUBRIC.read_text())
    for key in ("reference", "template", "mistakes"):
        document[key] = str((QUIZ4_RUBRIC.parent / document[key]).resolve())
    document["submission_filename"] = "quiz4.ipynb"
    rubric = tmp_path / "nb.yaml"
    rubric.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    folder = build_question(rubric, tmp_path / "q")
    page = (folder / "question.html").read_text()
    assert '<pl-file-upload file-names="quiz4.ipynb">' in page and "pl-file-editor" not in page
    assert not (folder / "quiz4.ipynb").exists()


def notebook(source: str) -> str:
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    return json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


# --- the entrypoint -------------------------------------------------------------------------


def test_a_correct_submission_scores_one_graded_by_the_copy_in_tests(root):
    submit(root, CORPUS / "correct" / "einsum.py")
    document, stdout = run_entrypoint(root)
    assert document["gradable"] is True and document["score"] == 1.0
    assert all(t["points"] == t["max_points"] for t in document["tests"])
    # the eight equations and the end-to-end check (0 points: a check, not counted)
    assert len(document["tests"]) == 9 and document["message"].startswith("11/11 points")
    assert document["tests"][-1]["message"] == "Passed: a check, not counted in the score."
    assert f"from {root / 'tests' / 'grader'}" in stdout, "graded by the question's copy, not the checkout's"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fixture", "eq_id", "words"),
    [
        ("buggy/eq9_mean.py", "eq9", "averaged over the batch"),
        ("buggy/eq13_mask_ge_zero.py", "eq13", "strictly"),
        ("buggy/eq15_missing.py", "eq15", "no function named"),
    ],
)
def test_a_buggy_submission_loses_points_only_where_it_is_wrong_and_is_told_why(root, fixture, eq_id, words):
    submit(root, CORPUS / fixture)
    document, _ = run_entrypoint(root)
    tests = by_name(document)
    wrong = tests[label(eq_id)]
    assert wrong["points"] < wrong["max_points"] and words in wrong["output"]
    assert all(t["points"] == t["max_points"] for name, t in tests.items() if name != label(eq_id))
    assert all("images" not in t for name, t in tests.items() if name != label(eq_id)), "right parts: no picture"
    if eq_id == "eq9":  # wrong values on the visible case: its heatmap, from the real entrypoint
        assert svg_of(wrong["images"][0]).startswith("<svg")
    total = sum(t["points"] for t in document["tests"]) / sum(t["max_points"] for t in document["tests"])
    assert document["score"] == pytest.approx(total, abs=1e-6) and 0 < document["score"] < 1


@pytest.mark.slow
def test_a_file_that_cannot_be_imported_is_graded_zero_and_says_why_once(root):
    submit(root, "def grad_X(dY, W):\n    return dY @ W.T\n\ndef broken(:\n")
    document, _ = run_entrypoint(root)
    assert document["gradable"] is True and document["score"] == 0
    assert "could not be imported: SyntaxError" in document["output"] and "line 4" in document["output"]
    assert all(t["points"] == 0 and "SyntaxError" not in t["output"] for t in document["tests"]), "said once"


@pytest.mark.slow
def test_a_notebook_upload_is_graded_like_the_file(root):
    submit(root, notebook((CORPUS / "buggy" / "eq9_mean.py").read_text()), name="quiz4.ipynb")
    document, _ = run_entrypoint(root)
    assert document["gradable"] is True and 0 < document["score"] < 1
    assert "averaged over the batch" in by_name(document)[label("eq9")]["output"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("files", "words"),
    [
        ({}, "No Python file was found"),
        ({"part1.py": "loops.py", "part2.py": "dot.py"}, "2 .py files"),
    ],
    ids=["missing", "two-files"],
)
def test_nothing_gradable_is_marked_not_gradable_so_no_attempt_is_lost(root, files, words):
    for name, fixture in files.items():
        submit(root, CORPUS / "correct" / fixture, name=name)
    document, stdout = run_entrypoint(root)
    assert document["gradable"] is False and "score" not in document
    assert any(words in error for error in document["format_errors"]) and "No attempt was used" in document["message"]
    assert "not gradable" in stdout


@pytest.mark.slow
def test_a_link_to_the_reference_is_not_gradable(root):
    (root / "student" / "quiz4.py").symlink_to(root / "tests" / "assignment" / "solutions" / "quiz4.py")
    document, _ = run_entrypoint(root)
    assert document["gradable"] is False and "symbolic link" in document["format_errors"][0]


@pytest.mark.slow
def test_a_file_over_the_size_limit_is_not_gradable(root):
    submit(root, "x = 1\n" + "#" * (3 * 1024 * 1024))
    document, _ = run_entrypoint(root)
    assert document["gradable"] is False and "MiB" in document["format_errors"][0]


@pytest.mark.slow
def test_a_failure_of_the_grader_itself_costs_no_attempt_and_goes_to_the_job_log(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    (root / "tests" / "assignment" / "solutions" / "quiz4.py").unlink()
    document, stdout = run_entrypoint(root)
    assert document == {"gradable": False, "format_errors": [STAFF_MESSAGE], "message": STAFF_MESSAGE, "output": ""}
    assert "RubricError" in stdout and "solutions/quiz4.py" in stdout


@pytest.mark.slow
def test_results_are_written_even_when_python_cannot_start(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    document, stdout = run_entrypoint(root, GRADER_PYTHON=str(root / "no-python-here"))
    assert document["gradable"] is False and document["format_errors"] == [STAFF_MESSAGE]
    assert "writing a fallback" in stdout


@pytest.mark.slow
def test_the_results_folder_is_created_when_absent(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    assert not (root / "results").exists()
    document, _ = run_entrypoint(root)
    assert document["score"] == 1.0


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.skipif(not AS_ROOT, reason="only root can hand the files back to root")
def test_tests_and_data_are_root_only_after_a_run(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    reference = root / "tests" / "assignment" / "solutions" / "quiz4.py"
    for path in (root / "tests", reference.parent, reference, root / "data"):
        path.chmod(0o777)
    run_entrypoint(root)
    for path in (root / "tests", reference.parent, root / "data"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
    assert stat.S_IMODE(reference.stat().st_mode) & 0o077 == 0
    assert stat.S_IMODE((root / "results").stat().st_mode) == 0o755


HOSTILE = """
import os, signal
import numpy as np

ROOT = {root!r}
for what, action in [
    ("reference", lambda: open(ROOT + "/tests/assignment/solutions/quiz4.py").read()),
    ("rubric", lambda: open(ROOT + "/tests/assignment/rubrics/quiz4.yaml").read()),
    ("tests listing", lambda: os.listdir(ROOT + "/tests")),
    ("data", lambda: open(ROOT + "/data/data.json").read()),
    ("results write", lambda: open(ROOT + "/results/results.json", "w").write('{{"score": 1}}')),
    ("results folder", lambda: open(ROOT + "/results/extra.json", "w").write("pwned")),
    ("parent kill", lambda: os.kill(os.getppid(), signal.SIGKILL)),
]:
    try:
        leaked = action()
        print("LEAK", what, str(leaked)[:200])
    except OSError as err:
        print("DENIED", what, type(err).__name__)

{functions}
"""


@pytest.mark.slow
@pytest.mark.root
@pytest.mark.skipif(not AS_ROOT, reason="the privilege drop needs root, as in PrairieLearn's container")
def test_hostile_code_can_neither_read_the_tests_nor_write_the_grade(root):
    functions = (CORPUS / "correct" / "matmul.py").read_text()
    submit(root, HOSTILE.format(root=str(root), functions=functions))
    document, _ = run_entrypoint(root)
    text = json.dumps(document)
    assert document["score"] == 1.0, document["output"]
    assert "LEAK" not in text and text.count("DENIED") >= 7, document["output"]
    assert "Reference solution" not in text and "Rubric for quiz 4" not in text


# --- the results, in process ----------------------------------------------------------------


def test_no_hidden_input_or_expected_value_reaches_the_results(quiz4):
    report, _ = grade(CORPUS / "buggy" / "eq12_scaled.py", quiz4)
    document = results_from_report(report, "quiz4.py")
    validate_results(document)
    text = json.dumps(document, ensure_ascii=False)
    hidden_numbers = set()
    for cases in report.cases.values():
        for case in cases:
            if not case.visible:
                for values in (case.expected, *case.inputs.values()):  # labels are small integers: not telling
                    hidden_numbers |= {f"{v:.6g}" for v in np.ravel(values) if abs(v - round(v)) > 1e-3}
    # a probe's round values (0.1 beside a kink) could be any number the grader writes: only
    # numbers with 4 or more significant digits tell a hidden case apart
    telling = {n for n in hidden_numbers if len(n.lstrip("-0.").split("e")[0].replace(".", "")) >= 4}
    assert telling and not [n for n in telling if n in text]
    assert "Hidden cases: 0 of 5 passed" in by_name(document)[label("eq12")]["output"]  # 4 and the square probe


def test_parts_the_rubric_does_not_show_yet_are_folded_into_one_test(quiz4, tmp_path):
    document = yaml.safe_load(QUIZ4_RUBRIC.read_text())
    for key in ("reference", "template", "mistakes"):
        document[key] = str((QUIZ4_RUBRIC.parent / document[key]).resolve())
    for eq in document["equations"][-2:]:
        eq["visibility"] = "after_published"
    path = tmp_path / "quiz4.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    report, _ = grade(CORPUS / "buggy" / "eq15_mean.py", load_rubric(path))
    results = results_from_report(report, "quiz4.py")
    validate_results(results)
    later = by_name(results)[NOT_SHOWN_NAME]
    shown = [eq["label"] for eq in document["equations"][:-2]]
    assert [t["name"] for t in results["tests"]] == [*shown, NOT_SHOWN_NAME]
    assert later["max_points"] == sum(eq["points"] for eq in document["equations"][-2:])
    assert later["points"] < later["max_points"] and later["output"] == ""
    assert "averaged" not in json.dumps(results), "the hidden part's diagnosis is not shown"


def test_an_oversized_result_is_cut_to_fit_with_a_note_and_stays_valid(quiz4):
    report, _ = grade(CORPUS / "correct" / "matmul.py", quiz4)
    document = results_from_report(report, "quiz4.py")
    document["output"] = "printed line\n" * 200_000
    document["tests"][0]["output"] = "é" * 600_000
    fitted = fit_size(document)
    assert len(encoded(fitted)) <= MAX_RESULTS_BYTES
    validate_results(fitted)
    assert fitted["output"].endswith(TRUNCATION_NOTE) and fitted["score"] == 1.0
    assert [t["name"] for t in fitted["tests"]] == [t["name"] for t in document["tests"]]
    with pytest.raises(ValueError, match="1 MB"):
        validate_results(document)


def svg_of(image: dict) -> str:
    assert image["url"].startswith("data:image/svg+xml;base64,")
    return base64.b64decode(image["url"].split(",", 1)[1]).decode("utf-8")


def test_a_wrong_visible_case_gets_its_heatmap_as_an_svg_data_url_and_hidden_cases_get_none(quiz4):
    report, _ = grade(CORPUS / "buggy" / "eq12_scaled.py", quiz4)
    document = results_from_report(report, "quiz4.py")
    validate_results(document)
    tests = by_name(document)
    [image] = tests[label("eq12")]["images"]
    picture = ET.fromstring(svg_of(image))
    assert picture.tag == "{http://www.w3.org/2000/svg}svg" and "entries wrong" in picture.findtext("{*}title")
    assert image["label"].startswith("visible case 0: ") and "red where yours is larger" in image["label"]
    assert [name for name, test in tests.items() if "images" in test] == [label("eq12")]
    assert "images" not in document, "pictures belong to the part they show"
    # wrong on the hidden square case only: no picture anywhere
    hidden_only, _ = grade(CORPUS / "buggy" / "eq1_square_shortcut.py", quiz4)
    document = results_from_report(hidden_only, "quiz4.py")
    validate_results(document)
    assert by_name(document)[label("eq1")]["points"] < 2 and '"images"' not in json.dumps(document)


def test_pictures_are_left_out_first_with_a_note_when_the_result_would_not_fit(quiz4):
    report, _ = grade(CORPUS / "buggy" / "eq12_scaled.py", quiz4)
    document = results_from_report(report, "quiz4.py")
    pictured = by_name(document)[label("eq12")]
    pictured["images"] = pictured["images"] * 3000  # a picture of a few KB, over and over: several MB
    assert len(encoded(document)) > MAX_RESULTS_BYTES
    fitted = fit_size(document)
    validate_results(fitted)
    eq12 = by_name(fitted)[label("eq12")]
    assert "images" not in eq12 and eq12["output"].endswith(IMAGES_LEFT_OUT)
    assert fitted["output"] == document["output"], "the text survives: the pictures were enough"
    assert fitted["score"] == document["score"]
