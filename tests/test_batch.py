"""``grade batch`` end to end: a mixed class, a Gradescope export, kill and resume, shards, the summary page.

Submissions really run in the sandbox, under a copy of the quiz-4 rubric whose per-call
time limit is 0.5 s (so the hanging submission costs half a second, not two).
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import jsonschema
import pytest

from conftest import write_rubric_copy
from grader.frontends.cli import main
from grader.schemas import load_schema

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures" / "quiz4"
CORRECT = (FIXTURES / "correct" / "dot.py").read_text()

CRASHES_IN_GRAD_Z = (
    CORRECT + "\n\ndef grad_Z(dH, Z):\n    import os, signal\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
)
FORGES_PROTOCOL_FRAMES = """
import os
for fd in range(3, 16):  # write a forged frame header (4 GiB long) into whatever pipe is open
    try:
        os.write(fd, b"GRDR\\xff\\xff\\xff\\xff{")
    except OSError:
        pass
"""
IMPORTS_TORCH = "import torch\n" + CORRECT

# id -> (status, total, flags); None for a total checked separately.
EQUATIONS = ("eq1", "eq9", "eq10", "eq11", "eq12", "eq13", "eq14", "eq15")
ITEMS = (*EQUATIONS, "backprop")  # and the end-to-end check, 0 points, which fails with them
# id -> (status, total, flags); a total of None is checked separately.
EXPECTED = {
    "alice": ("graded", "11", ""),
    "bob": ("graded", "9", ""),
    "carol": ("review", "10", "eq12:timeout"),
    "dave": ("graded", None, ""),
    "erin": ("review", "9", "eq13:crashed backprop:crashed"),  # the end-to-end check runs grad_Z too
    "frank": ("review", "0", " ".join(f"{eq}:crashed" for eq in ITEMS)),
    "gina": ("review", "0", " ".join(f"{eq}:forbidden_import" for eq in ITEMS)),
    "henry": ("ungradable", "", "ungradable"),
    "ivan": ("ungradable", "", "ungradable"),
    "judy": ("ungradable", "", "ungradable"),
    "kim": ("ungradable", "", "ungradable"),
    "leo": ("graded", "0", ""),
}


def fast_rubric(folder: Path, reference: str | None = None) -> Path:
    """The quiz-4 rubric with absolute paths and a 0.5 s time limit (optionally another reference)."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (REPO / "rubrics" / "quiz4.yaml").read_text()
    text = text.replace("reference: ../solutions/quiz4.py", f"reference: {reference or REPO / 'solutions/quiz4.py'}")
    text = text.replace("template: ../student_template/quiz4.py", f"template: {REPO / 'student_template/quiz4.py'}")
    text = text.replace("mistakes: ../solutions/quiz4_mistakes.py", f"mistakes: {REPO / 'solutions/quiz4_mistakes.py'}")
    text = text.replace("time_limit: 2.0 ", "time_limit: 0.5 ")
    path = folder / "quiz4.yaml"
    path.write_text(text)
    return path


def make_mixed_class(root: Path, secret: Path) -> Path:
    """Correct, buggy, hanging, crashing, hostile and unreadable submissions, as files and folders."""
    root.mkdir(parents=True)
    (root / "alice.py").write_text(CORRECT)
    shutil.copy(FIXTURES / "buggy" / "eq1_sign.py", root / "bob.py")
    shutil.copy(FIXTURES / "buggy" / "eq12_timeout.py", root / "carol.py")
    (root / "dave" / "work").mkdir(parents=True)
    shutil.copy(FIXTURES / "buggy" / "eq9_mean.py", root / "dave" / "work" / "quiz4.py")
    (root / "erin.py").write_text(CRASHES_IN_GRAD_Z)
    (root / "frank.py").write_text(FORGES_PROTOCOL_FRAMES)
    (root / "gina.py").write_text(IMPORTS_TORCH)
    os.mkfifo(root / "henry.py")  # reading it would block forever
    (root / "ivan.py").write_text("#" * (2 * 1024 * 1024 + 1))
    (root / "judy").mkdir()
    (root / "judy" / "quiz4.py").symlink_to(secret)
    (root / "kim").mkdir()
    (root / "kim" / "quiz4.ipynb").write_text("{}")
    (root / "leo.py").write_bytes(b"\x00\xff\xfe\x89PNG garbage")
    return root


