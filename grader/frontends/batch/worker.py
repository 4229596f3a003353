"""A batch worker process: load the rubric and build its visible cases once, then grade one task at a time.

Workers are forked from a ``forkserver`` that imported this module (and with it the
grader and numpy) once. A worker never runs student code itself: ``grade_submission``
runs each submission in a sandboxed child of its own, under the worker's ``SandboxHost``.

A worker stops, unwinding its sandbox (which kills the submission's processes), when:

* the main process sends ``None`` (a polite stop) or SIGTERM (``Worker.stop``);
* the main process is gone, however it died (``kill -9`` included). The forkserver
  cannot tell: every worker holds a copy of its "alive" pipe, so it outlives the main
  process as long as any worker does, and the parent-death signal the worker asks for
  only fires when the forkserver exits. So each worker watches its own pipe to the
  main process, which only the main process holds the other end of: when the kernel
  closes that end, the worker stops grading, and it never writes a report after.
"""

from __future__ import annotations

import ctypes
import multiprocessing.connection
import os
import select
import signal
import threading
import time

from grader.assignment.rubric import Rubric, load_rubric
from grader.errors import GraderError, SubmissionFileError
from grader.frontends.batch.outdir import write_checked_report
from grader.frontends.batch.tasks import Outcome, Task, failure, outcome_of
from grader.grading.pipeline import grade_submission
from grader.grading.preparation import Preparation, prepare
from grader.grading.report import NotGraded, report_to_dict
from grader.sandbox.host import SandboxHost

PR_SET_PDEATHSIG = 1
HANG_UP = select.POLLRDHUP | select.POLLHUP | select.POLLERR | select.POLLNVAL


class WorkerStop(BaseException):
    """Raised in a worker on SIGTERM, so ``with Sandbox`` blocks unwind and kill their children.

    A BaseException, so no ``except Exception`` on the way can swallow it.
    """


class MainWatch:
    """Notices that the batch's main process is gone, and then stops the task under way.

    A thread polls the worker's end of its pipe for a hang-up only (never reading it, so
    it does not compete with the worker's own ``recv``). When the main process goes,
    ``gone`` is set and, if a task is running, the worker sends itself SIGTERM, which
    raises ``WorkerStop`` in the grading thread wherever it is waiting.
    """

    def __init__(self, conn: multiprocessing.connection.Connection) -> None:
        self.gone = threading.Event()
        self.busy = False
        self._thread = threading.Thread(target=self._watch, args=(conn.fileno(),), daemon=True, name="main-watch")
        self._thread.start()

    def _watch(self, fd: int) -> None:  # pragma: no cover - runs in the worker
        poller = select.poll()
        poller.register(fd, select.POLLRDHUP)  # not POLLIN: the next task arriving is no reason to wake
        while not any(events & HANG_UP for _, events in poller.poll()):
            pass
        self.gone.set()
        if self.busy:
            os.kill(os.getpid(), signal.SIGTERM)

    def check(self) -> None:
        """Raise WorkerStop if the main process is gone (a report now would be written for nobody)."""
        if self.gone.is_set():
            raise WorkerStop


def grade_task(
    task: Task,
    rubric: Rubric,
    host: SandboxHost,
    watch: MainWatch | None = None,
    preparation: Preparation | None = None,
) -> Outcome:
    """Grade one submission and write its report; never raises for anything about the submission.

    ``preparation``: the rubric's modules and visible cases, made once per worker (``prepare_once``).
    """
    started = time.monotonic()
    submission = task.submission
    try:
        if submission.path is None:
            raise SubmissionFileError(submission.problem)
        report = grade_submission(
            submission.path, rubric, metadata=submission.metadata(), host=host, preparation=preparation
        )
        document = report_to_dict(report)
    except SubmissionFileError as err:  # named by its place in the class, so shards on other machines agree
        message = str(err).replace(str(submission.path), submission.source) if submission.path else str(err)
        report = failure(task, rubric, NotGraded.UNGRADABLE.value, message)
        document = report_to_dict(report)
    except Exception as err:  # noqa: BLE001 - a grader fault on one submission must not stop the class
        report = failure(
            task,
            rubric,
            NotGraded.GRADER_ERROR.value,
            f"the grader failed on this submission ({type(err).__name__}: {err}); this is a fault of the "
            f"grader or its setup, not the student's: rerun the batch to retry, or run `grade` on the file alone",
        )
        document = report_to_dict(report)
    if watch is not None:
        watch.check()
    write_checked_report(document, task.report, report)
    return outcome_of(document, submission.id, time.monotonic() - started)


def prepare_once(rubric: Rubric) -> Preparation | None:
    """The rubric's modules and visible cases for every grade of this worker; None if they fail to build.

    Then each grade prepares its own and fails as it would have (a report that names
    the grader's fault, per submission), so one broken rubric does not stop the worker.
    """
    try:
        return prepare(rubric)
    except Exception:  # noqa: BLE001 - each grade meets the same fault again and reports it
        return None


def _stop(signum, frame):  # pragma: no cover - runs in the worker
    raise WorkerStop


def die_with_forkserver() -> None:
    """Ask Linux for SIGTERM when the forkserver (our parent) exits, as it does once the batch is over."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def run_worker(conn: multiprocessing.connection.Connection, rubric_path: str) -> None:  # pragma: no cover - worker
    """A worker's life: load the rubric once, then grade tasks until told to stop or the main process goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides what Ctrl-C means
    signal.signal(signal.SIGTERM, _stop)
    die_with_forkserver()
    watch = MainWatch(conn)
    host = SandboxHost()  # this worker's zygote, clean uids and refused mechanisms
    try:
        host.start_zygote()  # it boots while the rubric loads and the visible cases are built
        rubric = load_rubric(rubric_path)
        preparation = prepare_once(rubric)
        while True:
            task = conn.recv()
            if task is None:
                return
            watch.busy = True
            watch.check()  # gone between sending the task and our reading it
            outcome = grade_task(task, rubric, host, watch, preparation)
            watch.busy = False
            conn.send(outcome)
    except (WorkerStop, EOFError, BrokenPipeError):
        return
    except GraderError as err:
        conn.send(("failed", str(err)))
    finally:
        watch.busy = False
        host.close()
