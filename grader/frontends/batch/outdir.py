"""The batch's output folder: its lock, its manifest, its reports, and what a rerun may keep.

    reports/ID.json   every submission's report, schema-valid even when it could not be graded
    pages/ID.html     the student's page of it (``grader/frontends/page.py``: visible cases only), written first
    gradebook.csv     a row per submission (see ``gradebook.py``)
    summary.json      class statistics; summary.html shows them on one self-contained page
    batch.json        what the run covered (rubric, shard, submissions): ``merge`` reads it
    submissions/      a Gradescope zip, unpacked (only its .py files, notebooks and the metadata)

Every file is written to a temporary name and renamed into place, so a batch killed at
any point leaves no half-written file, and a rerun sweeps the temporaries. A report is
kept by a rerun only when it grades the very same file with the same assignment and
grader (``current_report``). Gradebook and summary are rebuilt from the reports alone,
so a resumed run's are byte for byte an uninterrupted run's.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import stat
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import grader
from grader.assignment.rubric import Rubric
from grader.errors import BatchError
from grader.files import write_bytes_atomic, write_json_atomic
from grader.frontends.batch.export import sha256_file
from grader.frontends.batch.gradebook import Row, equation_ids, page_name, render_gradebook, row_from_report
from grader.frontends.batch.roster import Submission
from grader.frontends.batch.summary import summarize_class
from grader.frontends.batch.summary_page import render_html
from grader.frontends.batch.tasks import Shard, Task
from grader.frontends.page import render_page
from grader.grading.notebook import max_bytes
from grader.grading.report import NotGraded, Report, display_text, grader_code_sha256, validate_report

MANIFEST = "batch.json"
MANIFEST_VERSION = 1
LOCK = ".batch.lock"
OUTPUTS = ("gradebook.csv", "summary.json", "summary.html")
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}$")  # tempfile.mkstemp(prefix=f".{name}.")


def report_name(submission_id: str) -> str:
    """Where a submission's report lives, relative to the output folder."""
    return f"reports/{submission_id}.json"


def sweep_temporaries(outdir: Path) -> None:
    """Remove temporary files a killed run left behind (never a finished file)."""
    for folder in (outdir, outdir / "reports", outdir / "pages"):
        if folder.is_dir():
            for item in folder.iterdir():
                if item.is_file() and item.name != LOCK and _TEMPORARY.match(item.name):
                    item.unlink(missing_ok=True)


@contextmanager
def exclusive(outdir: Path) -> Iterator[None]:
    """Hold OUTDIR for this run; a second run on the same folder stops with a message.

    ``flock`` is released by the kernel when the process dies, even by ``kill -9``.
    """
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        handle = open(outdir / LOCK, "a+")  # noqa: SIM115 - closed below
    except OSError as err:
        raise BatchError(f"{outdir}: cannot create the output folder ({err.strerror})") from err
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as err:
            raise BatchError(
                f"{outdir}: another `grade batch` is writing to this folder; wait for it, or choose another -o"
            ) from err
        yield
    finally:
        handle.close()