def ada_and_bob(course: Path) -> Path:
    """A class of two: ada's file is correct, bob's flips eq. (1)'s sign."""
    course.mkdir()
    (course / "ada.py").write_text(CORRECT)
    shutil.copy(FIXTURES / "buggy" / "eq1_sign.py", course / "bob.py")
    return course


def read_gradebook(outdir: Path) -> dict[str, dict[str, str]]:
    text = (outdir / "gradebook.csv").read_text(encoding="utf-8-sig")
    return {row["id"]: row for row in csv.DictReader(io.StringIO(text))}


def grade_batch(*words: str) -> int:
    return main(["batch", *map(str, words)])


@pytest.fixture(scope="module")
def rubric(tmp_path_factory) -> Path:
    return fast_rubric(tmp_path_factory.mktemp("rubric"))


@pytest.fixture(scope="module")
def mixed_class(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("mixed")
    secret = base / "secret.txt"
    secret.write_text("the answer key is on the instructor's disk\n")
    return make_mixed_class(base / "class", secret)


@pytest.fixture(scope="module")
def graded_class(mixed_class, rubric, tmp_path_factory) -> Path:
    """The mixed class graded once, uninterrupted, on two workers."""
    outdir = tmp_path_factory.mktemp("graded") / "out"
    assert grade_batch(mixed_class, "-o", outdir, "--rubric", rubric, "-j", 2) == 0
    return outdir


def test_a_mixed_class_gets_the_expected_gradebook_rows(graded_class):
    rows = read_gradebook(graded_class)
    assert sorted(rows) == sorted(EXPECTED)
    for sub_id, (status, total, flags) in EXPECTED.items():
        row = rows[sub_id]
        assert (row["status"], row["flags"]) == (status, flags), sub_id
        if total is not None:
            assert row["total"] == total, sub_id
    assert 0 < float(rows["dave"]["eq9"]) < 2 and float(rows["dave"]["total"]) == 9 + float(rows["dave"]["eq9"])
    assert rows["bob"]["eq1"] == "0" and rows["bob"]["eq9"] == "2"
    assert rows["dave"]["source"] == "dave"
    assert rows["henry"]["note"] == "henry.py is not a regular file (a pipe, socket or device)"
    assert rows["ivan"]["note"] == "ivan.py: the file is over 2 MiB"
    assert "outside the student's folder" in rows["judy"]["note"]
    assert rows["kim"]["note"] == "kim: not a notebook: the JSON has no cells"  # notebooks are read (issue 12)


def test_every_submission_of_the_mixed_class_has_a_schema_valid_report(graded_class):
    schema = load_schema("report.schema.json")
    reports = sorted(p.stem for p in (graded_class / "reports").iterdir())
    assert reports == sorted(EXPECTED)
    for sub_id in reports:
        document = json.loads((graded_class / "reports" / f"{sub_id}.json").read_text())
        jsonschema.validate(document, schema, cls=jsonschema.Draft202012Validator)
        assert document["submission"]["metadata"]["id"] == sub_id
    judy = (graded_class / "reports" / "judy.json").read_text()
    assert "answer key" not in judy  # the symlinked file was never read


def page_of(outdir: Path, sub_id: str) -> str:
    return (outdir / "pages" / f"{sub_id}.html").read_text(encoding="utf-8")


def test_every_submission_gets_its_own_page_linked_from_the_summary(graded_class):
    pages = sorted(p.stem for p in (graded_class / "pages").iterdir())
    assert pages == sorted(EXPECTED)
    summary = (graded_class / "summary.html").read_text(encoding="utf-8")
    for sub_id in EXPECTED:
        assert f'<a href="pages/{sub_id}.html">page</a> · <a href="reports/{sub_id}.json">JSON</a>' in summary
        page = page_of(graded_class, sub_id)
        assert page.startswith("<!DOCTYPE html>") and f"{sub_id}</p>" in page and "<script" not in page
    bob = page_of(graded_class, "bob")  # eq. (1)'s sign flipped: wrong on the visible case too
    assert bob.split('<section id="eq1">')[1].split("</section>")[0].count('class="heatmap"') == 1
    assert bob.count("<svg") == 1 and "<svg" not in page_of(graded_class, "alice")
    assert "Not graded: kim: not a notebook: the JSON has no cells" in page_of(graded_class, "kim")
    assert "Total: 0/11" in page_of(graded_class, "leo") and "<section" not in page_of(graded_class, "kim")
    dave = json.loads((graded_class / "reports" / "dave.json").read_text())  # eq. (9) averaged
    eq9 = next(eq for eq in dave["equations"] if eq["id"] == "eq9")
    assert sum(case["status"] == "wrong_values" for case in eq9["cases"]) > 1
    assert page_of(graded_class, "dave").count("<svg") == 1, "a picture for the visible case only, never a hidden one"


def test_a_missing_page_is_made_again_by_a_rerun_which_regrades_only_that_submission(rubric, tmp_path, capsys):
    source = ada_and_bob(tmp_path / "class")
    outdir = tmp_path / "out"
    assert grade_batch(source, "-o", outdir, "--rubric", rubric) == 0
    before = page_of(outdir, "bob")
    (outdir / "pages" / "bob.html").unlink()
    capsys.readouterr()
    assert grade_batch(source, "-o", outdir, "--rubric", rubric) == 0
    out = capsys.readouterr().out
    assert "1 this run" in out and "1 already up to date" in out
    assert page_of(outdir, "bob") == before


def test_the_class_summary_lists_the_submissions_that_need_a_human_look(graded_class):
    summary = json.loads((graded_class / "summary.json").read_text())
    assert summary["statuses"] == {"graded": 4, "review": 4, "ungradable": 4, "grader_error": 0}
    review = ["carol", "erin", "frank", "gina", "henry", "ivan", "judy", "kim", "leo"]  # leo: never imported
    assert [item["id"] for item in summary["needs_review"]] == review
    eq1 = summary["equations"][0]
    assert eq1["id"] == "eq1" and {"id": "sign", "count": 1}.items() <= eq1["mistakes"][0].items()
    assert sum(b["count"] for b in summary["histogram"]) == summary["scores"]["count"] == 8


def test_a_gradescope_export_maps_each_submission_to_its_student(rubric, tmp_path, capsys):
    archive = tmp_path / "export.zip"
    metadata = """\
submission_1:
  :submitters:
  - :name: Ada Lovelace
    :sid: '0001'
    :email: ada@example.edu
submission_2:
  :submitters:
  - :name: Alan Turing
    :sid: '0002'
    :email: alan@example.edu
submission_3:
  :submitters:
  - :name: '=HYPERLINK("http://evil.example","click")'
    :sid: '0003'
    :email: mallory@example.edu
  - :name: Grace Hopper
    :sid: '0004'
    :email: grace@example.edu
"""
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("assignment_77_export/submission_metadata.yml", metadata)
        zipped.writestr("assignment_77_export/submission_1/quiz4.py", CORRECT)
        zipped.writestr("assignment_77_export/submission_2/hw4/quiz4.py", (FIXTURES / "buggy/eq1_sign.py").read_text())
        zipped.writestr("assignment_77_export/submission_3/answers.pdf", b"%PDF-1.4")
    outdir = tmp_path / "out"
    assert grade_batch(archive, "-o", outdir, "--rubric", rubric, "-j", 2) == 0
    assert grade_batch(archive, "-o", outdir, "--rubric", rubric, "-j", 2, "--force") == 0
    assert "3 this run" in capsys.readouterr().out
    rows = read_gradebook(outdir)
    who = {k: (r["name"], r["email"], r["sid"], r["total"], r["status"]) for k, r in rows.items()}
    assert who == {
        "submission_1": ("Ada Lovelace", "ada@example.edu", "0001", "11", "graded"),
        "submission_2": ("Alan Turing", "alan@example.edu", "0002", "9", "graded"),
        "submission_3": (
            '\'=HYPERLINK("http://evil.example","click"); Grace Hopper',
            "mallory@example.edu; grace@example.edu",
            "0003; 0004",
            "",
            "ungradable",
        ),
    }


def test_a_worker_that_dies_costs_only_its_submission_a_grader_error_report(tmp_path, capsys):
    reference = tmp_path / "reference.py"
    reference.write_text(
        (REPO / "solutions/quiz4.py").read_text() + "\n\ndef softmax(S):\n    import os\n    os._exit(3)\n"
    )
    rubric = fast_rubric(tmp_path / "rubric", reference=str(reference))
    (tmp_path / "class").mkdir()
    for name in ("ada", "bo", "cy"):
        (tmp_path / "class" / f"{name}.py").write_text(CORRECT + f"# {name}\n")
    assert grade_batch(tmp_path / "class", "-o", tmp_path / "out", "--rubric", rubric, "-j", 2) == 1
    rows = read_gradebook(tmp_path / "out")
    assert {r["status"] for r in rows.values()} == {"grader_error"}
    assert "the grader worker process died while grading this submission (exit code 3)" in rows["bo"]["note"]
    assert "rerun the same command to retry" in capsys.readouterr().err


def class_to_interrupt(root: Path) -> Path:
    """A hanging submission first (so a kill lands mid-run), then seven quick ones."""
    root.mkdir()
    shutil.copy(FIXTURES / "buggy" / "eq12_timeout.py", root / "a_hangs.py")
    for i, name in enumerate(["add_at", "broadcast", "einsum", "loops", "matmul", "tensordot", "lists"]):
        shutil.copy(FIXTURES / "correct" / f"{name}.py", root / f"s{i}.py")
    return root


def session_processes(sid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_a_batch_killed_mid_run_and_rerun_gives_the_same_gradebook(rubric, tmp_path, how):
    source = class_to_interrupt(tmp_path / "class")
    assert grade_batch(source, "-o", tmp_path / "whole", "--rubric", rubric, "-j", 2) == 0
    outdir = tmp_path / "killed"
    command = [sys.executable, "-m", "grader", "batch", source, "-o", outdir, "--rubric", rubric, "-j", "1"]
    run = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(list((outdir / "reports").glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    if how == signal.SIGINT:
        os.killpg(run.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
    else:
        os.kill(run.pid, signal.SIGKILL)  # only the main process: its workers must notice and go
    run.communicate(timeout=30)
    assert run.returncode == (130 if how == signal.SIGINT else -signal.SIGKILL)
    deadline = time.monotonic() + 10
    while session_processes(run.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_processes(run.pid) == []
    finished = list((outdir / "reports").glob("*.json"))
    assert 2 <= len(finished) < 8 and not (outdir / "gradebook.csv").exists()
    for report in finished:
        json.loads(report.read_text())  # complete, never half-written
    assert grade_batch(source, "-o", outdir, "--rubric", rubric, "-j", 2) == 0
    assert (outdir / "gradebook.csv").read_bytes() == (tmp_path / "whole" / "gradebook.csv").read_bytes()
    assert (outdir / "summary.json").read_bytes() == (tmp_path / "whole" / "summary.json").read_bytes()
    assert not [p.name for p in (outdir / "reports").iterdir() if p.name.startswith(".")]
    for page in (tmp_path / "whole" / "pages").iterdir():
        assert (outdir / "pages" / page.name).read_bytes() == page.read_bytes(), page.name


def test_a_rerun_skips_up_to_date_reports_and_retries_only_the_ungradable(graded_class, mixed_class, rubric, capsys):
    before = (graded_class / "gradebook.csv").read_bytes()
    capsys.readouterr()
    assert grade_batch(mixed_class, "-o", graded_class, "--rubric", rubric) == 0
    out = capsys.readouterr().out
    assert "4 this run" in out and "8 already up to date" in out
    assert (graded_class / "gradebook.csv").read_bytes() == before


@pytest.mark.slow
def test_sharding_and_merging_give_the_same_gradebook_as_one_batch(graded_class, mixed_class, rubric, tmp_path):
    shards = [tmp_path / f"shard-{k}" for k in (1, 2, 3)]
    for k, outdir in enumerate(shards, start=1):
        assert grade_batch(mixed_class, "-o", outdir, "--rubric", rubric, "--shard", f"{k}/3", "-j", 2) == 0
    sizes = [len(read_gradebook(outdir)) for outdir in shards]
    assert sum(sizes) == len(EXPECTED) and all(sizes)
    assert grade_batch("merge", *shards[:2], "-o", tmp_path / "partial") == 2  # shard 3/3 missing
    assert grade_batch("merge", *shards, "-o", tmp_path / "merged") == 0
    for name in ("gradebook.csv", "summary.json", "summary.html"):
        assert (tmp_path / "merged" / name).read_bytes() == (graded_class / name).read_bytes(), name
    for sub_id in EXPECTED:  # the students' pages are copied with their reports
        assert page_of(tmp_path / "merged", sub_id) == page_of(graded_class, sub_id), sub_id
    (shards[0] / "pages" / f"{read_gradebook(shards[0]).popitem()[0]}.html").unlink()
    assert grade_batch("merge", *shards, "-o", tmp_path / "again") == 2, "a shard without a page is unfinished"


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_the_summary_page_renders_in_headless_chromium(graded_class, tmp_path):
    profile = tempfile.mkdtemp(dir=tmp_path)
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={profile}",
    ]
    page = (graded_class / "summary.html").as_uri()
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", page], capture_output=True, text=True, timeout=120)
    assert "Needs a human look (9)" in dom.stdout and "<svg" in dom.stdout
    shot = tmp_path / "summary.png"
    subprocess.run(
        [CHROMIUM, *flags, "--window-size=1100,1500", f"--screenshot={shot}", page], capture_output=True, timeout=120
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


def test_a_rerun_regrades_everyone_after_the_reference_changes(tmp_path, capsys):
    assignment = tmp_path / "assignment"
    assignment.mkdir()
    for name in ("quiz4.py", "quiz4_mistakes.py"):
        shutil.copy(REPO / "solutions" / name, assignment / name)
    rubric = write_rubric_copy(assignment)
    rubric.write_text(rubric.read_text().replace(str(REPO / "solutions"), str(assignment)))
    course = tmp_path / "class"
    course.mkdir()
    shutil.copy(REPO / "solutions" / "quiz4.py", course / "alice.py")
    outdir = tmp_path / "out"
    assert grade_batch(course, "-o", outdir, "--rubric", rubric) == 0
    (row,) = read_gradebook(outdir).values()
    assert row["total"] == "11"
    reference = assignment / "quiz4.py"
    reference.write_text(reference.read_text().replace("return dY @ W.T", "return 2 * dY @ W.T"))
    reference.write_text(reference.read_text().replace("return A @ B", "return 2 * A @ B"))
    capsys.readouterr()
    assert grade_batch(course, "-o", outdir, "--rubric", rubric) == 0
    assert "1 this run" in capsys.readouterr().out
    (row,) = read_gradebook(outdir).values()
    assert row["total"] != "11"


def test_a_class_folder_with_non_utf8_names_is_graded_and_gets_its_gradebook(rubric, tmp_path):
    cafe = os.fsdecode(b"caf\xe9")  # a Latin-1 name on a UTF-8 system
    course = tmp_path / "class"
    (course / f"d{cafe}").mkdir(parents=True)
    (course / f"{cafe}.py").write_text(CORRECT)
    (course / f"d{cafe}" / "quiz4.py").write_text(CORRECT)
    (course / "plain.py").write_text(CORRECT)
    assert grade_batch(course, "-o", tmp_path / "out", "--rubric", rubric, "-j", 2) == 0
    rows = read_gradebook(tmp_path / "out")
    assert {k: (r["source"], r["total"], r["status"]) for k, r in rows.items()} == {
        "caf_": ("caf\ufffd.py", "11", "graded"),
        "dcaf_": ("dcaf\ufffd", "11", "graded"),
        "plain": ("plain.py", "11", "graded"),
    }


def test_only_regrades_the_one_submission_and_keeps_the_gradebook_whole(rubric, tmp_path, capsys):
    course = ada_and_bob(tmp_path / "class")
    outdir = tmp_path / "out"
    assert grade_batch(course, "-o", outdir, "--rubric", rubric, "--only", "bob") == 0
    assert "No gradebook yet: 1 other submission(s) have no report" in capsys.readouterr().out
    assert [p.name for p in (outdir / "reports").iterdir()] == ["bob.json"]
    assert grade_batch(course, "-o", outdir, "--rubric", rubric) == 0
    before = {p.name: p.stat().st_mtime_ns for p in (outdir / "reports").iterdir()}
    gradebook = (outdir / "gradebook.csv").read_bytes()
    capsys.readouterr()
    assert grade_batch(course, "-o", outdir, "--rubric", rubric, "--only", "bob") == 0
    assert "Regraded bob of 2 submissions" in capsys.readouterr().out
    after = {p.name: p.stat().st_mtime_ns for p in (outdir / "reports").iterdir()}
    assert after["ada.json"] == before["ada.json"] and after["bob.json"] != before["bob.json"]
    assert (outdir / "gradebook.csv").read_bytes() == gradebook


SLOW_EVERYWHERE = (
    CORRECT
    + """
import time as _time


def _slowly(function):
    def slow(*args, **kwargs):
        _time.sleep(0.3)
        return function(*args, **kwargs)

    return slow


for _name, _value in list(globals().items()):
    if callable(_value) and getattr(_value, "__module__", None) == __name__ and not _name.startswith("_"):
        globals()[_name] = _slowly(_value)
"""
)


@pytest.mark.slow
def test_workers_stop_at_once_when_the_batch_is_killed_and_write_no_report_after(rubric, tmp_path):
    course = tmp_path / "class"
    course.mkdir()
    (course / "slow.py").write_text(SLOW_EVERYWHERE)  # every call takes 0.3 s: over ten seconds in all
    outdir = tmp_path / "out"
    command = [sys.executable, "-m", "grader", "batch", course, "-o", outdir, "--rubric", rubric, "-j", "1"]
    run = subprocess.Popen(command, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (outdir / "batch.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(3.0)  # the worker is grading by now
    os.kill(run.pid, signal.SIGKILL)  # only the main process
    run.communicate(timeout=30)
    killed = time.monotonic()
    while session_processes(run.pid) and time.monotonic() < killed + 10:
        time.sleep(0.05)
    assert session_processes(run.pid) == [] and time.monotonic() - killed < 3.0
    time.sleep(0.5)  # a report, if any were still coming, would be renamed into place by now
    assert not (outdir / "reports").exists() or list((outdir / "reports").iterdir()) == []
