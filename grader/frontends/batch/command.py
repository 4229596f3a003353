"""``grade batch``: grade a whole class in parallel and resumably, with a gradebook and a summary page.

    grade batch INPUT -o OUTDIR [-j N] [--rubric R] [--force] [--shard K/N]
    grade batch merge SHARD_OUTDIR... -o OUTDIR

INPUT is a folder of ``.py`` files, a folder of per-student folders, or a Gradescope
export (zip or folder); see ``grader/roster.py``. OUTDIR receives:

    reports/ID.json   every submission's report, schema-valid even when it could not be graded
    gradebook.csv     a row per submission (see ``grader/gradebook.py``)
    summary.json      class statistics; summary.html shows them on one self-contained page
    batch.json        what the run covered (rubric, shard, submissions): ``merge`` reads it
    submissions/      a Gradescope zip, unpacked (only its .py files and the metadata)

How it runs. A pool of grader worker processes, forked from a ``forkserver`` that
imported grader and numpy once, takes one submission at a time and calls
``grade_submission``, which runs the submission in a sandboxed child process of its
own with its own limits: workers never run student code. The sandbox's uid is derived
from the worker's pid, so workers never share one. The main process only hands out
work, watches for workers that die or overrun every limit (that submission gets a
``grader_error`` report and a fresh worker takes over), and draws progress.

Resumable. Every file is written to a temporary name and renamed into place, so a batch
killed at any point (Ctrl-C, ``kill -9``, a lost cluster node) leaves no half-written
file. Rerunning the same command skips submissions whose report matches the file's
sha256, the rubric's sha256 and the grader version; ``--force`` regrades everything.
Gradebook and summary are rebuilt from the reports, so a resumed run's are the same
as an uninterrupted run's.

Exit codes: 0 when every submission has its report; 1 when the grader itself failed on
some submission (its report says so; rerun to retry it); 2 for usage, input or rubric
errors; 130 when interrupted (rerun the same command to finish).
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import math
import multiprocessing
import multiprocessing.connection
import os
import platform
import re
import shlex
import signal
import stat
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import grader
from grader.assignment.reference import load_mistakes, load_reference
from grader.assignment.rubric import Rubric, load_rubric, resolve_rubric_path
from grader.errors import GraderError, SubmissionFileError
from grader.files import write_bytes_atomic, write_json_atomic
from grader.frontends.batch.gradebook import (
    GRADER_ERROR_FLAG,
    UNGRADABLE_FLAG,
    Row,
    SubmissionStatus,
    equation_ids,
    format_points,
    render_gradebook,
    row_from_report,
)
from grader.frontends.batch.progress import Progress, format_duration
from grader.frontends.batch.roster import Submission, find_submissions, natural_key, sha256_file
from grader.frontends.batch.summary import render_html, summarize_class
from grader.grading.cases import derive_hidden_seed
from grader.grading.pipeline import MAX_SUBMISSION_BYTES, grade_submission
from grader.grading.report import (
    SCHEMA_VERSION,
    display_text,
    grader_code_sha256,
    report_to_dict,
    validate_report,
)
from grader.sandbox.host import SandboxHost

MANIFEST = "batch.json"
MANIFEST_VERSION = 1
LOCK = ".batch.lock"
OUTPUTS = ("gradebook.csv", "summary.json", "summary.html")
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
PR_SET_PDEATHSIG = 1
STOP_GRACE_SECONDS = 5.0
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}$")  # tempfile.mkstemp(prefix=f".{name}.")


class BatchError(GraderError):
    """The batch cannot run or merge as asked (not one submission's fault)."""


class WorkerStop(BaseException):
    """Raised in a worker on SIGTERM, so ``with Sandbox`` blocks unwind and kill their children.

    A BaseException, so no ``except Exception`` on the way can swallow it.
    """


@dataclass(frozen=True)
class Shard:
    """The K-th of N deterministic slices of a class (1-based), for array jobs on a cluster.

    A submission's shard depends only on its id, so it does not move when other
    submissions are added or removed.
    """

    index: int
    count: int

    def contains(self, submission_id: str) -> bool:
        digest = hashlib.sha256(submission_id.encode("utf-8")).digest()
        return int.from_bytes(digest[:8], "big") % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


@dataclass(frozen=True)
class Task:
    """One submission to grade, the sha256 the planner saw (None: unreadable) and where its report goes."""

    submission: Submission
    sha256: str | None
    report: Path


@dataclass(frozen=True)
class Outcome:
    """What the main process needs to know about a finished task."""

    id: str
    status: SubmissionStatus
    total: float | None
    max_score: float
    seconds: float

    def describe(self) -> str:
        if self.total is None:
            return f"{self.id}: {self.status.value.replace('_', ' ')}"
        return f"{self.id}: {format_points(self.total)}/{format_points(self.max_score)} {self.status.value}"


def parse_shard(text: str) -> Shard:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise BatchError(f"--shard {text}: expected K/N with 1 <= K <= N, e.g. --shard 3/8")
    return Shard(int(match[1]), int(match[2]))


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def report_name(submission_id: str) -> str:
    return f"reports/{submission_id}.json"


# -- files --------------------------------------------------------------------------


def sweep_temporaries(outdir: Path) -> None:
    """Remove temporary files a killed run left behind (never a finished file)."""
    for folder in (outdir, outdir / "reports"):
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
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


# -- reports --------------------------------------------------------------------------


def write_checked_report(document: dict, path: Path) -> None:
    """Validate against the report schema and write atomically."""
    validate_report(document)
    write_json_atomic(path, document)


def failure_report(task: Task, rubric: Rubric, flag: str, message: str) -> dict:
    """A schema-valid report for a submission that was not graded, saying why.

    The report schema has no field for "not graded", so the reason goes in
    ``submission.metadata.grading_error`` and the top-level ``flags`` say
    ``ungradable`` or ``grader_error``; ``equations`` is empty and ``sha256`` is the
    file's when it could be read (otherwise the sha256 of no bytes).
    """
    submission = task.submission
    sha256 = task.sha256 or EMPTY_SHA256
    path = str(submission.path) if submission.path else submission.source
    return {
        "schema_version": SCHEMA_VERSION,
        "assignment": rubric.assignment,
        "title": rubric.title,
        "submission": {
            "path": path,
            "sha256": sha256,
            "metadata": {**submission.metadata(), "grading_error": message},
        },
        "score": 0,
        "max_score": rubric.max_score,
        "equations": [],
        "flags": [flag],
        "output": "",
        "grader": {
            "version": grader.__version__,
            "rubric": str(rubric.path),
            "rubric_sha256": rubric.sha256,
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "reproduce": {
            "hidden_seed": derive_hidden_seed(rubric.seed, sha256),
            "seed_source": "derived",
            "rubric_seed": rubric.seed,
            "command": f"grade {shlex.quote(path)} --rubric {shlex.quote(str(rubric.path))}",
        },
        "sandbox": {
            "privilege_drop": False,
            "network_cut": False,
            "reference_hidden": False,
            "kill_all_processes": False,
            "resource_limits": False,
            "notes": ["not run: the submission never reached the sandbox"],
        },
        "timings": {},
    }


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
    expected = task.submission.metadata()
    if (
        submission.get("sha256") != task.sha256
        or made_by.get("rubric_sha256") != rubric.sha256
        or made_by.get("assignment_sha256") != rubric.assignment_sha256
        or made_by.get("version") != grader.__version__
        or made_by.get("code_sha256") != grader_code_sha256()
        or {key: metadata.get(key) for key in expected} != expected
        or {UNGRADABLE_FLAG, GRADER_ERROR_FLAG} & set(document.get("flags") or ())
    ):
        return None
    return document


def outcome_of(document: dict, submission_id: str, seconds: float) -> Outcome:
    row = row_from_report(document, report_name(submission_id))
    return Outcome(submission_id, row.status, row.total, row.max_score, seconds)


def planned_sha256(submission: Submission) -> str | None:
    """The file's sha256 when it can be graded, else None (checked without opening anything that could block)."""
    if submission.path is None:
        return None
    try:
        info = os.stat(submission.path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_SUBMISSION_BYTES:
            return None
        return sha256_file(submission.path)
    except OSError:
        return None


# -- the worker -------------------------------------------------------------------------


def grade_task(task: Task, rubric: Rubric, host: SandboxHost) -> Outcome:
    """Grade one submission and write its report; never raises for anything about the submission."""
    started = time.monotonic()
    submission = task.submission
    try:
        if submission.path is None:
            raise SubmissionFileError(submission.problem)
        report = grade_submission(submission.path, rubric, metadata=submission.metadata(), host=host)
        document = report_to_dict(report)
    except SubmissionFileError as err:  # named by its place in the class, so shards on other machines agree
        message = str(err).replace(str(submission.path), submission.source) if submission.path else str(err)
        document = failure_report(task, rubric, UNGRADABLE_FLAG, message)
    except Exception as err:  # noqa: BLE001 - a grader fault on one submission must not stop the class
        document = failure_report(
            task,
            rubric,
            GRADER_ERROR_FLAG,
            f"the grader failed on this submission ({type(err).__name__}: {err}); this is a fault of the "
            f"grader or its setup, not the student's: rerun the batch to retry, or run `grade` on the file alone",
        )
    write_checked_report(document, task.report)
    return outcome_of(document, submission.id, time.monotonic() - started)


def _stop(signum, frame):  # pragma: no cover - runs in the worker
    raise WorkerStop


def die_with_parent() -> None:
    """Ask Linux for SIGTERM when the forkserver (our parent) exits, which it does when the batch dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def serve(conn: multiprocessing.connection.Connection, rubric_path: str) -> None:  # pragma: no cover - worker
    """A worker's life: load the rubric once, then grade tasks until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what Ctrl-C means
    signal.signal(signal.SIGTERM, _stop)
    die_with_parent()
    host = SandboxHost()  # this worker's zygote, clean uids and refused mechanisms
    try:
        rubric = load_rubric(rubric_path)
        while True:
            task = conn.recv()
            if task is None:
                return
            conn.send(grade_task(task, rubric, host))
    except (WorkerStop, EOFError, BrokenPipeError):
        return
    except GraderError as err:
        conn.send(("failed", str(err)))
    finally:
        host.close()


# -- the pool ---------------------------------------------------------------------------


def watchdog_seconds(rubric: Rubric) -> float:
    """How long one submission may take before its worker is presumed stuck (a grader fault).

    The sandbox bounds a submission: every call may time out and every restart may use
    the whole import limit. Twice that, plus a minute, leaves room for a busy machine.
    """
    s = rubric.settings
    calls = (s.visible_cases + s.hidden_cases) * len(rubric.equations)
    return 60.0 + 2.0 * (s.import_time_limit + calls * (s.time_limit + s.import_time_limit))


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class Worker:
    """The main process's handle on one grader worker."""

    def __init__(self, context, rubric_path: Path) -> None:
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=serve, args=(child_end, str(rubric_path)), name="grade-batch-worker")
        self.process.daemon = True
        self.process.start()
        child_end.close()
        self.task: Task | None = None
        self.deadline = math.inf
        self.started = 0.0

    def assign(self, task: Task, budget: float) -> bool:
        try:
            self.conn.send(task)
        except (BrokenPipeError, OSError):
            return False
        self.task, self.started, self.deadline = task, time.monotonic(), time.monotonic() + budget
        return True

    def stop(self) -> None:
        """SIGTERM first (the worker unwinds and its sandbox kills the submission's processes), then SIGKILL."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(STOP_GRACE_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def pool_context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["grader.frontends.batch.command"])
    return context


def run_pool(tasks: Sequence[Task], jobs: int, rubric: Rubric, on_done: Callable[[Outcome], None]) -> None:
    """Grade ``tasks`` on up to ``jobs`` workers; every task ends with a report, whatever befalls its worker."""
    if not tasks:
        return
    context = pool_context()
    budget = watchdog_seconds(rubric)
    pending = deque(tasks)
    workers: list[Worker] = []
    idle_deaths = 0

    def retire(worker: Worker, why: str | None = None) -> None:
        """Stop a worker; if it held a task, make sure that task still ends with a report."""
        worker.stop()
        workers.remove(worker)
        task, worker.task = worker.task, None
        if task is None or why is None:
            return
        document = current_report(task, rubric)  # it may have written the report just before dying
        if document is None:
            message = f"{why}; this is a fault of the grader or the machine, not the student's: rerun to retry"
            document = failure_report(task, rubric, GRADER_ERROR_FLAG, message)
            write_checked_report(document, task.report)
        on_done(outcome_of(document, task.submission.id, time.monotonic() - worker.started))

    try:
        while pending or any(w.task for w in workers):
            while pending and len(workers) < min(jobs, len(tasks)):
                workers.append(Worker(context, rubric.path))
            for worker in list(workers):
                if worker.task is None and not worker.process.is_alive():
                    idle_deaths += 1  # died between tasks: nothing to rescue, but not forever
                    if idle_deaths > 2 * jobs + 2:
                        code = describe_exit(worker.process.exitcode)
                        raise BatchError(
                            f"grader workers keep dying while idle ({code}); is the machine out of memory?"
                        )
                    retire(worker)
                elif worker.task is None and pending and worker.assign(pending[0], budget):
                    pending.popleft()
            busy = [w for w in workers if w.task is not None]
            if not busy:
                continue
            timeout = max(0.0, min(1.0, min(w.deadline for w in busy) - time.monotonic()))
            waitables = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(multiprocessing.connection.wait(waitables, timeout))
            for worker in busy:
                if worker.conn in ready or worker.process.sentinel in ready:
                    try:
                        message = worker.conn.recv() if worker.conn.poll() else None
                    except (EOFError, OSError):
                        message = None
                    if isinstance(message, Outcome):
                        worker.task = None
                        on_done(message)
                    elif isinstance(message, tuple) and message[:1] == ("failed",):
                        raise BatchError(f"a grader worker could not start: {message[1]}")
                    else:
                        worker.process.join(STOP_GRACE_SECONDS)
                        code = describe_exit(worker.process.exitcode)
                        retire(worker, f"the grader worker process died while grading this submission ({code})")
                elif time.monotonic() > worker.deadline:
                    retire(
                        worker, f"grading took over {budget:g} s, more than the sandbox limits allow, and was stopped"
                    )
    finally:
        for worker in workers:
            if worker.task is None:
                try:
                    worker.conn.send(None)  # a polite stop for idle workers
                except (BrokenPipeError, OSError):
                    pass
        for worker in workers:
            if worker.task is None:
                worker.process.join(STOP_GRACE_SECONDS)
            worker.stop()


# -- planning and finishing -------------------------------------------------------------


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


def plan(submissions: Sequence[Submission], outdir: Path, rubric: Rubric, force: bool) -> tuple[list[Task], int]:
    """The tasks still to do, and how many submissions already have an up-to-date report."""
    tasks, done = [], 0
    for submission in submissions:
        task = Task(submission, planned_sha256(submission), outdir / report_name(submission.id))
        if not force and current_report(task, rubric) is not None:
            done += 1
        else:
            tasks.append(task)
    return tasks, done


def finish(outdir: Path, manifest: dict) -> list[Row]:
    """Read every report back and write the gradebook and the summary (JSON and HTML)."""
    rows = []
    for item in manifest["submissions"]:
        document = read_json(outdir / item["report"])
        if document is None:
            raise BatchError(f"{outdir / item['report']}: missing or unreadable; rerun the batch to regrade it")
        rows.append(row_from_report(document, item["report"]))
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


def conclude(rows: Sequence[Row], outdir: Path, headline: str) -> int:
    """Print what happened and where the results are; the exit code."""
    graded = [r.total for r in rows if r.total is not None]
    max_score = format_points(rows[0].max_score) if rows else "?"
    look = sum(r.status != SubmissionStatus.GRADED for r in rows)
    errors = sum(r.status == SubmissionStatus.GRADER_ERROR for r in rows)
    print(headline)
    if graded:
        mean = format_points(round(sum(graded) / len(graded), 2))
        print(f"Mean {mean}/{max_score} over {len(graded)} graded; {look} need a human look (see the summary).")
    print(f"Gradebook: {outdir / 'gradebook.csv'}\nSummary:   {outdir / 'summary.html'}")
    if errors:
        print(f"{errors} submission(s) hit a grader error; rerun the same command to retry them.", file=sys.stderr)
    return 1 if errors else 0


# -- commands ------------------------------------------------------------------------------


def batch_parser():
    from grader.frontends.cli import Parser  # here, not at the top: grader.frontends.cli imports this module

    parser = Parser(
        prog="grade batch",
        description="Grade a whole class in parallel: reports, a gradebook and a summary page. "
        "Rerun the same command to resume; `grade batch merge` joins shards.",
    )
    parser.add_argument("input", help="a folder of .py files, a folder of per-student folders, or a Gradescope export")
    parser.add_argument("-o", "--output", required=True, help="the folder for reports, gradebook.csv and summary.html")
    parser.add_argument("-j", "--jobs", type=int, help=f"parallel workers (default: the CPU count, {default_jobs()})")
    parser.add_argument("--rubric", help="a rubric file, or the name of a bundled rubric (default: the bundled one)")
    parser.add_argument("--force", action="store_true", help="regrade every submission, even those up to date")
    parser.add_argument("--shard", metavar="K/N", help="grade only the K-th of N deterministic slices of the class")
    return parser


def merge_parser():
    from grader.frontends.cli import Parser

    parser = Parser(prog="grade batch merge", description="Join the outputs of sharded batches into one.")
    parser.add_argument("outdirs", nargs="+", metavar="OUTDIR", help="the -o folder of each shard")
    parser.add_argument("-o", "--output", required=True, help="the folder for the joined reports and gradebook")
    return parser


def run_batch(argv: Sequence[str]) -> int:
    from grader.frontends.cli import UsageError

    args = batch_parser().parse_args(argv)
    if args.jobs is not None and args.jobs < 1:
        raise UsageError("grade batch: -j must be at least 1")
    shard = parse_shard(args.shard) if args.shard else None
    rubric = load_rubric(resolve_rubric_path(args.rubric))
    load_reference(rubric)  # a broken reference or catalog stops the batch before it starts, not 200 times
    load_mistakes(rubric)
    outdir, source = Path(args.output), Path(args.input)
    jobs = args.jobs or default_jobs()
    with exclusive(outdir):
        sweep_temporaries(outdir)
        submissions, _ = find_submissions(source, rubric.submission_filename, outdir / "submissions", outdir)
        if shard is not None:
            submissions = [s for s in submissions if shard.contains(s.id)]
        manifest = manifest_for(rubric, source, shard, submissions)
        write_json_atomic(outdir / MANIFEST, manifest)
        tasks, done = plan(submissions, outdir, rubric, args.force)
        if tasks:  # an interrupted run must not leave the previous run's gradebook looking current
            for name in OUTPUTS:
                (outdir / name).unlink(missing_ok=True)
        progress = Progress(len(submissions), sys.stderr, done=done)
        started = time.monotonic()
        try:
            run_pool(tasks, jobs, rubric, lambda outcome: progress.advance(outcome.describe()))
        finally:
            progress.close()
        elapsed = time.monotonic() - started
        rows = finish(outdir, manifest)
    where = f" (shard {shard})" if shard else ""
    rate = f" at {len(tasks) / elapsed:.1f}/s" if tasks and elapsed > 0 else ""
    headline = (
        f"Graded {len(submissions)} submissions{where} in {format_duration(elapsed)}: {len(tasks)} this run"
        f"{rate} with -j {jobs}, {done} already up to date."
    )
    return conclude(rows, outdir, headline)


def run_merge(argv: Sequence[str]) -> int:
    args = merge_parser().parse_args(argv)
    dest = Path(args.output)
    sources = [Path(p) for p in args.outdirs]
    manifests = []
    for source in sources:
        manifest = read_json(source / MANIFEST)
        if manifest is None or manifest.get("batch_version") != MANIFEST_VERSION:
            raise BatchError(f"{source}: no {MANIFEST} here; is it the -o folder of a `grade batch` run?")
        manifests.append(manifest)
    check_mergeable(sources, manifests)
    items = []
    for source, manifest in zip(sources, manifests):
        missing = [i for i in manifest["submissions"] if not (source / i["report"]).is_file()]
        if missing:
            raise BatchError(
                f"{source}: unfinished, {len(missing)} of {len(manifest['submissions'])} submissions have no "
                "report yet; rerun that shard's command to finish it"
            )
        items += [(source, item) for item in manifest["submissions"]]
    items.sort(key=lambda pair: natural_key(pair[1]["id"]))
    with exclusive(dest):
        sweep_temporaries(dest)
        for source, item in items:
            origin, target = source / item["report"], dest / item["report"]
            if not target.exists() or not os.path.samefile(origin, target):
                write_bytes_atomic(target, origin.read_bytes())
        merged = {
            **manifests[0],
            "inputs": sorted({i for m in manifests for i in m["inputs"]}),
            "shard": None,
            "submissions": [item for _, item in items],
        }
        write_json_atomic(dest / MANIFEST, merged)
        rows = finish(dest, merged)
    return conclude(rows, dest, f"Merged {len(sources)} batch folders: {len(rows)} submissions.")


def check_mergeable(sources: Sequence[Path], manifests: Sequence[dict]) -> None:
    """Same rubric and grader everywhere, no submission twice, and every shard of N present once."""
    first = manifests[0]
    for source, manifest in zip(sources, manifests):
        checked = (
            ("rubric_sha256", "rubric"),
            ("assignment_sha256", "reference, catalog or template"),
            ("grader_version", "grader version"),
            ("code_sha256", "grader code"),
        )
        for key, what in checked:
            if manifest.get(key) != first.get(key):
                raise BatchError(f"{source}: graded with another {what} than {sources[0]}; regrade it to merge")
    seen: dict[str, Path] = {}
    for source, manifest in zip(sources, manifests):
        for item in manifest["submissions"]:
            if item["id"] in seen:
                raise BatchError(f"{source}: submission {item['id']} is also in {seen[item['id']]}")
            seen[item["id"]] = source
    shards = [m["shard"] for m in manifests if m["shard"] is not None]
    if shards:
        counts = {s["count"] for s in shards}
        if len(counts) > 1 or len(shards) != len(manifests):
            raise BatchError("these folders are not shards of one split: give the folders of --shard 1/N to N/N")
        (count,) = counts
        indices = sorted(s["index"] for s in shards)
        absent = sorted(set(range(1, count + 1)) - set(indices))
        if absent:
            listed = ", ".join(f"{k}/{count}" for k in absent)
            raise BatchError(f"shard(s) {listed} missing: pass the -o folder of every shard")
        if len(indices) != len(set(indices)):
            raise BatchError("a shard is given twice")


def run_batch_command(argv: Sequence[str]) -> int:
    """``grade batch ...`` and ``grade batch merge ...``; GraderErrors go to the CLI (exit 2)."""
    argv = list(argv)
    try:
        if argv and argv[0] == "merge" and not Path("merge").exists():
            return run_merge(argv[1:])
        return run_batch(argv)
    except KeyboardInterrupt:
        print("\ninterrupted: finished reports are kept; rerun the same command to finish the batch", file=sys.stderr)
        return 130
