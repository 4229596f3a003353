"""Batch grading's parts that need no sandbox: the roster, shards, gradebook, summary, progress, CLI words."""

from __future__ import annotations

import csv
import io
import os
import zipfile
from pathlib import Path

import jsonschema
import pytest

from grader.assignment.rubric import load_rubric, resolve_rubric_path
from grader.errors import GraderError
from grader.frontends.batch.export import read_gradescope_metadata, unpack_export
from grader.frontends.batch.gradebook import (
    GRADER_ERROR_FLAG,
    UNGRADABLE_FLAG,
    SubmissionStatus,
    render_gradebook,
    row_from_report,
    spreadsheet_text,
)
from grader.frontends.batch.outdir import sweep_temporaries
from grader.frontends.batch.progress import Progress
from grader.frontends.batch.roster import RosterError, Submission, find_submissions, unique_ids
from grader.frontends.batch.summary import histogram, summarize_class
from grader.frontends.batch.summary_page import render_html
from grader.frontends.batch.tasks import Shard, Task, failure_report, parse_shard
from grader.frontends.cli import main
from grader.grading.report import EMPTY_SHA256
from grader.schemas import load_schema

FIXTURES = Path(__file__).parent / "fixtures" / "quiz4"
CORRECT = (FIXTURES / "correct" / "dot.py").read_text()

METADATA = """\
submission_1001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '1001'
    :email: ada@example.edu
  :created_at: 2024-03-01 10:00:00.000000000 -08:00
  :score: !ruby/object:BigDecimal 18:0.0
submission_1002:
  :submitters:
  - :name: Alan Turing
    :sid: '1002'
    :email: alan@example.edu
  - :name: Grace Hopper
    :sid: '1003'
    :email: grace@example.edu
"""


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(resolve_rubric_path(None))


def write(path: Path, text: str = CORRECT) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def graded_document(eq_scores: dict[str, tuple[float, str, str | None]], name: str = "Ada", flags=()) -> dict:
    """A report-shaped document with just what the gradebook and summary read."""
    return {
        "submission": {"path": "x.py", "sha256": EMPTY_SHA256, "metadata": {"id": name.lower(), "name": name}},
        "score": sum(score for score, _, _ in eq_scores.values()),
        "max_score": 4.0,
        "flags": list(flags),
        "equations": [
            {
                "id": eq,
                "label": f"Equation {eq}",
                "max_score": 2.0,
                "score": score,
                "status": status,
                "flags": [],
                "cases": [{"status": "timeout"}] if status == "timeout" else [],
                "diagnosis": {"kind": "mistake", "text": "Likely mistake: Flip the sign.", "mistake_id": mistake}
                if mistake
                else None,
            }
            for eq, (score, status, mistake) in eq_scores.items()
        ],
        "sandbox": {"privilege_drop": True, "network_cut": True, "reference_hidden": True},
    }


# -- the roster -----------------------------------------------------------------------


def test_a_folder_of_files_gives_one_submission_per_file_named_by_its_stem(tmp_path):
    write(tmp_path / "class" / "s10.py")
    write(tmp_path / "class" / "s2.py")
    (tmp_path / "class" / "notes.txt").write_text("not a submission")
    found, _ = find_submissions(tmp_path / "class", "quiz4.py", tmp_path / "unpacked")
    assert [(s.id, s.source) for s in found] == [("s2", "s2.py"), ("s10", "s10.py")]
    assert all(s.path is not None and not s.problem for s in found)


def test_a_student_folder_is_graded_by_the_file_named_like_the_rubric_asks(tmp_path):
    write(tmp_path / "class" / "ada" / "helpers.py", "x = 1\n")
    write(tmp_path / "class" / "ada" / "hw" / "quiz4.py")
    write(tmp_path / "class" / "bob" / "my_answer.py")
    write(tmp_path / "class" / "cy" / "a.py")
    write(tmp_path / "class" / "cy" / "b.py")
    (tmp_path / "class" / "dee").mkdir()
    found, _ = find_submissions(tmp_path / "class", "quiz4.py", tmp_path / "unpacked")
    by_id = {s.id: s for s in found}
    assert by_id["ada"].path.name == "quiz4.py"
    assert by_id["bob"].path.name == "my_answer.py"
    assert by_id["cy"].path is None and "2 .py files or notebooks in cy/" in by_id["cy"].problem
    assert by_id["dee"].path is None and by_id["dee"].problem == "no .py file or notebook in dee/"


