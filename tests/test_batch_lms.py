"""``grade batch export``: Canvas and Moodle gradebook imports from one graded class.

The rosters in tests/fixtures/gradebooks are written after the published formats: a
Canvas gradebook export (Student, ID, SIS User ID, SIS Login ID, Section, assignment
columns titled ``Name (id)``, the ``Points Possible`` row, read-only score columns), the
same saved by a spreadsheet with semicolons and a byte-order mark, and a Moodle grade
export saved tab-separated. Names have commas, quotes, accents, and two students share
one. The class is a Gradescope export whose submitters match them by email or SID; one
submission belongs to nobody on the roster and one student never submitted.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from pathlib import Path

import pytest

from conftest import FIXTURES, write_rubric_copy
from grader.frontends.batch.lms import CANVAS_COLUMNS, CANVAS_POINTS_ROW
from grader.frontends.cli import main

ROSTERS = FIXTURES / "gradebooks"
QUIZ4 = FIXTURES / "quiz4"
NUMBER = re.compile(r"^\d+(\.\d+)?$")
METADATA = """\
submission_1:
  :submitters:
  - :name: Siobhán O'Brien
    :sid: '1001'
    :email: siobhan@uni.edu
submission_2:
  :submitters:
  - :name: Nguyễn Văn An
    :sid: '1002'
    :email: van.an@uni.edu
submission_3:
  :submitters:
  - :name: John Smith
    :sid: '1003'
    :email: jsmith@uni.edu
  - :name: John Smith
    :sid: '1004'
    :email: jsmith2@uni.edu
submission_4:
  :submitters:
  - :name: Zoë "Zed" Quinn
    :sid: '1005'
    :email: zq@uni.edu
submission_5:
  :submitters:
  - :name: Mallory Stranger
    :sid: '9999'
    :email: mallory@elsewhere.edu
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("export")
    export = base / "assignment_9_export"
    export.mkdir()
    (export / "submission_metadata.yml").write_text(METADATA, encoding="utf-8")
    files = {
        "submission_1": QUIZ4 / "correct" / "dot.py",
        "submission_2": QUIZ4 / "buggy" / "eq1_sign.py",
        "submission_3": QUIZ4 / "buggy" / "eq9_mean.py",
        "submission_5": QUIZ4 / "correct" / "matmul.py",
    }
    for folder in ("submission_1", "submission_2", "submission_3", "submission_4", "submission_5"):
        (export / folder).mkdir()
    for folder, source in files.items():
        shutil.copy(source, export / folder / "quiz4.py")
    (export / "submission_4" / "answers.pdf").write_bytes(b"%PDF-1.4")
    rubric = write_rubric_copy(base, time_limit=1.0)
    outdir = base / "out"
    assert main(["batch", str(export), "-o", str(outdir), "--rubric", str(rubric), "-j", "2"]) == 0
    return outdir


def export(graded: Path, tmp_path: Path, *words: str) -> tuple[list[list[str]], str, str]:
    """Run the export; the file's records as Python's csv reader reads them back, its text, and stdout."""
    output = tmp_path / "grades.csv"
    assert main(["batch", "export", str(graded), *words, "-o", str(output)]) == 0
    raw = output.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no byte-order mark: both importers read plain UTF-8"
    text = raw.decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline=""))), text, ""


def roster_records(name: str, delimiter: str = ",") -> list[list[str]]:
    text = (ROSTERS / name).read_text(encoding="utf-8-sig")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))


def check_canvas_format(records: list[list[str]], roster: list[list[str]]) -> None:
    """What Canvas's gradebook import expects: its student columns, Points Possible, numbers or blank."""
    header = roster[0]
    assert records[0][:5] == list(CANVAS_COLUMNS) and len(records[0]) == 6
    assert records[1] == [CANVAS_POINTS_ROW, "", "", "", "", "11"]
    students = [r for r in roster[1:] if r[0].strip() != "Points Possible"]
    assert [r[:5] for r in records[2:]] == [[r[header.index(c)] for c in CANVAS_COLUMNS] for r in students]
    assert all(r[5] == "" or NUMBER.match(r[5]) for r in records[2:])
    assert all(len(r) == 6 for r in records)


