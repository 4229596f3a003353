"""The sandbox session: one submission's children, from the first start to the last kill.

The sandbox package is the only code that starts or kills sandboxed processes. A
submission runs in a child Python process (``grader/untrusted/child.py``) that the parent
feeds inputs and reads float64 arrays from, under limits it cannot lift:

* always: its own session, RLIMIT_AS / CPU / FSIZE / NOFILE / CORE, a wall clock per
  call and one for the whole submission (``budget.py``: cases left when it is spent,
  or of a function that killed its child the same way twice, are not run, saying
  why), stdout and stderr captured to a capped file per child, a private working
  folder, and SIGKILL when the process that forked it dies;
* on Linux x86-64 and arm64, as any user: a seccomp filter that refuses sockets,
  leaving its process group (``setsid``, ``setpgid``), signalling any process but its
  own (asynchronously too), tracing, new namespaces and io_uring. So even on a
  student's laptop there is no network, no process of the grader can be killed, and
  no process of the submission outlives the run;
* as root (Gradescope, CI, an instructor's container): private mount, network and IPC
  namespaces in which the child's whole filesystem is a minimal read-only tree (the
  Python installation, a few devices, fresh /tmp, /var/tmp and /dev/shm, a /proc that
  shows only its own processes): the grader's files, the rubric, the reference, the
  repository and the report's folder are not there at all. Then a drop to an
  unprivileged uid of its own, one per submission (no supplementary groups,
  no_new_privs, RLIMIT_NPROC), and every process of that uid is killed whenever a
  child is replaced or the sandbox closes, ``setsid`` daemons included. The memory of
  all its processes together is bounded by a cgroup of its own (``cgroup.py``), or
  else by RLIMIT_NPROC x RLIMIT_AS; ``Protections.memory_bound`` says which.

Which mechanisms a child gets is planned in ``protection.py``; how the child puts
them on itself is ``grader/untrusted/confine.py`` (and the filter ``seccomp.py``);
starting one child is ``spawn.py``. This module runs the children's life: start one
(``startup.py``: again without a mechanism that failed on this machine, saying why in
``Protections``; or ahead of the first call, ``begin``), call into it, read its
output, restart it after a fault, and kill it and everything it started. What it returns are codes and facts
(``outcomes.CallOutcome``, read off the child's replies by ``messages.py``);
``grader/grading/feedback.py`` words them.

Children are forked by a zygote when possible (``grader/untrusted/zygote.py``, spoken
to by ``zygote_client.py``: Python and numpy load once per grader process, not once per
child) and spawned directly otherwise (``processes.py``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import ProtocolError
from grader.sandbox import messages, wire
from grader.sandbox.budget import Budget
from grader.sandbox.cgroup import bound_memory, group_name
from grader.sandbox.handoff import Handoff
from grader.sandbox.host import SandboxHost
from grader.sandbox.outcomes import CallOutcome, CallStatus, ImportOutcome, Limits, Protections
from grader.sandbox.processes import ChildProcess, Transcript
from grader.sandbox.protection import (
    default_hidden_paths,
    hidden_in_minimal_root,
    plan_protections,
)
from grader.sandbox.startup import ChildStartup

__all__ = ["CallOutcome", "CallStatus", "ImportOutcome", "Limits", "Protections", "Sandbox", "SandboxHost"]

if TYPE_CHECKING:  # arrays arrive from the caller: this module itself never needs numpy loaded
    import numpy as np


# -- the sandbox -------------------------------------------------------------------------


class Sandbox(ChildStartup):
    """One submission's child process(es): start, call, restart after a fault, close.

    Use as a context manager. ``call`` never raises for anything the submission does;
    it returns a ``CallOutcome``: codes and facts, which ``grading/feedback.py`` words.
    After a timeout, crash or protocol fault the child is killed and the next call
    starts a fresh one (re-importing the submission).
    """

    def __init__(
        self,
        source: bytes,
        filename: str,
        limits: Limits,
        hidden_paths: Sequence[Path] = (),
        forbidden_imports: Sequence[str] = (),
        expected_calls: int = 1,
        protections: Protections | None = None,
        *,
        host: SandboxHost,
    ) -> None:
        self.host = host
        self.source = source
        self.source_lines = source.decode("utf-8", "replace").splitlines()
        self.filename = filename
        self.limits = limits
        self.hidden_paths = (*hidden_paths, *default_hidden_paths())
        self.forbidden = list(forbidden_imports)
        self.expected_calls = max(1, expected_calls)
        self.protections = protections or plan_protections(self.hidden_paths, host.failed_mechanisms)
        self.private = Path(tempfile.mkdtemp(prefix="grader-"))
        self.transcript = Transcript(self.private)
        self.proc: ChildProcess | None = None
        self.reader: wire.FrameReader | None = None
        self.writer_fd: int | None = None
        self.import_outcome: ImportOutcome | None = None
        self.handoff: Handoff | None = None  # a child begin() started, until the first call takes it over
        self.starts = 0
        self.scratch: Path | None = None
        self._covers: tuple[str, ...] = ()
        self._uid = host.next_uid()  # one per submission (host.py)
        self.budget = Budget(limits.submission_seconds)
        self.opened: float | None = time.monotonic()  # until the first call (``call`` credits the time between)
        self.cgroup, bound = bound_memory(group_name(self._uid), limits, self.uid is not None, host.failed_mechanisms)
        self.protections = replace(self.protections, memory_bound=bound)
        self._configure()

    @property
    def uid(self) -> int | None:
        return self._uid if self.protections.privilege_drop else None

    def _configure(self) -> None:
        """Working folder for the current protections: /tmp when it is private, else a folder of its own."""
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None
        if self.protections.minimal_filesystem or "/tmp" in self.protections.private_tmp:
            self.workdir = "/tmp"
        else:
            # cwd, HOME and TMPDIR of the child: its own folder, removed in close().
            self.scratch = Path(tempfile.mkdtemp(prefix="grader-work-"))
            if self.uid is not None:
                os.chown(self.scratch, self.uid, self.uid)
            self.workdir = str(self.scratch)
        if self.protections.minimal_filesystem:
            (self.private / "root").mkdir(exist_ok=True)
            self._covers = hidden_in_minimal_root(self.hidden_paths)[1]

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill every process of the submission and remove the private folders."""
        self._stop_child()
        if self.cgroup is not None:
            self.cgroup.close()
        self.transcript.close_capture()
        shutil.rmtree(self.private, ignore_errors=True)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _stop_child(self) -> None:
        """Kill the child's group, then every process of the sandbox uid (``setsid`` daemons included)."""
        if self.proc is not None:
            self.proc.kill()
        if self.uid is not None:
            self.host.sweep_if_needed(self.uid)
        for fd in (self.writer_fd, self.reader.fd if self.reader else None):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.handoff is not None:
            os.close(self.handoff.launch.report_fd)
            self.handoff = None
        self.transcript.close_capture()
        self.proc, self.reader, self.writer_fd = None, None, None

    # -- calls -----------------------------------------------------------------------

    def shown_output(self, limit: int) -> str:
        """What the submission printed before its first hidden call, safe to print (``Transcript.shown``)."""
        return wire.clean_text(self.transcript.shown(limit).decode("utf-8", "replace"), limit)

    def call(
        self,
        function: str,
        args: Sequence[tuple[str, np.ndarray | dict | float | str]],
        expected_shape: tuple[int, ...],
        hidden: bool,
        plan: Mapping | None = None,
        setup_steps: int = 0,
        outputs: int = 0,
        account: str | None = None,
    ) -> CallOutcome:
        """Call ``function`` on the arguments in the child; every fault comes back as data.

        ``args`` are arrays and hyperparameters by name; ``plan`` the rest of the request
        (``CallPlan.request``: setup calls, the slot to send back), with ``setup_steps`` steps
        and ``outputs`` values to send back (0: one). ``account``: whose deaths the budget
        counts (a call chaining several functions is not the graded function's alone).
        """
        account = account or function
        if self.opened is not None:  # the budget runs from the first call: the caller's work before it is its own
            self.budget.extend(time.monotonic() - self.opened)
            self.opened = None
        if hidden:
            # A child begun ahead of this call imported before it: as if this call had started
            # it, none of that import's output is shown.
            self.transcript.hide_at(self.handoff.mark if self.handoff is not None else None)
        refused = self.budget.refusal(account)
        if refused is not None and (self.import_outcome is None or self.import_outcome.ok):
            return refused  # before a restart: that is what costs
        imported = self.ensure_started()
        if not imported.ok:
            return imported.failure
        if function not in imported.names:
            return CallOutcome(CallStatus.MISSING, names=imported.names)
        call_id = wire.new_call_id()
        request = messages.call_request(call_id, function, args, plan)
        started = time.monotonic()
        deadline = self.budget.deadline(started + self.limits.time_limit)
        keep = wire.kept_elements(expected_shape)
        shape, value, parts = None, None, ()
        try:
            self.reader.drain()
            wire.write_all(self.writer_fd, request, deadline)
            header = self.reader.read_reply_header(call_id, deadline, self.limits.memory_bytes)
            reply = wire.parse_reply(header, call_id, tuple(name for name, _ in args), setup_steps, outputs)
            parts = messages.parse_parts(header, outputs, reply.status)
            if reply.status == "ok":
                shape, value = self.reader.read_array(reply.length, keep, deadline, max_skip=self.limits.memory_bytes)
                if parts and shape != tuple(header["shape"]):
                    raise ProtocolError("the payload's size is not what the output shapes in 'parts' add up to")
        except wire.Timeout:
            self._stop_child()
            if self.budget.cut(deadline):
                return self.budget.spent()
            return CallOutcome(CallStatus.TIMEOUT, limit=self.limits.time_limit, elapsed=time.monotonic() - started)
        except (EOFError, OSError):
            return self.budget.record(account, self._fault_after_death(deadline, "call"))
        except ProtocolError as err:
            self._stop_child()
            return CallOutcome(CallStatus.PROTOCOL, detail=str(err))
        self.budget.answered(account)
        elapsed = time.monotonic() - started
        if self.transcript.full(self.limits.output_bytes):
            self._stop_child()  # a child that ignored SIGXFSZ could print nothing more: start afresh
        return messages.call_outcome(
            reply, value, shape, source_lines=self.source_lines, elapsed=elapsed, names=imported.names, parts=parts
        )
