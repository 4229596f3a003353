"""Gradescope, in-process: which file is graded, results.json as Gradescope specifies it, the fallback, the zip."""

from __future__ import annotations

import json
import os
import stat
import zipfile
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import FIXTURES, QUIZ4_RUBRIC, REPO, grade, write_rubric_copy
from grader.assignment.rubric import load_rubric
from grader.errors import UnsoundRubricError
from grader.frontends.choice import choose_file
from grader.frontends.cli import main
from grader.frontends.gradescope.build import build_autograder
from grader.frontends.gradescope.metadata import read_metadata
from grader.frontends.gradescope.results import (
    FALLBACK_FILE,
    STAFF_MESSAGE,
    fallback_results,
    problem_results,
    results_from_report,
    validate_results,
)
from grader.frontends.gradescope.runner import autograder_paths, run_autograder
from grader.frontends.markdown import code_block, escape_markdown
from grader.grading.report import validate_report

EXAMPLE = REPO / "examples" / "quiz4_submission.py"


# --- the schema -------------------------------------------------------------------------------


def specification_example() -> dict:
    """The example results.json of Gradescope's autograder specification, every optional key used."""
    return {
        "score": 44.0,
        "execution_time": 136,
        "output": "Text relevant to the entire submission",
        "output_format": "simple_format",
        "test_output_format": "text",
        "test_name_format": "text",
        "visibility": "after_due_date",
        "stdout_visibility": "visible",
        "extra_data": {},
        "tests": [
            {
                "score": 2.0,
                "max_score": 2.0,
                "status": "passed",
                "name": "Your name here",
                "name_format": "text",
                "number": "1.1",
                "output": "Giant multiline string that will be placed in a <pre> tag and collapsed by default",
                "output_format": "text",
                "tags": ["tag1", "tag2", "tag3"],
                "visibility": "visible",
                "extra_data": {},
            }
        ],
        "leaderboard": [
            {"name": "Accuracy", "value": 0.926},
            {"name": "Time", "value": 15.1, "order": "asc"},
            {"name": "Stars", "value": "*****"},
        ],
    }


def test_the_schema_accepts_the_specifications_own_example():
    validate_results(specification_example())


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["tests"][0].update(status="partial"),
        lambda d: d["tests"][0].update(visibility="public"),
        lambda d: d.update(output_format="markdown"),
        lambda d: d.update(stdout_visibility="students"),
        lambda d: d["tests"][0].update(number=1),
        lambda d: d.update(scor=1.0),
        lambda d: (d.pop("score"), d["tests"][0].pop("score")),
    ],
    ids=["test status", "visibility", "output format", "stdout visibility", "number", "typo", "no score anywhere"],
)
def test_the_schema_rejects_what_gradescope_would_not_understand(change):
    document = specification_example()
    change(document)
    with pytest.raises(jsonschema.ValidationError):
        validate_results(document)


# --- results from a report ----------------------------------------------------------------------


def test_a_graded_submission_gives_one_gradescope_test_per_equation(quiz4):
    report, _ = grade(EXAMPLE, quiz4, metadata={"name": "Ada Lovelace"})
    document = results_from_report(report, "quiz4.py", 1.2)
    validate_results(document)
    assert document["score"] == report.score == pytest.approx(sum(t["score"] for t in document["tests"]))
    assert document["execution_time"] == 2
    assert document["stdout_visibility"] == "hidden" and document["visibility"] == "visible"
    assert document["output_format"] == "md" and "**" in document["output"]
    # a 0-point check is named as one, and passes only when it passed: it has no marks to be full
    assert [t["name"] for t in document["tests"]] == [
        eq.label if eq.counted else f"{eq.label} (a check, not counted)" for eq in quiz4.equations
    ]
    assert [t["number"] for t in document["tests"]] == [str(i) for i in range(1, len(quiz4.equations) + 1)]
    for test, result in zip(document["tests"], report.equations):
        assert test["max_score"] == result.equation.points
        assert test["visibility"] == result.equation.visibility
        # a visible case with wrong values brings its heatmap, an inline SVG, which needs HTML
        # (an end-to-end check's outputs get no picture: its case holds no single answer)
        pictured = not result.equation.outputs and any(
            c.visible and c.status.value == "wrong_values" for c in result.cases
        )
        assert test["output_format"] == ("html" if pictured else "md")
        assert ("<svg" in test["output"]) == pictured
        full = test["score"] == test["max_score"] if result.equation.counted else result.status.value == "passed"
        assert test["status"] == ("passed" if full else "failed")
        assert result.equation.id in test["tags"] and result.status.value in test["tags"]
    validate_report(document["extra_data"]["report"])
    assert document["extra_data"]["report"]["submission"]["metadata"] == {"name": "Ada Lovelace"}


