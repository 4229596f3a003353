"""A sandbox's child start-up: spawn one (again without a mechanism that failed), import the submission.

``Sandbox`` (``session.py``) runs a submission's children; this part of it starts
one: its confinement planned from the protections (``spawn.plan_confinement``), a fork
by the zygote or a direct spawn (``spawn.py``), a retry without a mechanism that broke
the start (saying why in ``Protections``), then the load request and the import's
verdict under its own limit and the submission's budget. ``begin`` does the same ahead
of the first call, so the child confines itself and imports while the parent builds
the cases; the rule that keeps that import's verdict fair is in ``handoff.py``.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from grader.errors import ProtocolError, SandboxError
from grader.sandbox import messages, wire
from grader.sandbox.budget import Budget
from grader.sandbox.cgroup import SubmissionCgroup, fallback_bound
from grader.sandbox.handoff import Handoff, queue
from grader.sandbox.host import SandboxHost
from grader.sandbox.outcomes import CallOutcome, CallStatus, ImportOutcome, Limits, Protections
from grader.sandbox.processes import ChildProcess, Transcript
from grader.sandbox.protection import MechanismFailed, without
from grader.sandbox.spawn import await_started, launch_child, plan_confinement, start_child
from grader.sandbox.zygote_client import STARTUP_SECONDS, Zygote
from grader.untrusted.confine import Confinement


class ChildStartup:
    """The start-up half of ``session.Sandbox``: what it keeps about a child and how it starts one.

    Its ``uid``, ``_configure`` (the working folder) and ``_stop_child`` are the Sandbox's.
    """

    host: SandboxHost
    source: bytes
    source_lines: list[str]
    filename: str
    forbidden: list[str]
    limits: Limits
    hidden_paths: tuple[Path, ...]
    expected_calls: int
    protections: Protections
    private: Path
    workdir: str
    transcript: Transcript
    budget: Budget
    cgroup: SubmissionCgroup | None
    proc: ChildProcess | None
    reader: wire.FrameReader | None
    writer_fd: int | None
    import_outcome: ImportOutcome | None
    handoff: Handoff | None
    starts: int
    _covers: tuple[str, ...]

    def _confinement(self, zygote: Zygote | None) -> Confinement:
        """What the next child does to itself before the submission runs (``spawn.plan_confinement``)."""
        return plan_confinement(
            self.protections,
            self.limits,
            expected_calls=self.expected_calls,
            workdir=self.workdir,
            root=str(self.private / "root"),
            covers=self._covers,
            uid=self.uid,
            cgroup=self.cgroup,
            parent_pid=zygote.pid if zygote is not None else os.getpid(),
        )

    def _plan_child(self) -> tuple[Zygote | None, Confinement]:
        """The zygote to fork the next child (None: spawn it) and its confinement, its uid swept first.

        The zygote is looked up after the sweep, which goes through it and may find it
        gone: a confinement names the parent it must find (the zygote, or this process).
        The uid counts as in use from here, since a start that fails may leave a process.
        """
        if self.uid is not None:
            self.host.sweep_if_needed(self.uid)
        zygote = self.host.running_zygote()
        confinement = self._confinement(zygote)
        if self.uid is not None:
            self.host.mark_in_use(self.uid)
        return zygote, confinement

    def _spawn(self) -> None:
        """Start a child and wait for its "started" frame; MechanismFailed if isolation broke it."""
        zygote, confinement = self._plan_child()
        try:
            self.proc, self.reader, self.writer_fd = start_child(confinement, zygote, self.transcript, self.protections)
        except BaseException:
            self._stop_child()  # the failed child is gone; its uid may still hold a process
            raise

    def _do_without(self, failed: MechanismFailed) -> None:
        """Plan the next child without the mechanism that failed, saying why; SandboxError if none is left."""
        self.host.remember_failure(failed.mechanism, failed.reason)
        if failed.mechanism == "memory_cgroup" and self.cgroup is not None:
            self.cgroup.close()
            self.cgroup = None
            bound = fallback_bound(self.limits, self.uid is not None, f"cannot join it: {failed.reason}")
            self.protections = replace(self.protections, memory_bound=bound)
            return
        weaker = without(self.protections, failed.mechanism, failed.reason, self.hidden_paths)
        if weaker == self.protections:
            raise SandboxError(f"cannot start the sandboxed child: {failed}") from failed
        self.protections = weaker
        self._configure()

    def _load_request(self) -> bytes:
        return messages.load_request(self.filename, self.source, self.forbidden)

    def _start_child(self) -> ImportOutcome:
        self.starts += 1
        for _ in range(5):
            try:
                self._spawn()
                break
            except MechanismFailed as failed:
                self._do_without(failed)
        else:
            raise SandboxError("cannot start the sandboxed child: every isolation mechanism failed")
        started = time.monotonic()
        deadline = self.budget.deadline(started + self.limits.import_time_limit)
        return self._await_import(self._load_request(), started, deadline)[0]

    def _await_import(self, request: bytes, started: float, deadline: float) -> tuple[ImportOutcome, float | None]:
        """Send (the rest of) the load request and read the import's reply: the outcome, and when
        the import was seen to end (None: it ran out of time)."""
        timeout = CallOutcome(CallStatus.TIMEOUT, phase="import", limit=self.limits.import_time_limit)
        try:
            wire.write_all(self.writer_fd, request, deadline)
            reply = self.reader.read_header(deadline)
            names = wire.parse_names(reply.get("names")) if reply.get("status") == "ready" else None
        except wire.Timeout:
            self._stop_child()
            failure = self.budget.spent() if self.budget.cut(deadline) else timeout
            return ImportOutcome(False, failure=failure, after_hidden=self.transcript.hidden_seen), None
        except (EOFError, OSError, ProtocolError):
            ended = time.monotonic()
            failure = self._fault_after_death(deadline, "import")
            return ImportOutcome(False, failure=failure, after_hidden=self.transcript.hidden_seen), ended
        ended = time.monotonic()
        if names is not None:
            return ImportOutcome(True, names=names, elapsed=ended - started), ended
        self._stop_child()
        failure = messages.import_failure(reply, self.source_lines)
        return ImportOutcome(
            False, failure=failure, elapsed=ended - started, after_hidden=self.transcript.hidden_seen
        ), ended

    # -- a child started ahead of its first call (handoff.py) ------------------------

    def begin(self) -> bool:
        """Start the child and send it the submission now, to confine itself and import while the
        caller builds its cases; the first call takes it over (``ensure_started``).

        Does nothing (False) where that would make the caller wait instead: while the
        zygote boots (the first grade of a process), or once a child has run. A start
        that fails is left to the first call's ordinary start (without the mechanism
        that failed, as after any failed start).
        """
        if self.starts or self.proc is not None or self.handoff is not None:
            return False
        booting = self.host.running_zygote()
        if booting is not None and not booting.booted():
            return False
        zygote, confinement = self._plan_child()
        mark = len(self.transcript.data)
        try:
            launch = launch_child(confinement, zygote, self.transcript, self.protections)
        except MechanismFailed as failed:  # a direct spawn confines itself before it returns
            self._stop_child()
            self._do_without(failed)
            return False
        except SandboxError:
            self._stop_child()
            return False
        self.proc, self.reader, self.writer_fd = launch.proc, launch.reader, launch.writer_fd
        unsent = queue(launch.writer_fd, self._load_request())
        sent = time.monotonic()
        sure_by = self.budget.deadline(sent + self.limits.import_time_limit)
        self.handoff = Handoff(launch, sent, unsent, mark, sure_by)
        return True

    def _take_over(self) -> ImportOutcome:
        """The first call's start of a child ``begin`` started: its "started" frame, then the import's verdict."""
        handoff, self.handoff = self.handoff, None
        self.starts += 1
        sure_by = handoff.sure_by
        # However long the caller was away, a "started" frame already waiting is read: the
        # start-up limit is the child's, not the caller's. The child may have imported the
        # submission since, so a failed start quotes none of its output.
        deadline = max(handoff.sent + STARTUP_SECONDS, time.monotonic() + 1.0)
        try:
            await_started(handoff.launch, self.transcript, self.protections, deadline, quote_output=False)
        except (MechanismFailed, SandboxError) as err:
            self.proc, self.reader, self.writer_fd = None, None, None  # killed and closed by await_started
            self._stop_child()
            if isinstance(err, SandboxError):
                raise
            self._do_without(err)
            return self._start_again()
        started = time.monotonic()
        deadline = self.budget.deadline(started + self.limits.import_time_limit)
        outcome, ended = self._await_import(handoff.unsent, started, deadline)
        if ended is None or ended <= sure_by:
            return outcome
        self._stop_child()
        del self.transcript.data[handoff.mark :]  # printed again by the import that counts
        self.budget.extend(time.monotonic() - started)  # that wait is not the submission's twice
        return self._start_again()

    def _start_again(self) -> ImportOutcome:
        self.starts -= 1  # the child begin started does not count as one
        return self._start_child()

    def _fault_after_death(self, deadline: float, phase: str) -> CallOutcome:
        """The child's pipe closed: find how it ended (signal, exit code) and clean up."""
        proc = self.proc
        code = None
        if proc is not None:
            code = proc.wait(max(0.5, min(2.0, deadline - time.monotonic())))
        self._stop_child()
        return messages.death(code, phase)

    def ensure_started(self) -> ImportOutcome:
        """Start the child if none is running; an import failure is final (it is deterministic)."""
        if self.import_outcome is not None and not self.import_outcome.ok:
            return self.import_outcome
        if self.handoff is not None:
            self.import_outcome = self._take_over()
            return self.import_outcome
        if self.proc is None or self.proc.poll() is not None:
            self._stop_child()
            self.import_outcome = self._start_child()
        return self.import_outcome
