"""The main process's side of the workers: hand out tasks, watch for deaths and overruns, collect outcomes.

The main process never grades. It starts up to ``jobs`` workers (``worker.py``) from a
``forkserver``, gives each one task at a time, and makes sure every task ends with a
report whatever befalls its worker: a worker that dies, or runs past every limit the
sandbox could impose (the watchdog), is stopped, its submission gets a
``grader_error`` report (unless it wrote its report just before dying), and a fresh
worker takes over.
"""

from __future__ import annotations

import math
import multiprocessing
import multiprocessing.connection
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

from grader.assignment.rubric import Rubric
from grader.errors import BatchError
from grader.frontends.batch.outdir import current_report, write_checked_report
from grader.frontends.batch.tasks import Outcome, Task, failure, outcome_of
from grader.frontends.batch.worker import run_worker
from grader.grading.report import NotGraded, report_to_dict

STOP_GRACE_SECONDS = 5.0


def watchdog_seconds(rubric: Rubric) -> float:
    """How long one submission may take before its worker is presumed stuck (a grader fault).

    The sandbox bounds a submission: every call may time out and every restart may use
    the whole import limit. Twice that, plus a minute, leaves room for a busy machine.
    """
    s = rubric.settings
    calls = (s.visible_cases + s.hidden_cases) * len(rubric.equations)
    return 60.0 + 2.0 * (s.import_time_limit + calls * (s.time_limit + s.import_time_limit))


def describe_exit(code: int | None) -> str:
    """``killed by SIGKILL`` or ``exit code 3``, for a worker's exit code as multiprocessing gives it."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def pool_context():
    """A forkserver that has imported the worker (grader, numpy) once, so each worker starts warm."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["grader.frontends.batch.worker"])
    return context


class Worker:
    """The main process's handle on one grader worker."""

    def __init__(self, context, rubric_path: Path) -> None:
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=run_worker, args=(child_end, str(rubric_path)), name="grade-batch-worker")
        self.process.daemon = True
        self.process.start()
        child_end.close()  # only this process holds our end: the worker sees it close when we die
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

    def receive(self) -> object:
        """The worker's message, or None when it sent none (it died)."""
        try:
            return self.conn.recv() if self.conn.poll() else None
        except (EOFError, OSError):
            return None

    def stop(self) -> None:
        """SIGTERM first (the worker unwinds and its sandbox kills the submission's processes), then SIGKILL."""
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(STOP_GRACE_SECONDS)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class Pool:
    """Up to ``jobs`` workers grading ``tasks``; ``on_done`` hears of each task as it ends."""

    def __init__(self, tasks: Sequence[Task], jobs: int, rubric: Rubric, on_done: Callable[[Outcome], None]) -> None:
        self.context = pool_context()
        self.rubric = rubric
        self.budget = watchdog_seconds(rubric)
        self.size = min(jobs, len(tasks))
        self.pending = deque(tasks)
        self.workers: list[Worker] = []
        self.on_done = on_done
        self.idle_deaths = 0

    def run(self) -> None:
        try:
            while self.pending or any(w.task for w in self.workers):
                self.hand_out()
                self.collect()
        finally:
            self.close()

    def hand_out(self) -> None:
        """Start workers up to the pool's size and give every idle one the next task."""
        while self.pending and len(self.workers) < self.size:
            self.workers.append(Worker(self.context, self.rubric.path))
        for worker in list(self.workers):
            if worker.task is None and not worker.process.is_alive():
                self.idle_deaths += 1  # died between tasks: nothing to rescue, but not forever
                if self.idle_deaths > 2 * self.size + 2:
                    code = describe_exit(worker.process.exitcode)
                    raise BatchError(f"grader workers keep dying while idle ({code}); is the machine out of memory?")
                self.retire(worker)
            elif worker.task is None and self.pending and worker.assign(self.pending[0], self.budget):
                self.pending.popleft()

    def collect(self) -> None:
        """Wait (at most a second) for busy workers to finish, die or overrun, and deal with each."""
        busy = [w for w in self.workers if w.task is not None]
        if not busy:
            return
        timeout = max(0.0, min(1.0, min(w.deadline for w in busy) - time.monotonic()))
        ready = set(
            multiprocessing.connection.wait([w.conn for w in busy] + [w.process.sentinel for w in busy], timeout)
        )
        for worker in busy:
            if worker.conn in ready or worker.process.sentinel in ready:
                message = worker.receive()
                if isinstance(message, Outcome):
                    worker.task = None
                    self.on_done(message)
                elif isinstance(message, tuple) and message[:1] == ("failed",):
                    raise BatchError(f"a grader worker could not start: {message[1]}")
                else:
                    worker.process.join(STOP_GRACE_SECONDS)
                    code = describe_exit(worker.process.exitcode)
                    self.retire(worker, f"the grader worker process died while grading this submission ({code})")
            elif time.monotonic() > worker.deadline:
                why = f"grading took over {self.budget:g} s, more than the sandbox limits allow, and was stopped"
                self.retire(worker, why)

    def retire(self, worker: Worker, why: str | None = None) -> None:
        """Stop a worker; if it held a task, make sure that task still ends with a report."""
        worker.stop()
        self.workers.remove(worker)
        task, worker.task = worker.task, None
        if task is None or why is None:
            return
        document = current_report(task, self.rubric)  # it may have written the report just before dying
        if document is None:
            message = f"{why}; this is a fault of the grader or the machine, not the student's: rerun to retry"
            report = failure(task, self.rubric, NotGraded.GRADER_ERROR.value, message)
            document = report_to_dict(report)
            write_checked_report(document, task.report, report)
        self.on_done(outcome_of(document, task.submission.id, time.monotonic() - worker.started))

    def close(self) -> None:
        """A polite stop for idle workers, SIGTERM for busy ones (on an error or Ctrl-C)."""
        for worker in self.workers:
            if worker.task is None:
                try:
                    worker.conn.send(None)
                except (BrokenPipeError, OSError):
                    pass
        for worker in self.workers:
            if worker.task is None:
                worker.process.join(STOP_GRACE_SECONDS)
            worker.stop()


def run_pool(tasks: Sequence[Task], jobs: int, rubric: Rubric, on_done: Callable[[Outcome], None]) -> None:
    """Grade ``tasks`` on up to ``jobs`` workers; every task ends with a report, whatever befalls its worker."""
    if tasks:
        Pool(tasks, jobs, rubric, on_done).run()