def test_feedback_is_markdown_with_the_visible_case_and_only_a_count_of_hidden_ones(quiz4):
    report, _ = grade(EXAMPLE, quiz4)
    tests = {t["tags"][0]: t for t in results_from_report(report, "quiz4.py", 0.5)["tests"]}
    shape_only = tests["eq15"]["output"]  # wrong shape on the visible case: no picture, so Markdown
    assert tests["eq15"]["output_format"] == "md" and shape_only.startswith("**Partial**")
    assert "**Visible case 0** (N=" in shape_only and "Hidden cases: 0 of 4 passed" in shape_only
    assert "grad\\_b1" in shape_only, "underscores are escaped so Markdown doesn't italicize"
    assert tests["eq1"]["status"] == "passed" and tests["eq15"]["status"] == "failed"


def test_a_wrong_visible_case_gets_its_heatmap_in_html_and_a_hidden_one_gets_none(quiz4):
    report, _ = grade(EXAMPLE, quiz4)
    tests = {t["tags"][0]: t for t in results_from_report(report, "quiz4.py", 0.5)["tests"]}
    averaged = tests["eq9"]
    assert averaged["output_format"] == "html" and averaged["output"].startswith("<p><strong>Partial</strong>")
    text = averaged["output"]
    assert "averaged over the batch" in text and "<th>entry</th><th>expected</th><th>got</th>" in text
    assert "Hidden cases: 1 of 6 passed" in text  # 4 regular hidden cases and eq9's 2 label probes
    assert text.count("<svg") == 1 and "visible case 0: 72 of 72 entries wrong" in text
    assert "<script" not in text and "href" not in text
    # the shortcut is wrong on the hidden square case only: Markdown, and no picture anywhere
    hidden_only, _ = grade(FIXTURES / "quiz4" / "buggy" / "eq1_square_shortcut.py", quiz4)
    document = results_from_report(hidden_only, "quiz4.py", 0.5)
    validate_results(document)
    assert document["tests"][0]["status"] == "failed" and document["tests"][0]["output_format"] == "md"
    assert "<svg" not in json.dumps(document)


def test_each_equation_keeps_the_visibility_its_rubric_gives(tmp_path):
    document = yaml.safe_load(QUIZ4_RUBRIC.read_text())
    for key in ("reference", "template", "mistakes"):
        document[key] = str((QUIZ4_RUBRIC.parent / document[key]).resolve())
    document["equations"][1]["visibility"] = "after_due_date"
    document["equations"][2]["visibility"] = "hidden"
    document["equations"][3]["visibility"] = "after_published"
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    report, _ = grade(EXAMPLE, load_rubric(path))
    results = results_from_report(report, "quiz4.py", 0.1)
    validate_results(results)
    assert [t["visibility"] for t in results["tests"][:5]] == [
        "visible",
        "after_due_date",
        "hidden",
        "after_published",
        "visible",
    ]


def test_markdown_escaping_keeps_code_spans_and_fences_outlast_the_text():
    assert escape_markdown("P_{i,j} > 0, use `x.copy()`") == "P\\_{i,j} \\> 0, use `x.copy()`"
    assert escape_markdown("a ` b_c") == "a \\` b\\_c"
    assert code_block("print('```')").startswith("````text\n")


def test_a_submission_problem_scores_zero_with_the_message_on_every_test(quiz4):
    document = problem_results(quiz4, "No Python file was found in your submission.", {}, 0.2)
    validate_results(document)
    assert document["score"] == 0 and "No Python file" in document["output"]
    assert all(t["score"] == 0 and "No Python file" in t["output"] for t in document["tests"])
    assert sum(t["max_score"] for t in document["tests"]) == quiz4.max_score


def test_the_fallback_tells_the_student_to_contact_staff_and_shows_the_error_to_instructors_only():
    document = fallback_results("Traceback ...\nRuntimeError: boom", 3.0)
    validate_results(document)
    assert document["score"] == 0 and document["output"] == STAFF_MESSAGE
    assert "boom" not in document["output"]
    [error] = document["tests"]
    assert error["visibility"] == "hidden" and "boom" in error["output"] and error["max_score"] == 0


