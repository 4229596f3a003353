"""Which file of a folder is graded: one rule for the batch roster and the Gradescope runner, worded for each."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.frontends.choice import MAX_FOLDER_DEPTH, Problem, choose_file


def write(path: Path, text: str = "x = 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def nest(base: Path, depth: int) -> Path:
    path = base
    for _ in range(depth):
        path = path / "d"
    return path


@pytest.mark.parametrize(
    ("files", "graded"),
    [
        (["quiz4.py", "helpers.py"], "quiz4.py"),
        (["hw/quiz4.py", "helpers.py"], "hw/quiz4.py"),
        (["quiz4.py", "hw/quiz4.py", "old/quiz4.py"], "quiz4.py"),
        (["Quiz4.py", "helpers.py"], "Quiz4.py"),
        (["my answers.py", "notes/readme.txt"], "my answers.py"),
        (["answer.py", ".hidden.py", "__pycache__/x.py", ".git/hook.py", "__MACOSX/._answer.py"], "answer.py"),
        (["quiz4.ipynb", "helpers.py"], "quiz4.ipynb"),
        (["quiz4.ipynb", "quiz4.py"], "quiz4.py"),
        (["my answers.ipynb", ".ipynb_checkpoints/my answers-checkpoint.ipynb"], "my answers.ipynb"),
    ],
    ids=[
        "top-level name",
        "name in a folder",
        "top level wins",
        "name ignoring case",
        "only file",
        "junk skipped",
        "the notebook of the name",
        "the rubric's own suffix first",
        "only notebook",
    ],
)
def test_the_file_graded_follows_one_rule(tmp_path, files, graded):
    for name in files:
        write(tmp_path / name)
    choice = choose_file(tmp_path, "quiz4.py")
    assert choice.path == tmp_path / graded and choice.kind is None and choice.problem == ""


@pytest.mark.parametrize(
    ("files", "kind", "plain"),
    [
        ([], Problem.NO_FILE, "no .py file or notebook in ada/"),
        (
            ["a/quiz4.py", "b/quiz4.py"],
            Problem.SEVERAL_NAMED,
            "2 files named quiz4.py in ada/ (a/quiz4.py, b/quiz4.py)",
        ),
        (["QUIZ4.py", "quiz4.PY.py", "Quiz4.py"], Problem.SEVERAL_NAMED, "2 files named quiz4.py in ada/"),
        (
            ["a.py", "b.ipynb"],
            Problem.SEVERAL,
            "2 .py files or notebooks in ada/ (a.py, b.ipynb) and none is named quiz4.py",
        ),
    ],
    ids=["none", "two named in folders", "two named ignoring case", "two unnamed"],
)
def test_no_file_or_several_is_a_problem_worded_for_the_roster_and_for_the_student(tmp_path, files, kind, plain):
    folder = tmp_path / "ada"
    folder.mkdir()
    for name in files:
        write(folder / name)
    choice = choose_file(folder, "quiz4.py")
    assert choice.path is None and choice.kind is kind
    assert choice.plain("ada").startswith(plain)
    assert "`quiz4.py`" in choice.problem and "submit again" in choice.problem.lower()


def test_a_link_inside_the_folder_is_followed_but_one_out_of_it_is_not(tmp_path):
    folder = tmp_path / "ada"
    write(folder / "work" / "final.py")
    (folder / "quiz4.py").symlink_to(folder / "work" / "final.py")
    assert choose_file(folder, "quiz4.py").path == folder / "quiz4.py"
    (folder / "quiz4.py").unlink()
    secret = write(tmp_path / "reference.py")
    (folder / "quiz4.py").symlink_to(secret)
    choice = choose_file(folder, "quiz4.py")
    assert choice.path is None and choice.kind is Problem.UNSAFE
    assert choice.plain("ada") == (
        "ada/quiz4.py is a symbolic link to a file outside the student's folder; copy the file in instead"
    )
    assert choice.problem.startswith("`quiz4.py` is a symbolic link")


def test_files_deeper_than_the_bound_are_not_candidates(tmp_path):
    write(nest(tmp_path, MAX_FOLDER_DEPTH) / "deepest_seen.py")
    write(nest(tmp_path, MAX_FOLDER_DEPTH + 1) / "too_deep.py")
    assert choose_file(tmp_path, "quiz4.py").path == nest(tmp_path, MAX_FOLDER_DEPTH) / "deepest_seen.py"


def test_a_file_name_that_is_not_utf8_is_named_in_words_json_can_hold(tmp_path):
    for name in (b"caf\xe9.py", b"b.py"):
        (tmp_path / name.decode("utf-8", "surrogateescape")).write_text("x = 1\n")
    choice = choose_file(tmp_path, "quiz4.py")
    assert "caf\ufffd.py" in choice.plain("x") and "caf\ufffd.py" in choice.problem
    (choice.plain("x") + choice.problem).encode("utf-8")