def grades_by_login(records: list[list[str]]) -> dict[str, str]:
    return {r[3] or r[0]: r[5] for r in records[2:]}


def test_canvas_updates_the_rosters_own_quiz_4_column_and_keeps_every_student(graded, tmp_path, capsys):
    records, text, _ = export(graded, tmp_path, "--to", "canvas", "--roster", str(ROSTERS / "canvas_roster.csv"))
    out = capsys.readouterr().out
    check_canvas_format(records, roster_records("canvas_roster.csv"))
    assert records[0][5] == "Quiz 4 (4102)"
    assert grades_by_login(records) == {
        "siobhan@uni.edu": "11",
        "nvan": "9",  # matched by SID: the SIS Login ID is not the email
        "jsmith@uni.edu": "9.2857",  # a group of two students who share a name: each gets the grade
        "jsmith2@uni.edu": "9.2857",
        "zq@uni.edu": "",  # submitted only a PDF: not graded, blank
        "absent@uni.edu": "",
        "Student, Test": "",
    }
    assert text.encode() == (ROSTERS / "canvas_expected.csv").read_bytes()
    assert "in the existing column 'Quiz 4 (4102)'" in out
    assert "submission_5 (name Mallory Stranger, email mallory@elsewhere.edu, sid 9999)" in out
    assert "Absent, Person [1006, absent@uni.edu]" in out and "Student, Test [no identifier]" in out
    assert "submission_4" in out and "ungradable" in out


def test_a_semicolon_roster_without_the_assignment_gets_a_new_column_and_the_same_grades(graded, tmp_path, capsys):
    roster = ROSTERS / "canvas_roster_semicolon.csv"
    records, _, _ = export(graded, tmp_path, "--to", "canvas", "--roster", str(roster))
    check_canvas_format(records, roster_records("canvas_roster_semicolon.csv", delimiter=";"))
    assert records[0][5] == "Quiz 4", "a new title: Canvas creates the assignment on import"
    comma, _, _ = export(graded, tmp_path, "--to", "canvas", "--roster", str(ROSTERS / "canvas_roster.csv"))
    assert grades_by_login(records) == grades_by_login(comma)
    assert "in the new column 'Quiz 4'" in capsys.readouterr().out


def test_a_named_assignment_is_found_or_created_by_that_name(graded, tmp_path):
    roster = str(ROSTERS / "canvas_roster.csv")
    records, _, _ = export(graded, tmp_path, "--to", "canvas", "--roster", roster, "--assignment", "quiz 3")
    assert records[0][5] == "Quiz 3 (4101)"
    records, _, _ = export(graded, tmp_path, "--to", "canvas", "--roster", roster, "--assignment", "Gradients, 4")
    assert records[0][5] == "Gradients, 4"


def test_a_points_mismatch_with_canvas_is_pointed_out(graded, tmp_path, capsys):
    roster = tmp_path / "roster.csv"
    roster.write_text((ROSTERS / "canvas_roster.csv").read_text(encoding="utf-8").replace(",11.00,", ",100.00,"))
    export(graded, tmp_path, "--to", "canvas", "--roster", str(roster))
    assert "out of 100.00 points; these grades are out of 11" in capsys.readouterr().out


def test_canvas_needs_its_roster_and_says_what_a_roster_lacks(graded, tmp_path, capsys):
    assert main(["batch", "export", str(graded), "--to", "canvas", "-o", str(tmp_path / "x.csv")]) == 2
    assert "needs --roster" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("Name,Email\nAda,ada@uni.edu\n")
    assert (
        main(["batch", "export", str(graded), "--to", "canvas", "--roster", str(bad), "-o", str(tmp_path / "x")]) == 2
    )
    assert "no Student, ID column" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "x").exists()