# --- which file is graded -------------------------------------------------------------------


def test_the_expected_file_name_is_graded_even_beside_other_python_files(tmp_path):
    (tmp_path / "quiz4.py").write_text("x = 1\n")
    (tmp_path / "helpers.py").write_text("y = 2\n")
    assert choose_file(tmp_path, "quiz4.py").path == tmp_path / "quiz4.py"


def test_the_expected_file_is_found_in_a_folder_and_the_top_level_one_wins(tmp_path):
    (tmp_path / "repo" / "old").mkdir(parents=True)
    (tmp_path / "repo" / "quiz4.py").write_text("x = 1\n")
    assert choose_file(tmp_path, "quiz4.py").path == tmp_path / "repo" / "quiz4.py"
    (tmp_path / "repo" / "old" / "quiz4.py").write_text("x = 0\n")
    assert choose_file(tmp_path, "quiz4.py").path is None
    (tmp_path / "quiz4.py").write_text("x = 2\n")
    assert choose_file(tmp_path, "quiz4.py").path == tmp_path / "quiz4.py"


def test_a_single_python_file_with_another_name_is_graded(tmp_path):
    (tmp_path / "Quiz 4 final.py").write_text("x = 1\n")
    (tmp_path / "notes.txt").write_text("hi\n")
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "._Quiz 4 final.py").write_text("junk")
    assert choose_file(tmp_path, "quiz4.py").path == tmp_path / "Quiz 4 final.py"


def test_no_python_file_is_a_message_for_the_student(tmp_path):
    (tmp_path / "answers.pdf").write_text("%PDF")  # notebooks are graded now (issue 12): a PDF is not
    choice = choose_file(tmp_path, "quiz4.py")
    assert choice.path is None and "No Python file" in choice.problem and "`quiz4.py`" in choice.problem
    assert choose_file(tmp_path / "absent", "quiz4.py").path is None


def test_several_python_files_without_the_expected_name_is_a_message_naming_them(tmp_path):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text("x = 1\n")
    choice = choose_file(tmp_path, "quiz4.py")
    assert choice.path is None
    assert "2 .py files" in choice.problem and "`a.py`, `b.py`" in choice.problem and "quiz4.py" in choice.problem


def test_a_link_or_a_fifo_is_never_read_as_the_submission(tmp_path):
    (tmp_path / "quiz4.py").symlink_to(REPO / "solutions" / "quiz4.py")
    choice = choose_file(tmp_path, "quiz4.py")
    assert choice.path is None and "symbolic link" in choice.problem
    (tmp_path / "quiz4.py").unlink()
    os.mkfifo(tmp_path / "quiz4.py")
    assert "not a regular file" in choose_file(tmp_path, "quiz4.py").problem


# --- submission metadata ----------------------------------------------------------------------


def test_metadata_gives_the_names_and_emails_of_every_group_member(tmp_path):
    path = tmp_path / "submission_metadata.json"
    users = [{"name": "Ada", "email": "ada@example.edu", "id": 1}, {"name": "Bob", "email": "bob@example.edu"}]
    path.write_text(json.dumps({"id": 123456, "created_at": "2024-07-01T14:22:32-07:00", "users": users}))
    metadata, note = read_metadata(path)
    assert note is None
    assert metadata == {
        "name": "Ada, Bob",
        "email": "ada@example.edu, bob@example.edu",
        "submission_id": "123456",
        "submitted_at": "2024-07-01T14:22:32-07:00",
    }


@pytest.mark.parametrize(
    "text", ["{not json", "[]", '{"users": "Ada"}', "\udcff"], ids=["json", "list", "users", "bytes"]
)
def test_malformed_metadata_is_a_note_not_an_error(tmp_path, text):
    path = tmp_path / "submission_metadata.json"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    metadata, note = read_metadata(path)
    assert metadata == {} and "graded without it" in note


def test_missing_metadata_is_silent(tmp_path):
    assert read_metadata(tmp_path / "submission_metadata.json") == ({}, None)


# --- the runner in-process ----------------------------------------------------------------------