def read_json(path: Path) -> dict | None:
    """A JSON object from a file, or None when it is missing, unreadable or not an object."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def write_checked_report(document: dict, path: Path, report: Report) -> None:
    """Validate against the report schema, then write the student's page and the report, atomically.

    The page first, flushed to the disk: a report on disk means its submission is done,
    page included, even after a power cut. The report itself is not flushed: one a
    power cut empties reads as unreadable, and the rerun that follows any interruption
    regrades it (page and all), as it does a report that was never written.
    """
    validate_report(document)
    write_bytes_atomic(page_name(str(path)), render_page(report).encode("utf-8"))
    write_json_atomic(path, document, durable=False)


def manifest_for(rubric: Rubric, source: Path, shard: Shard | None, submissions: Sequence[Submission]) -> dict:
    """``batch.json``: what this run covers; ``merge`` checks shards against each other with it."""
    return {
        "batch_version": MANIFEST_VERSION,
        "assignment": rubric.assignment,
        "title": rubric.title,
        "max_score": rubric.max_score,
        "equations": [eq.id for eq in rubric.equations],
        "rubric": str(rubric.path),
        "rubric_sha256": rubric.sha256,
        "assignment_sha256": rubric.assignment_sha256,
        "grader_version": grader.__version__,
        "code_sha256": grader_code_sha256(),
        "inputs": [display_text(source.resolve())],
        "shard": None if shard is None else {"index": shard.index, "count": shard.count},
        "submissions": [
            {"id": display_text(s.id), "source": display_text(s.source), "report": display_text(report_name(s.id))}
            for s in submissions
        ],
    }


def read_manifest(outdir: Path) -> dict:
    """The manifest of a finished or unfinished batch folder; a BatchError if it has none."""
    manifest = read_json(outdir / MANIFEST)
    if manifest is None or manifest.get("batch_version") != MANIFEST_VERSION:
        raise BatchError(f"{outdir}: no {MANIFEST} here; is it the -o folder of a `grade batch` run?")
    return manifest


def planned_sha256(submission: Submission) -> str | None:
    """The file's sha256 when it can be graded, else None (checked without opening anything that could block)."""
    if submission.path is None:
        return None
    try:
        info = os.stat(submission.path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes(submission.path):
            return None
        return sha256_file(submission.path)
    except OSError:
        return None


def current_report(task: Task, rubric: Rubric) -> dict | None:
    """The existing report if it is a grade of this very file, assignment and grader (so it can be kept).

    The assignment hash covers the reference, catalog and template as well as the
    rubric, so fixing the reference regrades everyone.
    """
    if task.sha256 is None:
        return None
    document = read_json(task.report)
    if document is None:
        return None
    submission = document.get("submission") or {}
    made_by = document.get("grader") or {}
    metadata = submission.get("metadata") or {}
    expected = {key: display_text(value) for key, value in task.submission.metadata().items()}
    if (
        submission.get("sha256") != task.sha256
        or made_by.get("rubric_sha256") != rubric.sha256
        or made_by.get("assignment_sha256") != rubric.assignment_sha256
        or made_by.get("version") != grader.__version__
        or made_by.get("code_sha256") != grader_code_sha256()
        or {key: metadata.get(key) for key in expected} != expected
        or {flag.value for flag in NotGraded} & set(document.get("flags") or ())
    ):
        return None
    return document


def plan(
    submissions: Sequence[Submission], outdir: Path, rubric: Rubric, forced: Collection[str] = ()
) -> tuple[list[Task], int]:
    """The tasks still to do, and how many submissions already have an up-to-date report.

    Submissions whose id is in ``forced`` are regraded even when their report is current,
    and so are those whose page is missing (it is made from the grade, not the report).
    """
    tasks, done = [], 0
    for submission in submissions:
        task = Task(submission, planned_sha256(submission), outdir / report_name(submission.id))
        page = outdir / page_name(report_name(submission.id))
        if submission.id not in forced and page.is_file() and current_report(task, rubric) is not None:
            done += 1
        else:
            tasks.append(task)
    return tasks, done


def clear_outputs(outdir: Path) -> None:
    """Remove the gradebook and summary: an interrupted run must not leave the last ones looking current."""
    for name in OUTPUTS:
        (outdir / name).unlink(missing_ok=True)


def missing_reports(outdir: Path, manifest: dict) -> list[str]:
    """The ids in the manifest whose report or page is not in the folder yet."""
    return [
        item["id"]
        for item in manifest["submissions"]
        if not ((outdir / item["report"]).is_file() and (outdir / page_name(item["report"])).is_file())
    ]


def read_rows(outdir: Path, manifest: dict) -> list[Row]:
    """One gradebook row per submission of the manifest, read back from its report."""
    rows = []
    for item in manifest["submissions"]:
        document = read_json(outdir / item["report"])
        if document is None:
            raise BatchError(f"{outdir / item['report']}: missing or unreadable; rerun the batch to regrade it")
        rows.append(row_from_report(document, item["report"]))
    return rows


def finish(outdir: Path, manifest: dict) -> list[Row]:
    """Read every report back and write the gradebook and the summary (JSON and HTML)."""
    rows = read_rows(outdir, manifest)
    gradebook = render_gradebook(rows, equation_ids(rows, manifest["equations"]))
    summary = summarize_class(
        rows,
        {
            "assignment": manifest["assignment"],
            "title": manifest["title"],
            "rubric_sha256": manifest["rubric_sha256"],
            "grader_version": manifest["grader_version"],
            "max_score": manifest["max_score"],
        },
    )
    write_bytes_atomic(outdir / "gradebook.csv", gradebook.encode("utf-8"))
    write_json_atomic(outdir / "summary.json", summary)
    write_bytes_atomic(outdir / "summary.html", render_html(summary).encode("utf-8"))
    return rows