def test_the_output_folder_inside_a_class_folder_is_not_taken_for_a_student(tmp_path):
    write(tmp_path / "ada.py")
    write(tmp_path / "out" / "submissions" / "x.py")
    found, _ = find_submissions(tmp_path, "quiz4.py", tmp_path / "out" / "submissions", tmp_path / "out")
    assert [s.id for s in found] == ["ada"]


def test_files_that_cannot_be_read_safely_are_kept_with_the_reason(tmp_path):
    root = tmp_path / "class"
    write(root / "ok.py")
    os.mkfifo(root / "pipe.py")
    (root / "ghost.py").symlink_to(root / "nowhere.py")
    write(tmp_path / "secret.txt", "root:x:0:0")
    (root / "eve").mkdir()
    (root / "eve" / "quiz4.py").symlink_to(tmp_path / "secret.txt")
    found, _ = find_submissions(root, "quiz4.py", tmp_path / "unpacked")
    problems = {s.id: s.problem for s in found}
    assert problems["ok"] == ""
    assert problems["pipe"] == "pipe.py is not a regular file (a pipe, socket or device)"
    assert problems["ghost"] == "ghost.py is a broken symbolic link"
    assert "outside the student's folder" in problems["eve"]


def test_names_that_clean_to_the_same_id_get_distinct_ids():
    assert unique_ids(["a b", "a_b", "A_B", ".hidden", "ü"]) == ["a_b", "a_b-2", "A_B-3", "hidden", "_"]


def test_gradescope_metadata_maps_folders_to_submitters_and_joins_groups(tmp_path):
    path = write(tmp_path / "submission_metadata.yml", METADATA)
    people = read_gradescope_metadata(path)
    assert people["submission_1001"] == {"name": "Ada Lovelace", "email": "ada@example.edu", "sid": "1001"}
    assert people["submission_1002"]["name"] == "Alan Turing; Grace Hopper"
    assert people["submission_1002"]["sid"] == "1002; 1003"


def test_a_gradescope_zip_is_unpacked_safely_and_only_once(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("assignment_9_export/submission_metadata.yml", METADATA)
        zipped.writestr("assignment_9_export/submission_1001/quiz4.py", CORRECT)
        zipped.writestr("assignment_9_export/submission_1002/report.pdf", b"%PDF")
        zipped.writestr("../escape.py", "print('outside')")
        zipped.writestr("/absolute.py", "print('outside')")
    dest = tmp_path / "out" / "submissions"
    found, _ = find_submissions(archive, "quiz4.py", dest)
    assert [(s.id, s.name, s.problem) for s in found] == [
        ("submission_1001", "Ada Lovelace", ""),
        (
            "submission_1002",
            "Alan Turing; Grace Hopper",
            "no .py file or notebook in assignment_9_export/submission_1002/",
        ),
    ]
    assert not (tmp_path / "out" / "escape.py").exists() and not (dest / "submission_1002" / "report.pdf").exists()
    marker_time = (dest / ".unpacked-from").stat().st_mtime_ns
    unpack_export(archive, dest)
    assert (dest / ".unpacked-from").stat().st_mtime_ns == marker_time


def test_an_input_that_is_not_a_class_says_what_was_expected(tmp_path):
    single = write(tmp_path / "one.py")
    with pytest.raises(RosterError, match="grade it with `grade"):
        find_submissions(single, "quiz4.py", tmp_path / "u")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RosterError, match="no submissions found"):
        find_submissions(tmp_path / "empty", "quiz4.py", tmp_path / "u")


@pytest.mark.parametrize(
    ("name", "content"),
    [("fake.zip", b"this was never a zip"), ("export.zip", b"PK\x03\x04truncated"), ("export.bin", b"PK\x03\x04")],
)
def test_a_damaged_zip_is_called_unreadable_not_a_single_file(tmp_path, name, content):
    archive = tmp_path / name
    archive.write_bytes(content)
    with pytest.raises(RosterError, match="is not a readable zip file") as caught:
        find_submissions(archive, "quiz4.py", tmp_path / "u")
    assert "grade it with" not in str(caught.value)


