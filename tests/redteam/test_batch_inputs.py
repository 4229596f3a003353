"""Hostile batch inputs: names that are not UTF-8, zips whose members clash or are corrupt, alias-bombed YAML.

Each costs at most the entry it is in: the roster still lists the class, the report of
an entry that cannot be graded is still written, and nothing read from the metadata
grows past its bound.
"""

from __future__ import annotations

import json
import os
import time
import zipfile
from pathlib import Path

import pytest

from grader.assignment.rubric import load_rubric, resolve_rubric_path
from grader.frontends.batch.export import MAX_FIELD_CHARS, MAX_FOLDER_CHARS, MAX_JOINED_CHARS, read_gradescope_metadata
from grader.frontends.batch.outdir import write_checked_report
from grader.frontends.batch.roster import RosterError, find_submissions
from grader.frontends.batch.tasks import Task, failure
from grader.grading.report import NotGraded, report_to_dict

pytestmark = pytest.mark.redteam

REPO = Path(__file__).resolve().parents[2]
CORRECT = (REPO / "tests" / "fixtures" / "quiz4" / "correct" / "dot.py").read_text()
CAFE = os.fsdecode(b"caf\xe9")  # a Latin-1 name on a UTF-8 system: undecodable bytes, kept as surrogates

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
submission_1:
  :submitters:
  - :name: *g
    :sid: *g
    :email: *g
"""


@pytest.fixture(scope="module")
def rubric():
    return load_rubric(resolve_rubric_path(None))


def test_a_file_with_a_non_utf8_name_is_listed_and_its_failure_report_can_be_written(tmp_path, rubric):
    root = tmp_path / "class"
    root.mkdir()
    (root / f"{CAFE}.py").write_text(CORRECT)
    os.mkfifo(root / f"{CAFE}-pipe.py")
    found, _ = find_submissions(root, "quiz4.py", tmp_path / "u")
    by_id = {s.id: s for s in found}
    assert set(by_id) == {"caf_", "caf_-pipe"} and by_id["caf_"].path is not None
    task = Task(by_id["caf_-pipe"], None, tmp_path / "out" / "reports" / "caf_-pipe.json")
    report = failure(task, rubric, NotGraded.UNGRADABLE.value, by_id["caf_-pipe"].problem)
    write_checked_report(report_to_dict(report), task.report, report)
    written = json.loads(task.report.read_text(encoding="utf-8"))
    page = (tmp_path / "out" / "pages" / "caf_-pipe.html").read_text(encoding="utf-8")
    assert "Not graded: caf\ufffd-pipe.py is not a regular file" in page
    assert written["submission"]["metadata"]["source"] == "caf\ufffd-pipe.py"
    assert written["submission"]["metadata"]["grading_error"].startswith("caf\ufffd-pipe.py is not a regular file")


def test_a_zip_member_that_clashes_with_a_folder_costs_only_that_member(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("export/submission_metadata.yml", "submission_1: {}\nsubmission_2: {}\n")
        zipped.writestr("export/submission_1/quiz4.py", CORRECT)
        zipped.writestr("export/submission_1/quiz4.py/inner.py", CORRECT)  # a folder named like the file
        zipped.writestr("export/submission_2/quiz4.py", CORRECT)
        zipped.writestr("export/submission_2", "a file named like the folder")
    found, _ = find_submissions(archive, "quiz4.py", tmp_path / "out" / "submissions")
    by_id = {s.id: s for s in found}
    assert set(by_id) == {"submission_1", "submission_2"}
    assert by_id["submission_1"].path is not None and by_id["submission_1"].path.read_text() == CORRECT
    assert by_id["submission_2"].path is not None and by_id["submission_2"].path.read_text() == CORRECT


def test_a_corrupt_zip_member_costs_only_its_student(tmp_path):
    archive = tmp_path / "export.zip"
    broken = CORRECT + "# BROKEN-MEMBER-MARKER\n"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as zipped:
        zipped.writestr("export/submission_metadata.yml", "submission_1: {}\nsubmission_2: {}\n")
        zipped.writestr("export/submission_1/quiz4.py", broken)
        zipped.writestr("export/submission_2/quiz4.py", CORRECT)
    data = bytearray(archive.read_bytes())
    at = data.index(b"BROKEN-MEMBER-MARKER")
    data[at] ^= 0xFF  # the stored bytes no longer match the member's CRC-32
    archive.write_bytes(bytes(data))
    found, _ = find_submissions(archive, "quiz4.py", tmp_path / "out" / "submissions")
    by_id = {s.id: s for s in found}
    assert by_id["submission_1"].path is None and "no .py file" in by_id["submission_1"].problem
    assert by_id["submission_2"].path is not None and by_id["submission_2"].path.read_text() == CORRECT


def test_yaml_aliases_that_expand_past_the_bound_are_refused_at_once(tmp_path):
    path = tmp_path / "submission_metadata.yml"
    path.write_text(BILLION_LAUGHS)
    started = time.monotonic()
    with pytest.raises(RosterError, match="aliases expand to over") as caught:
        read_gradescope_metadata(path)
    assert time.monotonic() - started < 2.0
    assert len(str(caught.value)) < 300 and "\n" not in str(caught.value)


def test_a_few_yaml_aliases_as_ruby_writes_them_still_read(tmp_path):
    path = tmp_path / "submission_metadata.yml"
    path.write_text(
        "submission_1:\n  :submitters:\n  - &1\n    :name: Ada Lovelace\n    :sid: '1001'\n"
        "submission_2:\n  :submitters:\n  - *1\n"
    )
    people = read_gradescope_metadata(path)
    assert people["submission_1"]["name"] == people["submission_2"]["name"] == "Ada Lovelace"


def test_every_metadata_field_is_capped_and_only_plain_values_are_kept(tmp_path):
    path = tmp_path / "submission_metadata.yml"
    long = "x" * 5_000
    members = "\n".join(f"  - :name: {long}\n    :sid: [{long}]\n    :email: {{a: {long}}}" for _ in range(8))
    path.write_text(f"? {long}\n:\n  :submitters:\n{members}\n")  # an explicit key: may be any length
    (folder, who), *_ = read_gradescope_metadata(path).items()
    assert len(folder) == MAX_FOLDER_CHARS and folder.endswith("\u2026")
    names = who["name"].split("; ")
    assert len(who["name"]) == MAX_JOINED_CHARS and all(len(name) <= MAX_FIELD_CHARS for name in names)
    assert who["sid"] == "" and who["email"] == ""


@pytest.mark.parametrize("text", ["[" * 50_000, "a:\n" + "".join(" " * i + "- \n" for i in range(1, 3000))])
def test_yaml_nested_past_any_reason_is_one_error_not_a_crash(tmp_path, text):
    path = tmp_path / "submission_metadata.yml"
    path.write_text(text)
    with pytest.raises(RosterError, match="not valid Gradescope metadata"):
        read_gradescope_metadata(path)
