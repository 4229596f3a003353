"""What the sandbox reports, as data: how a call ended, what an import found, which isolation held.

These values flow from the sandbox to the grading core (``checks``, ``report``), which
therefore never imports process code. They hold codes and facts (a status, a signal
name, a line number, a problem kind), not sentences: ``grader/grading/feedback.py``
words them, applying the rule of what a hidden case may say.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # arrays arrive from the caller: `grade` imports this module before numpy
    import numpy as np


class CallStatus(enum.Enum):
    """How one call into the submission ended, as the parent observed it."""

    OK = "ok"
    EXCEPTION = "exception"
    NOT_IMPLEMENTED = "not_implemented"
    MISSING = "missing"
    BAD_RETURN = "bad_return"
    TIMEOUT = "timeout"
    MEMORY = "memory"
    CRASHED = "crashed"
    EXITED = "exited"
    IMPORT_ERROR = "import_error"
    PROTOCOL = "protocol"
    NOT_RUN = "not_run"  # the submission's budget was spent, or the child kept dying the same way


@dataclass(frozen=True)
class Limits:
    time_limit: float
    import_time_limit: float
    memory_bytes: int
    output_bytes: int
    processes: int
    open_files: int = 64
    submission_seconds: float = 60.0  # every import and call of the submission together
    submission_memory_bytes: int = 2 << 30  # all of its processes together


@dataclass(frozen=True)
class MemoryBound:
    """What bounded the memory of the submission's processes taken together, for the report.

    ``mechanism``: ``cgroup v2`` or ``cgroup v1`` (a memory limit on the group of its
    processes), ``process limit`` (RLIMIT_NPROC x RLIMIT_AS) or ``per process`` (only
    RLIMIT_AS: their number is not bounded); ``reason`` says why a stronger one was not used.
    """

    mechanism: str
    total_bytes: int | None
    processes: int | None
    reason: str = ""

    def as_dict(self) -> dict:
        total = None if self.total_bytes is None else self.total_bytes // (1024 * 1024)
        return {"mechanism": self.mechanism, "total_mb": total, "processes": self.processes, "reason": self.reason}


@dataclass(frozen=True)
class CallOutcome:
    """What a call produced: a float64 array (status OK) or a fault described as data."""

    status: CallStatus
    value: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    message: str = ""  # the submission's own text (an exception's, sys.exit's argument): never for a hidden case
    error_type: str | None = None  # the exception's class name as the child reported it, or the signal's name
    where: dict | None = None
    returned: str | None = None
    mutated: tuple[str, ...] = ()
    elapsed: float = 0.0
    phase: str = "call"  # "import" when the fault happened while the file was imported
    problem: str | None = None  # a bad return's kind (protocol.BAD_RETURN_PROBLEMS)
    detail: str = ""  # a fact for a visible case: a bad return's dtype or type, a malformed reply's defect
    exit_code: int | None = None  # the process's exit code, when it exited on its own
    limit: float | None = None  # the time limit a TIMEOUT ran into, in seconds
    names: tuple[str, ...] = ()  # for MISSING: the functions the file does define
    setup: int | None = None  # the fault happened in this setup step of the call plan, not the graded call
    parts: tuple[tuple[int, ...], ...] = ()  # several outputs: each one's shape (``value`` joins them, flat)
    output: int | None = None  # several outputs: the one a bad return is about


@dataclass(frozen=True)
class ImportOutcome:
    ok: bool
    names: tuple[str, ...] = ()
    failure: CallOutcome | None = None
    elapsed: float = 0.0
    after_hidden: bool = False  # the import ran after a hidden input was sent (a re-import): say nothing it chose


@dataclass(frozen=True)
class Protections:
    """Which isolation was in force, for the report and the one-line warning.

    The mechanism flags (``namespaces``, ``minimal_filesystem``, ``syscall_filter``,
    ``privilege_drop``) also tell the sandbox what to set up; the others say what
    they amount to.
    """

    privilege_drop: bool
    network_cut: bool
    hidden_paths: tuple[str, ...]
    kill_all_processes: bool
    private_tmp: tuple[str, ...] = ()
    rlimits: bool = True
    notes: tuple[str, ...] = ()
    namespaces: bool = False
    minimal_filesystem: bool = False
    syscall_filter: bool = False
    memory_bound: MemoryBound | None = None

    @property
    def reference_hidden(self) -> bool:
        return bool(self.hidden_paths) or self.minimal_filesystem

    def as_dict(self) -> dict:
        return {
            "privilege_drop": self.privilege_drop,
            "network_cut": self.network_cut,
            "reference_hidden": self.reference_hidden,
            "kill_all_processes": self.kill_all_processes,
            "private_tmp": list(self.private_tmp),
            "resource_limits": self.rlimits,
            "minimal_filesystem": self.minimal_filesystem,
            "syscall_filter": self.syscall_filter,
            "notes": list(self.notes),
            **({} if self.memory_bound is None else {"memory_bound": self.memory_bound.as_dict()}),
        }

    @property
    def weaker_than_possible(self) -> bool:
        return bool(self.notes) or not (self.privilege_drop and self.network_cut and self.reference_hidden)