def test_a_bad_metadata_file_is_one_line_saying_where(tmp_path, monkeypatch, capsys):
    write(tmp_path / "class" / "submission_metadata.yml", "submission_1:\n  :submitters: [a, b\n  - c: {\n")
    write(tmp_path / "class" / "submission_1" / "quiz4.py")
    monkeypatch.chdir(tmp_path)
    assert main(["batch", "class", "-o", "out"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "submission_metadata.yml: not valid Gradescope metadata (" in err
    assert " at line 3, column " in err


def test_only_names_a_submission_of_the_class_or_suggests_one(tmp_path, monkeypatch, capsys):
    write(tmp_path / "class" / "ada.py")
    write(tmp_path / "class" / "bob.py")
    monkeypatch.chdir(tmp_path)
    assert main(["batch", "class", "-o", "out", "--only", "adda"]) == 2
    assert "--only adda: no submission has that id; did you mean ada?" in capsys.readouterr().err
    shard = "1/2" if Shard(2, 2).contains("ada") else "2/2"
    assert main(["batch", "class", "-o", "out", "--only", "ada", "--shard", shard]) == 2
    assert f"--only ada: that submission is not in shard {shard}" in capsys.readouterr().err
    assert not (tmp_path / "out" / "reports").exists()


# -- shards -----------------------------------------------------------------------------


def test_shards_split_a_class_into_disjoint_slices_that_cover_it():
    ids = [f"student{i}" for i in range(300)]
    slices = [[i for i in ids if Shard(k, 4).contains(i)] for k in range(1, 5)]
    assert sorted(sum(slices, [])) == sorted(ids)
    assert all(40 < len(s) < 110 for s in slices)


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0"])
def test_a_shard_outside_1_to_n_is_refused(text):
    with pytest.raises(GraderError, match="expected K/N"):
        parse_shard(text)


# -- reports the batch writes itself --------------------------------------------------


@pytest.mark.parametrize("flag", [UNGRADABLE_FLAG, GRADER_ERROR_FLAG])
def test_a_report_for_a_submission_that_was_not_graded_is_schema_valid_and_says_why(rubric, flag):
    task = Task(Submission("eve", "eve.py", None, name="Eve", problem="eve.py is a broken symbolic link"), None, Path())
    document = failure_report(task, rubric, flag, "eve.py is a broken symbolic link")
    jsonschema.validate(document, load_schema("report.schema.json"), cls=jsonschema.Draft202012Validator)
    row = row_from_report(document, "reports/eve.json")
    assert row.status.value == flag and row.total is None and row.note == "eve.py is a broken symbolic link"


def test_leftover_temporary_files_are_swept_but_finished_files_are_kept(tmp_path):
    (tmp_path / "reports").mkdir()
    keep = [tmp_path / "gradebook.csv", tmp_path / "reports" / "a.json", tmp_path / ".batch.lock"]
    sweep = [tmp_path / ".gradebook.csv.k2j4_x9a", tmp_path / "reports" / ".a.json.abcd1234"]
    for path in keep + sweep:
        path.write_text("x")
    sweep_temporaries(tmp_path)
    assert all(p.exists() for p in keep) and not any(p.exists() for p in sweep)


# -- gradebook ----------------------------------------------------------------------------


def test_a_timeout_puts_a_graded_submission_up_for_review():
    row = row_from_report(graded_document({"eq1": (2, "passed", None), "eq2": (0, "timeout", None)}), "r.json")
    assert row.status == SubmissionStatus.REVIEW and row.flags == ("eq2:timeout",) and row.total == 2


def test_spreadsheet_cells_never_start_a_formula_or_a_new_line():
    assert spreadsheet_text('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert spreadsheet_text("-1+2") == "'-1+2"
    assert spreadsheet_text("Ada\nLovelace\x07") == "Ada Lovelace"


def test_the_gradebook_csv_has_a_bom_and_one_column_per_equation():
    rows = [
        row_from_report(graded_document({"eq1": (2, "passed", None), "eq2": (1, "partial", "sign")}), "reports/a.json")
    ]
    text = render_gradebook(rows, ["eq1", "eq2"])
    assert text.startswith("\ufeff")
    table = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))
    assert table == [
        {
            "id": "ada",
            "name": "Ada",
            "email": "",
            "sid": "",
            "source": "x.py",
            "eq1": "2",
            "eq2": "1",
            "total": "3",
            "max_score": "4",
            "status": "graded",
            "flags": "",
            "note": "",
            "report": "reports/a.json",
        }
    ]


# -- summary -------------------------------------------------------------------------------


def test_the_histogram_has_one_point_bins_and_a_bin_of_its_own_for_full_marks():
    bins = histogram([0, 0.5, 3.9, 4, 10, 10.5, 11], 11)
    assert len(bins) == 12 and bins[0]["count"] == 2 and bins[3]["count"] == 1 and bins[4]["count"] == 1
    assert bins[-2] == {"low": 10.0, "high": 11.0, "count": 2}
    assert bins[-1] == {"low": 11.0, "high": 11.0, "count": 1, "full_marks": True}


def test_the_summary_counts_mistakes_and_lists_who_needs_a_look():
    rows = [
        row_from_report(graded_document({"eq1": (0, "failed", "sign"), "eq2": (2, "passed", None)}, "Ada"), "a"),
        row_from_report(graded_document({"eq1": (0, "failed", "sign"), "eq2": (0, "timeout", None)}, "Bo"), "b"),
        row_from_report(graded_document({"eq1": (2, "passed", None), "eq2": (2, "passed", None)}, "Cy"), "c"),
    ]
    header = {"assignment": "a", "title": "T", "rubric_sha256": "0" * 64, "grader_version": "1", "max_score": 4}
    summary = summarize_class(rows, header)
    eq1 = summary["equations"][0]
    assert eq1["mistakes"] == [{"id": "sign", "count": 2, "share": 0.6667, "hint": "Flip the sign."}]
    assert eq1["full_marks"] == 0.3333 and eq1["mean_score"] == 0.6667
    assert [(r["id"], r["reasons"]) for r in summary["needs_review"]] == [
        ("bo", ["eq2: a call ran past the time limit"])
    ]


def test_the_summary_page_escapes_student_text_and_fetches_nothing():
    document = graded_document({"eq1": (0, "timeout", None)}, name="<script>alert(1)</script>")
    rows = [row_from_report(document, "reports/x.json")]
    header = {"assignment": "a", "title": "T & co", "rubric_sha256": "0" * 64, "grader_version": "1", "max_score": 4}
    page = render_html(summarize_class(rows, header))
    assert "<script>" not in page and "&lt;script&gt;" in page and "T &amp; co" in page
    assert "http" not in page.replace('http-equiv="Content-Security-Policy"', "")
    assert "default-src 'none'" in page


# -- progress --------------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_prints_plain_lines_when_not_on_a_terminal():
    stream = io.StringIO()
    progress = Progress(3, stream, done=1)
    progress.advance("ada: 11/11 graded")
    progress.close()
    assert stream.getvalue() == "[2/3] ada: 11/11 graded\n"


def test_progress_draws_a_bar_with_rate_and_eta_on_a_terminal():
    now = [0.0]
    stream = FakeTerminal()
    progress = Progress(10, stream, clock=lambda: now[0])
    for second in (0.5, 1.0, 1.5, 2.0):
        now[0] = second
        progress.advance("ignored")
    last = stream.getvalue().split("\r")[-1]
    assert last == " 4/10 [###########.................]  40%  2.0/s  ETA 0:03\x1b[K"


# -- the command line -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["batch", "class"], "the following arguments are required: -o/--output"),
        (["batch", "class", "-o", "out", "-j", "0"], "-j must be at least 1"),
        (["batch", "class", "-o", "out", "--shard", "5/4"], "expected K/N"),
        (["batch", "merge", "nowhere", "-o", "out"], "no batch.json here"),
    ],
)
def test_wrong_batch_words_exit_2_with_a_message(tmp_path, monkeypatch, capsys, words, message):
    monkeypatch.chdir(tmp_path)
    assert main(words) == 2
    assert message in capsys.readouterr().err
