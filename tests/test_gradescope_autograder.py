"""The real autograder zip, unpacked into a temporary /autograder and run as Gradescope runs it.

Each test lays out a root as Gradescope does (the zip in ``source/``, ``run_autograder``
copied beside it, the student's files in ``submission/``), runs ``setup.sh`` (which skips
the installation: this interpreter already has what the grader needs) and then the real
``run_autograder`` with ``GRADER_AUTOGRADER_ROOT`` pointing at the root, and checks the
results.json it leaves against Gradescope's schema and the expected grade.

As root (Gradescope, CI) the roots live under /var/lib rather than /tmp: the sandbox gives
student code a fresh /tmp, so a root under /tmp would be out of its reach for that reason
alone, and the hostile test could not tell whether the permissions hold.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from conftest import FIXTURES, QUIZ4_RUBRIC, REPO
from grader.frontends.gradescope.build import build_autograder
from grader.frontends.gradescope.results import FALLBACK_FILE, STAFF_MESSAGE, validate_results
from grader.grading.report import validate_report

AS_ROOT = os.geteuid() == 0
CORPUS = FIXTURES / "quiz4"
VENV = Path(sys.prefix)


@pytest.fixture(scope="module")
def autograder_zip(tmp_path_factory) -> Path:
    return build_autograder(QUIZ4_RUBRIC, tmp_path_factory.mktemp("zip") / "autograder.zip")


@pytest.fixture
def root(autograder_zip, tmp_path):
    """An /autograder laid out as Gradescope lays it out, after setup.sh ran."""
    base = lay_out_root(autograder_zip, tmp_path)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def lay_out_root(autograder_zip: Path, tmp_path: Path) -> Path:
    base = Path(tempfile.mkdtemp(prefix="grader-gradescope-test-", dir="/var/lib")) if AS_ROOT else tmp_path / "root"
    base.mkdir(exist_ok=True)
    base.chmod(0o755)
    with zipfile.ZipFile(autograder_zip) as archive:
        archive.extractall(base / "source")
    for script in ("setup.sh", "run_autograder"):
        (base / "source" / script).chmod(0o755)
    shutil.copy2(base / "source" / "run_autograder", base / "run_autograder")
    (base / "submission").mkdir()
    setup = subprocess.run(
        ["bash", str(base / "source" / "setup.sh")],
        env=environment(base),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    assert "skipping the installation" in setup.stdout
    return base


def environment(base: Path, **extra: str) -> dict:
    kept = ("GRADER_CACHE_DIR",)  # the test run's own rubric cache (conftest), not ~/.cache
    env = {k: v for k, v in os.environ.items() if k in kept or not k.startswith(("GRADER_", "PYTHON"))}
    env.update({"GRADER_AUTOGRADER_ROOT": str(base), "GRADER_VENV": str(VENV), "GRADER_PYTHON": sys.executable})
    env.update(extra)
    return env


def run_autograder(base: Path, **extra: str) -> tuple[dict, str]:
    """Run the unpacked run_autograder; returns the results.json (checked against the schema) and stdout."""
    done = subprocess.run(
        [str(base / "run_autograder")], env=environment(base, **extra), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((base / "results" / "results.json").read_text())
    validate_results(document)
    return document, done.stdout


def submit(base: Path, source: Path | str, name: str = "quiz4.py") -> None:
    text = source.read_text() if isinstance(source, Path) else source
    (base / "submission" / name).write_text(text)


def results_by_id(document: dict) -> dict:
    return {t["tags"][0]: t for t in document["tests"]}


@pytest.mark.slow
def test_setup_leaves_the_grader_rubric_and_reference_readable_by_root_only(root):
    for path in [root / "source", *(root / "source").rglob("*")]:
        assert stat.S_IMODE(path.lstat().st_mode) & 0o077 == 0, path
    assert stat.S_IMODE((root / "results").stat().st_mode) == 0o755


def test_a_correct_submission_gets_full_marks_from_the_grader_inside_the_zip(root):
    submit(root, CORPUS / "correct" / "einsum.py")
    document, stdout = run_autograder(root)
    assert document["score"] == 11
    assert {t["status"] for t in document["tests"]} == {"passed"}
    assert f"from {root / 'source' / 'grader'}" in stdout, "graded by the zip's copy, not the checkout's"
    validate_report(document["extra_data"]["report"])


@pytest.mark.slow
@pytest.mark.root
def test_as_root_the_grader_inside_the_zip_drops_privileges_and_hides_the_reference(root):
    submit(root, CORPUS / "correct" / "einsum.py")
    document, _ = run_autograder(root)
    sandbox = document["extra_data"]["report"]["sandbox"]
    assert sandbox["privilege_drop"] and sandbox["reference_hidden"], sandbox


@pytest.mark.slow
def test_a_notebook_submitted_for_a_py_rubric_is_graded_by_the_grader_inside_the_zip(root, tmp_path):
    from notebooks import notebook_from_py

    notebook = notebook_from_py(CORPUS / "buggy" / "eq9_mean.py", tmp_path / "quiz4.ipynb")
    submit(root, notebook, "quiz4.ipynb")
    document, stdout = run_autograder(root)
    tests = results_by_id(document)
    assert "graded quiz4.ipynb" in stdout
    assert tests["eq9"]["status"] == "failed" and "averaged over the batch" in tests["eq9"]["output"]
    assert all(t["status"] == "passed" for key, t in tests.items() if key not in ("eq9", "backprop"))
    assert tests["backprop"]["score"] == tests["backprop"]["max_score"] == 0, "the check costs no point"


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
    document, _ = run_autograder(root)
    tests = results_by_id(document)
    assert tests[eq_id]["status"] == "failed" and tests[eq_id]["score"] < tests[eq_id]["max_score"]
    assert words in tests[eq_id]["output"]
    # the end-to-end check fails too (0 points), naming the piece to fix first
    assert all(t["status"] == "passed" for key, t in tests.items() if key not in (eq_id, "backprop"))
    check = tests["backprop"]
    assert check["score"] == 0 and (check["status"] == "passed" or "fix it first" in check["output"])
    assert document["score"] == pytest.approx(sum(t["score"] for t in document["tests"]))


@pytest.mark.slow
def test_student_details_from_the_metadata_are_recorded_in_the_report(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    users = [{"name": "Ada Lovelace", "email": "ada@example.edu", "id": 7}]
    (root / "submission_metadata.json").write_text(json.dumps({"id": 99, "users": users, "assignment": {}}))
    document, _ = run_autograder(root)
    metadata = document["extra_data"]["report"]["submission"]["metadata"]
    assert metadata["name"] == "Ada Lovelace" and metadata["email"] == "ada@example.edu"
    assert metadata["submission_id"] == "99"
    if AS_ROOT:
        assert stat.S_IMODE((root / "submission_metadata.json").stat().st_mode) == 0o600


@pytest.mark.slow
def test_malformed_metadata_is_not_an_error(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    (root / "submission_metadata.json").write_text("{ this is not json")
    document, stdout = run_autograder(root)
    assert document["score"] == 11 and "graded without it" in stdout


@pytest.mark.slow
def test_one_python_file_under_another_name_is_graded(root):
    submit(root, CORPUS / "correct" / "loops.py", name="my_answers.py")
    (root / "submission" / "README.txt").write_text("see my_answers.py\n")
    document, _ = run_autograder(root)
    assert document["score"] == 11 and "`my_answers.py`" in document["output"]


@pytest.mark.slow
def test_several_candidate_files_score_zero_with_a_message_not_an_autograder_failure(root):
    submit(root, CORPUS / "correct" / "loops.py", name="part1.py")
    submit(root, CORPUS / "correct" / "dot.py", name="part2.py")
    document, _ = run_autograder(root)
    assert document["score"] == 0
    assert "2 .py files" in document["output"] and "quiz4.py" in document["output"]
    assert "autograder_error" not in {tag for t in document["tests"] for tag in t["tags"]}


@pytest.mark.slow
def test_an_empty_submission_scores_zero_with_a_message(root):
    document, _ = run_autograder(root)
    assert document["score"] == 0 and "No Python file" in document["output"]


@pytest.mark.slow
def test_a_link_to_the_reference_is_not_graded(root):
    (root / "submission" / "quiz4.py").symlink_to(root / "source" / "assignment" / "solutions" / "quiz4.py")
    document, _ = run_autograder(root)
    assert document["score"] == 0 and "symbolic link" in document["output"]


@pytest.mark.slow
@pytest.mark.root  # only root can hand the files back to root
def test_every_run_closes_the_source_again_if_it_was_opened(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    reference = root / "source" / "assignment" / "solutions" / "quiz4.py"
    for path in (root / "source", reference.parent, reference):
        path.chmod(0o777)
    (root / "results").chmod(0o777)
    document, _ = run_autograder(root)
    assert document["score"] == 11
    assert [stat.S_IMODE(p.stat().st_mode) for p in (root / "source", reference.parent, reference)] == [0o700] * 3
    assert stat.S_IMODE((root / "results").stat().st_mode) == 0o755


@pytest.mark.slow
def test_a_failure_of_the_grader_itself_gives_the_fallback_results(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    (root / "source" / "assignment" / "solutions" / "quiz4.py").unlink()
    document, stdout = run_autograder(root)
    assert document["score"] == 0 and document["output"] == STAFF_MESSAGE
    [error] = document["tests"]
    assert error["visibility"] == "hidden" and "solutions/quiz4.py" in error["output"]
    assert "RubricError" in stdout


@pytest.mark.slow
def test_results_are_written_even_when_python_cannot_start(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    document, stdout = run_autograder(root, GRADER_PYTHON=str(root / "no-python-here"))
    assert document["score"] == 0 and document["output"] == STAFF_MESSAGE
    assert document["tests"][0]["visibility"] == "hidden" and "writing a fallback" in stdout


HOSTILE = """
import os, signal
import numpy as np