def test_a_grader_failure_writes_the_fallback_atomically(tmp_path, capsys):
    paths = autograder_paths(tmp_path)
    paths.submission.mkdir()
    (paths.submission / "quiz4.py").write_text("x = 1\n")
    document = run_autograder(paths, tmp_path / "no-such-rubric.yaml")
    written = json.loads(paths.results_file.read_text())
    assert written == document
    validate_results(written)
    assert written["output"] == STAFF_MESSAGE and "no-such-rubric.yaml" in written["tests"][0]["output"]
    assert "no-such-rubric.yaml" in capsys.readouterr().out, "the error is in stdout, which only instructors see"
    assert sorted(p.name for p in paths.results.iterdir()) == ["results.json"]


def test_the_root_comes_from_the_option_then_the_environment_then_gradescopes_default(monkeypatch, tmp_path):
    monkeypatch.delenv("GRADER_AUTOGRADER_ROOT", raising=False)
    assert autograder_paths().results_file.as_posix() == "/autograder/results/results.json"
    monkeypatch.setenv("GRADER_AUTOGRADER_ROOT", str(tmp_path))
    assert autograder_paths().submission == tmp_path / "submission"
    assert autograder_paths("/elsewhere").source.as_posix() == "/elsewhere/source"


# --- the zip ---------------------------------------------------------------------------------------


def test_the_zip_has_setup_and_run_autograder_at_its_root_and_carries_grader_rubric_and_reference(tmp_path):
    path = build_autograder(QUIZ4_RUBRIC, tmp_path / "autograder.zip")
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        manifest = json.loads(archive.read("autograder.json"))
        assert archive.read("assignment/rubrics/quiz4.yaml") == QUIZ4_RUBRIC.read_bytes()
        assert archive.read("assignment/solutions/quiz4.py") == (REPO / "solutions" / "quiz4.py").read_bytes()
        requirements = archive.read("requirements.txt").decode().split()
    for script in ("setup.sh", "run_autograder"):
        assert stat.S_IMODE(infos[script].external_attr >> 16) == 0o755 and stat.S_ISREG(
            infos[script].external_attr >> 16
        )
    assert not [name for name in infos if name.endswith("/")], "files only, no folder entries"
    assert {
        "grader/__main__.py",
        "grader/frontends/gradescope/runner.py",
        "grader/untrusted/child.py",
        "grader/schemas/report.schema.json",
    } <= set(infos)
    assert {"assignment/student_template/quiz4.py", "assignment/solutions/quiz4_mistakes.py"} <= set(infos)
    assert not [name for name in infos if "__pycache__" in name or name.endswith(".pyc")]
    assert manifest["rubric"] == "assignment/rubrics/quiz4.yaml"
    assert manifest["rubric_sha256"] == load_rubric(QUIZ4_RUBRIC).sha256
    assert all("==" in line for line in requirements) and {"numpy", "PyYAML", "jsonschema"} <= {
        line.split("==")[0] for line in requirements
    }


def test_the_same_rubric_builds_the_same_zip_bytes(tmp_path):
    first = build_autograder(QUIZ4_RUBRIC, tmp_path / "a.zip").read_bytes()
    assert build_autograder(QUIZ4_RUBRIC, tmp_path / "b.zip").read_bytes() == first


def test_a_rubric_naming_its_modules_by_absolute_paths_still_loads_from_the_zip(tmp_path):
    document = yaml.safe_load(QUIZ4_RUBRIC.read_text())
    for key in ("reference", "template", "mistakes"):
        document[key] = str((QUIZ4_RUBRIC.parent / document[key]).resolve())
    (tmp_path / "mine").mkdir()
    rubric = tmp_path / "mine" / "quiz4.yaml"
    rubric.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    with zipfile.ZipFile(build_autograder(rubric, tmp_path / "autograder.zip")) as archive:
        archive.extractall(tmp_path / "source")
        manifest = json.loads(archive.read("autograder.json"))
    unpacked = load_rubric(tmp_path / "source" / manifest["rubric"])
    assert unpacked.reference.is_relative_to(tmp_path / "source")
    assert unpacked.mistakes_module.is_relative_to(tmp_path / "source")


def test_the_command_builds_the_zip_and_reports_usage_errors(tmp_path, capsys):
    out = tmp_path / "autograder.zip"
    assert main(["gradescope", "build", "-o", str(out)]) == 0
    assert zipfile.is_zipfile(out) and "upload it" in capsys.readouterr().out
    assert main(["gradescope"]) == 2
    assert main(["gradescope", "deploy"]) == 2
    assert "error: grade gradescope" in capsys.readouterr().err


