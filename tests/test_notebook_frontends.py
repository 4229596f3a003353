"""Notebooks through every front end: a class folder, a Gradescope export, and the Gradescope runner."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import FIXTURES, REPO, write_rubric_copy
from grader.frontends.batch.roster import find_submissions
from grader.frontends.choice import choose_file
from grader.frontends.cli import main
from grader.frontends.gradescope.runner import autograder_paths, run_autograder
from grader.grading.notebook import MAX_SUBMISSION_BYTES
from grader.grading.report import validate_report
from notebooks import notebook_from_py, write_notebook

SOLUTION = REPO / "solutions" / "quiz4.py"
BUGGY = FIXTURES / "quiz4" / "buggy" / "eq1_sign.py"


@pytest.fixture(scope="module")
def rubric(tmp_path_factory) -> Path:
    return write_rubric_copy(tmp_path_factory.mktemp("rubric"), time_limit=0.5)


def gradebook(outdir: Path) -> dict[str, dict[str, str]]:
    text = (outdir / "gradebook.csv").read_text(encoding="utf-8-sig")
    return {row["id"]: row for row in csv.DictReader(io.StringIO(text))}


def padded_notebook(py: Path, path: Path, padding: int) -> Path:
    """The .py file as a notebook that also carries ``padding`` bytes of image attachments."""
    notebook_from_py(py, path)
    notebook = nbformat.read(path, as_version=4)
    picture = nbformat.v4.new_markdown_cell("![plot](attachment:plot.png)")
    picture.attachments = {"plot.png": {"image/png": "A" * padding}}
    notebook.cells.insert(0, picture)
    nbformat.write(notebook, path)
    return path


# --- grade batch ------------------------------------------------------------------------------


def test_a_class_of_notebooks_files_and_folders_gets_the_gradebook_its_py_files_would(rubric, tmp_path):
    root = tmp_path / "class"
    (root / "ben").mkdir(parents=True)
    (root / "cy").mkdir()
    (root / "dee").mkdir()
    notebook_from_py(SOLUTION, root / "ada.ipynb")
    notebook_from_py(BUGGY, root / "ben" / "quiz4.ipynb")
    shutil.copy(SOLUTION, root / "cy" / "quiz4.py")  # the rubric's name wins over another notebook
    notebook_from_py(BUGGY, root / "cy" / "scratch.ipynb")
    (root / "dee" / "quiz4.ipynb").write_text('{"cells": [', encoding="utf-8")
    (root / "ben" / ".ipynb_checkpoints").mkdir()
    notebook_from_py(SOLUTION, root / "ben" / ".ipynb_checkpoints" / "quiz4-checkpoint.ipynb")
    outdir = tmp_path / "out"
    assert main(["batch", str(root), "-o", str(outdir), "--rubric", str(rubric), "-j", "2"]) == 0
    rows = gradebook(outdir)
    assert {k: (r["status"], r["total"]) for k, r in rows.items()} == {
        "ada": ("graded", "11"),
        "ben": ("graded", "9"),
        "cy": ("graded", "11"),
        "dee": ("ungradable", ""),
    }
    assert rows["dee"]["note"] == "dee: not a notebook: the file is not valid JSON (line 1, column 12)"
    for report in (outdir / "reports").glob("*.json"):
        validate_report(json.loads(report.read_text()))


def test_a_gradescope_export_of_notebooks_is_unpacked_and_graded(rubric, tmp_path):
    big = padded_notebook(SOLUTION, tmp_path / "big.ipynb", MAX_SUBMISSION_BYTES + 100_000)  # over a .py's cap
    small = notebook_from_py(BUGGY, tmp_path / "small.ipynb")
    metadata = {
        "submission_1": {":submitters": [{":name": "Ada Lovelace", ":sid": "1", ":email": "ada@example.edu"}]},
        "submission_2": {":submitters": [{":name": "Alan Turing", ":sid": "2", ":email": "alan@example.edu"}]},
    }
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr("assignment_5_export/submission_metadata.yml", yaml.safe_dump(metadata))
        zipped.write(big, "assignment_5_export/submission_1/quiz4.ipynb")
        zipped.write(small, "assignment_5_export/submission_2/work/Quiz4.ipynb")
    outdir = tmp_path / "out"
    assert main(["batch", str(archive), "-o", str(outdir), "--rubric", str(rubric)]) == 0
    rows = gradebook(outdir)
    assert {k: (r["name"], r["status"], r["total"]) for k, r in rows.items()} == {
        "submission_1": ("Ada Lovelace", "graded", "11"),
        "submission_2": ("Alan Turing", "graded", "9"),
    }


def test_a_student_folder_with_a_notebook_and_a_helper_py_grades_the_notebook_named_like_the_rubric(tmp_path):
    folder = tmp_path / "class" / "ada"
    folder.mkdir(parents=True)
    (folder / "helpers.py").write_text("x = 1\n")
    notebook_from_py(SOLUTION, folder / "quiz4.ipynb")
    found, _ = find_submissions(tmp_path / "class", "quiz4.py", tmp_path / "unpacked")
    assert [(s.id, s.path.name if s.path else None, s.problem) for s in found] == [("ada", "quiz4.ipynb", "")]


# --- Gradescope -------------------------------------------------------------------------------


def test_the_runner_takes_the_notebook_for_a_rubric_expecting_a_py_file_and_the_py_first_when_both(tmp_path):
    notebook_from_py(SOLUTION, tmp_path / "quiz4.ipynb")
    (tmp_path / "other.py").write_text("x = 1\n")
    assert choose_file(tmp_path, "quiz4.py").path == tmp_path / "quiz4.ipynb"
    shutil.copy(SOLUTION, tmp_path / "quiz4.py")
    assert choose_file(tmp_path, "quiz4.py").path == tmp_path / "quiz4.py"
    assert choose_file(tmp_path, "quiz4.ipynb").path == tmp_path / "quiz4.ipynb"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("expected_name", "submitted"),
    [("quiz4.py", "quiz4.ipynb"), ("quiz4.ipynb", "quiz4.ipynb"), ("quiz4.ipynb", "quiz4.py")],
)
def test_the_gradescope_runner_grades_either_kind_for_either_expected_name(tmp_path, expected_name, submitted):
    rubric = write_rubric_copy(tmp_path, time_limit=0.5)
    document = yaml.safe_load(rubric.read_text())
    document["submission_filename"] = expected_name
    rubric.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    paths = autograder_paths(tmp_path / "autograder")
    paths.submission.mkdir(parents=True)
    if submitted.endswith(".ipynb"):
        notebook_from_py(BUGGY, paths.submission / submitted)
    else:
        shutil.copy(BUGGY, paths.submission / submitted)
    results = run_autograder(paths, rubric)
    assert results["score"] == 9, results["output"]
    assert f"Graded `{submitted}`" in results["output"]
    report = results["extra_data"]["report"]
    eq1 = next(eq for eq in report["equations"] if eq["id"] == "eq1")
    assert eq1["status"] != "passed" and eq1["score"] == 0


def test_the_gradescope_output_carries_the_notebooks_notes(tmp_path, rubric):
    paths = autograder_paths(tmp_path / "autograder")
    paths.submission.mkdir(parents=True)
    cells = [SOLUTION.read_text(), "%matplotlib inline", "def grad_S(P, y):\n    return P -"]
    write_notebook(paths.submission / "quiz4.ipynb", cells)
    results = run_autograder(paths, rubric)
    assert results["score"] == 11
    assert "Notes on your file:" in results["output"] and "cell 4 uses IPython syntax" in results["output"]
    assert "cell 6 was not run: it has a syntax error at line 2" in results["output"]


def test_an_unreadable_notebook_on_gradescope_is_a_message_for_the_student(tmp_path, rubric):
    paths = autograder_paths(tmp_path / "autograder")
    paths.submission.mkdir(parents=True)
    (paths.submission / "quiz4.ipynb").write_text('{"nbformat": 3, "worksheets": []}')
    results = run_autograder(paths, rubric)
    assert results["score"] == 0
    assert "`quiz4.ipynb` could not be graded: a notebook in format version 3" in results["output"]
