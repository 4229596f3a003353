"""The values a batch passes around: which slice of the class, one submission to grade, how it ended.

A ``Task`` goes from the main process to a worker and an ``Outcome`` comes back (both
are pickled over the worker's pipe, so they hold plain data). ``failure_report`` is the
report of a task that ended without a grade; it is built by ``ungraded_report``, the
same code as every other report.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from grader.assignment.rubric import Rubric
from grader.errors import BatchError
from grader.frontends.batch.gradebook import SubmissionStatus, format_points, row_from_report
from grader.frontends.batch.roster import Submission
from grader.grading.report import NotGraded, Report, report_to_dict, ungraded_report


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


def parse_shard(text: str) -> Shard:
    """``--shard K/N`` as a Shard; a BatchError that shows the form otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not match or not 1 <= int(match[1]) <= int(match[2]):
        raise BatchError(f"--shard {text}: expected K/N with 1 <= K <= N, e.g. --shard 3/8")
    return Shard(int(match[1]), int(match[2]))


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


def outcome_of(document: dict, submission_id: str, seconds: float) -> Outcome:
    """The Outcome a report document amounts to, read the way the gradebook reads it."""
    row = row_from_report(document, "")
    return Outcome(submission_id, row.status, row.total, row.max_score, seconds)


def failure(task: Task, rubric: Rubric, flag: str, message: str) -> Report:
    """The Report of a task that could not be graded: ``flag`` is a ``NotGraded`` value.

    The path is the file's when one was picked, else the entry's place in the class;
    the submission's metadata (who, where) is kept beside the reason.
    """
    submission = task.submission
    path = str(submission.path) if submission.path else submission.source
    return ungraded_report(rubric, path, task.sha256, NotGraded(flag), message, submission.metadata())


def failure_report(task: Task, rubric: Rubric, flag: str, message: str) -> dict:
    """The report document of ``failure``."""
    return report_to_dict(failure(task, rubric, flag, message))