def test_moodle_reuses_the_grade_item_of_its_export_with_feedback(graded, tmp_path, capsys):
    roster = ROSTERS / "moodle_export.txt"
    records, _, _ = export(graded, tmp_path, "--to", "moodle", "--roster", str(roster), "--feedback")
    out = capsys.readouterr().out
    assert records[0] == ["Email address", "Assignment: Quiz 4 (Real)", "Assignment: Quiz 4 (Feedback)"]
    grades = {r[0]: r[1] for r in records[1:]}
    assert grades == {
        "siobhan@uni.edu": "11",
        "van.an@uni.edu": "9",
        "jsmith@uni.edu": "9.2857",
        "jsmith2@uni.edu": "9.2857",
        "zq@uni.edu": "",
        "absent@uni.edu": "",
    }
    feedback = {r[0]: r[2] for r in records[1:]}
    assert feedback["siobhan@uni.edu"] == "11/11: full marks"
    assert (
        feedback["van.an@uni.edu"].startswith("9/11: Problem 1, eqs. (1)-(2)") and "0/2" in feedback["van.an@uni.edu"]
    )
    assert all(len(r) == 3 and (r[1] == "" or NUMBER.match(r[1])) for r in records[1:])
    assert "mallory@elsewhere.edu" in out and "Person Absent" in out


def test_moodle_by_id_number_and_without_a_roster(graded, tmp_path, capsys):
    roster = str(ROSTERS / "moodle_export.txt")
    records, _, _ = export(graded, tmp_path, "--to", "moodle", "--roster", roster, "--moodle-id", "idnumber")
    assert records[0] == ["ID number", "Assignment: Quiz 4 (Real)"]
    assert {r[0]: r[1] for r in records[1:]}["1002"] == "9"
    capsys.readouterr()
    records, _, _ = export(graded, tmp_path, "--to", "moodle")
    assert records[0] == ["Email address", "Quiz 4"]
    assert {r[0]: r[1] for r in records[1:]} == {
        "siobhan@uni.edu": "11",
        "van.an@uni.edu": "9",
        "jsmith@uni.edu": "9.2857",
        "jsmith2@uni.edu": "9.2857",
        "zq@uni.edu": "",
        "mallory@elsewhere.edu": "11",
    }
    assert "submission_4" in capsys.readouterr().out


def test_ambiguous_matches_are_left_blank_and_listed_never_guessed(graded, tmp_path, capsys):
    text = (ROSTERS / "canvas_roster.csv").read_text(encoding="utf-8")
    twice = tmp_path / "twice.csv"  # Siobhán's login on a second line: her submission names two students
    twice.write_text(text.replace(",1006,absent@uni.edu,", ",1006,siobhan@uni.edu,"))
    records, _, _ = export(graded, tmp_path, "--to", "canvas", "--roster", str(twice))
    assert "submission submission_1 (name Siobhán O'Brien" in capsys.readouterr().out
    assert records[2][5] == "" and records[7][5] == ""
    claimed = tmp_path / "claimed.csv"  # Siobhán's line also has Mallory's SID: two submissions name her
    claimed.write_text(text.replace(",1001,siobhan@uni.edu,", ",9999,siobhan@uni.edu,"))
    records, _, _ = export(graded, tmp_path, "--to", "canvas", "--roster", str(claimed))
    out = capsys.readouterr().out
    assert "O'Brien, Siobhán: claimed by several submissions, left blank" in out
    assert "submission_1 (" in out and "submission_5 (" in out and records[2][5] == ""


def test_an_unfinished_or_foreign_folder_is_refused_before_anything_is_written(graded, tmp_path, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(graded, partial)
    (partial / "reports" / "submission_2.json").unlink()
    out = tmp_path / "grades.csv"
    assert main(["batch", "export", str(partial), "--to", "moodle", "-o", str(out)]) == 2
    assert "submission_2.json: missing or unreadable" in capsys.readouterr().err
    assert main(["batch", "export", str(tmp_path), "--to", "moodle", "-o", str(out)]) == 2
    assert "no batch.json here" in capsys.readouterr().err
    assert not out.exists()