# --- hostile uploads and metadata (issue 16) ------------------------------------------------------


def make_deep(base: Path, depth: int) -> Path:
    """``base/d/d/.../d``, ``depth`` folders, made one by one (os.makedirs would recurse as deep)."""
    path = base
    for _ in range(depth):
        path = path / "d"
        path.mkdir()
    return path


def remove_deep(base: Path, deepest: Path) -> None:
    """Remove what make_deep made, bottom up (shutil.rmtree recurses too)."""
    for entry in deepest.iterdir():
        entry.unlink()
    while deepest != base:
        deepest.rmdir()
        deepest = deepest.parent


@pytest.mark.slow
def test_an_upload_1100_folders_deep_is_searched_to_a_bounded_depth_and_graded(tmp_path, host):
    paths = autograder_paths(tmp_path)
    paths.submission.mkdir()
    (paths.submission / "quiz4.py").write_text(EXAMPLE.read_text())
    deepest = make_deep(paths.submission, 1100)
    (deepest / "quiz4.py").write_text("x = 1\n")
    try:
        document = run_autograder(paths, QUIZ4_RUBRIC, host)
        alone = choose_file(paths.submission / "d", "quiz4.py")
    finally:
        remove_deep(paths.submission, deepest)
    validate_results(document)
    assert document["output"] != STAFF_MESSAGE and "autograder_error" not in json.dumps(document["tests"])
    assert "Graded `quiz4.py`" in document["output"] and 0 < document["score"] < 11
    assert alone.path is None and "No Python file" in alone.problem


def test_every_metadata_field_is_capped_however_large_the_group_or_its_names(tmp_path):
    path = tmp_path / "submission_metadata.json"
    users = [{"name": "N" * 5000, "email": f"{i}@example.edu" * 300} for i in range(500)]
    path.write_text(json.dumps({"id": "9" * 1_000_000, "created_at": "x" * 10_000, "users": users}))
    metadata, note = read_metadata(path)
    assert note is None and set(metadata) == {"name", "email", "submission_id", "submitted_at"}
    assert max(len(value) for value in metadata.values()) <= 1000
    assert metadata["name"].startswith("N" * 100) and metadata["submission_id"].startswith("999")


def test_metadata_nested_thousands_deep_is_a_note_not_a_crash(tmp_path):
    path = tmp_path / "submission_metadata.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    metadata, note = read_metadata(path)
    assert metadata == {} and "graded without it" in note


def test_a_relative_root_is_taken_from_the_working_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GRADER_AUTOGRADER_ROOT", "ag")
    assert autograder_paths().submission == tmp_path / "ag" / "submission"
    assert autograder_paths("elsewhere").root == tmp_path / "elsewhere"


def test_the_fallback_is_the_shipped_static_document_with_the_error_filled_in():
    shipped = json.loads(FALLBACK_FILE.read_text())
    validate_results(shipped)
    document = fallback_results("Traceback ...\nRuntimeError: boom", 3.0)
    assert document["tests"][0].pop("output") != shipped["tests"][0].pop("output")
    assert document.pop("extra_data") != shipped.pop("extra_data")
    assert document.pop("execution_time") == 3 and shipped.pop("execution_time") == 0
    assert document == shipped and shipped["output"] == STAFF_MESSAGE


def disagreeing_rubric(tmp_path: Path) -> Path:
    """A copy of quiz4 whose reference doubles grad_X, so it disagrees with finite differences."""
    bad = tmp_path / "bad_reference.py"
    bad.write_text((REPO / "solutions" / "quiz4.py").read_text().replace("return dY @ W.T", "return 2 * dY @ W.T"))
    rubric = write_rubric_copy(tmp_path)
    rubric.write_text(rubric.read_text().replace(str(REPO / "solutions" / "quiz4.py"), str(bad)))
    return rubric


def test_a_reference_that_disagrees_with_finite_differences_is_refused_with_the_reason(tmp_path, capsys):
    rubric, out = disagreeing_rubric(tmp_path), tmp_path / "autograder.zip"
    assert main(["gradescope", "build", "--rubric", str(rubric), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    [line] = captured.err.splitlines()
    assert line.startswith("error: not building the autograder: ") and "eq1" in line
    assert "disagrees with finite differences" in line and "Wrote" not in captured.out
    assert not out.exists()
    with pytest.raises(UnsoundRubricError):
        build_autograder(rubric, out)