ROOT = {root!r}
for what, action in [
    ("reference", lambda: open(ROOT + "/source/assignment/solutions/quiz4.py").read()),
    ("rubric", lambda: open(ROOT + "/source/assignment/rubrics/quiz4.yaml").read()),
    ("source listing", lambda: os.listdir(ROOT + "/source")),
    ("results write", lambda: open(ROOT + "/results/results.json", "w").write('{{"score": 1000}}')),
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
def test_hostile_code_can_neither_read_the_reference_nor_write_the_grade(root):
    functions = (CORPUS / "correct" / "matmul.py").read_text()
    submit(root, HOSTILE.format(root=str(root), functions=functions))
    document, _ = run_autograder(root)
    text = json.dumps(document)
    assert document["score"] == 11, document["output"]
    assert "LEAK" not in text
    assert text.count("DENIED") >= 6, document["output"]
    assert "Reference solution" not in text and "Rubric for quiz 4" not in text, "no reference or rubric text"
    assert not (root / "results" / "extra.json").exists()
    assert sorted(p.name for p in (root / "results").iterdir()) == ["results.json"]


def test_the_zip_names_no_path_of_the_machine_that_built_it(root):
    script = (root / "run_autograder").read_text()
    assert "-m grader gradescope run" in script and "results.json" in script
    for path in (root / "source").rglob("*"):
        if path.is_file():
            assert str(REPO) not in path.read_text(errors="replace"), path


@pytest.mark.slow
def test_the_fallback_when_python_cannot_start_is_the_document_the_grader_ships(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    document, _ = run_autograder(root, GRADER_PYTHON=str(root / "no-python-here"))
    shipped = root / "source" / "grader" / "frontends" / "gradescope" / "fallback_results.json"
    assert document == json.loads(shipped.read_text()) == json.loads(FALLBACK_FILE.read_text())


def run_relative(base: Path, script: str, **extra: str) -> subprocess.CompletedProcess:
    """Run a script as an instructor would from the folder holding the root: every path given relative to it."""
    env = environment(base, **extra)
    env.pop("GRADER_PYTHON")
    env["GRADER_AUTOGRADER_ROOT"] = base.name
    env["GRADER_VENV"] = os.path.relpath(VENV, base.parent)
    return subprocess.run(
        ["bash", f"{base.name}/{script}"], cwd=base.parent, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_setup_and_run_autograder_take_a_relative_root_and_venv_from_the_working_folder(root):
    setup = run_relative(root, "source/setup.sh")
    assert setup.returncode == 0 and "skipping the installation" in setup.stdout, setup.stdout + setup.stderr
    assert not (root.parent / "source").exists() and not (root / "source" / root.name).exists()
    submit(root, CORPUS / "correct" / "matmul.py")
    done = run_relative(root, "run_autograder")
    assert done.returncode == 0, done.stdout + done.stderr
    document = json.loads((root / "results" / "results.json").read_text())
    assert document["score"] == 11, document["output"]
    assert f"Python {sys.version.split()[0]}" in done.stdout


@pytest.mark.slow
def test_run_autograder_uses_the_venv_named_by_grader_venv_as_setup_does(root):
    submit(root, CORPUS / "correct" / "matmul.py")
    env = environment(root, GRADER_VENV=str(root / "no-venv-here"))
    env.pop("GRADER_PYTHON")
    done = subprocess.run([str(root / "run_autograder")], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "writing a fallback" in done.stdout
    assert json.loads((root / "results" / "results.json").read_text())["output"] == STAFF_MESSAGE
