"""What one grader process has learned about its machine, in one object passed down.

Each entry point (``grade``, each batch worker, the Gradescope and PrairieLearn
runners) makes one ``SandboxHost`` and hands it to every ``Sandbox`` it opens. It holds
what is per process by nature, like a connection pool:

* the zygote (``zygote_client.Zygote``): started once, shared by every sandbox of
  the process, abandoned after ``ZYGOTE_RETRIES`` failures;
* the sandbox uids: each ``Sandbox`` (each submission) gets one of its own, from a
  range of ``UIDS_PER_PROCESS`` derived from this process's pid, and those known to
  have no process left (swept since their last child);
* the isolation mechanisms this machine refused, with the first reason, so later
  sandboxes plan without them instead of failing again.

Tests build a fresh one instead of resetting module globals. This module imports only
light parts of the standard library, so ``grade`` can start the zygote within
milliseconds of its own start.
"""

from __future__ import annotations

import os
import subprocess
import sys

from grader.sandbox.zygote_client import ZYGOTE_RETRIES, Zygote, ZygoteError

SANDBOX_UID_BASE = 0x60000000  # far above any real account (the range of one uid per process began at 0x5A000000)
UID_SLOT_BITS = 8  # uids per grader process: 256, reused in turn (each is swept before it is used again)
UIDS_PER_PROCESS = 1 << UID_SLOT_BITS
PID_LIMIT = 1 << 22  # Linux's largest pid_max: the whole range stays below 2**32 - 1
SANDBOX_UIDS = range(SANDBOX_UID_BASE, SANDBOX_UID_BASE + PID_LIMIT * UIDS_PER_PROCESS)


def sandbox_uid(pid: int, serial: int) -> int:
    """The uid of a grader process's ``serial``-th sandbox: no two submissions in a row share one."""
    return SANDBOX_UID_BASE + (pid << UID_SLOT_BITS) + serial % UIDS_PER_PROCESS


def grader_pid_of(uid: int) -> int:
    """The pid of the grader process a sandbox uid belongs to (``sandbox_uid``'s inverse)."""
    return (uid - SANDBOX_UID_BASE) >> UID_SLOT_BITS


class SandboxHost:
    """The zygote, the clean uids and the failed mechanisms of one grader process."""

    def __init__(self, use_zygote: bool | None = None) -> None:
        # SOCK_SEQPACKET and SCM_RIGHTS are Linux's; elsewhere every child is spawned directly.
        self.use_zygote = sys.platform.startswith("linux") if use_zygote is None else use_zygote
        self.zygote: Zygote | None = None
        self.zygote_failures = 0
        self.clean_uids: set[int] = set()
        self.failed_mechanisms: dict[str, str] = {}
        self.sandboxes = 0

    # -- the zygote ----------------------------------------------------------------

    def start_zygote(self) -> None:
        """Start this process's zygote now, if it has none: call it early, before the grader's heavy work.

        Never raises: without a zygote every child is spawned directly.
        """
        if not self.use_zygote or self.zygote_failures >= ZYGOTE_RETRIES:
            return
        if self.zygote is not None and self.zygote.usable:
            return
        try:
            self.zygote = Zygote()
        except (OSError, subprocess.SubprocessError):
            self.zygote, self.zygote_failures = None, self.zygote_failures + 1

    def running_zygote(self) -> Zygote | None:
        """This process's zygote, started if need be; None when the process does without one."""
        if not self.use_zygote:
            return None
        zygote = self.zygote
        if zygote is not None and zygote.owner == os.getpid() and not zygote.usable:
            self.zygote_failures += 1  # it failed since the last call
            self.zygote = None
        self.start_zygote()
        return self.zygote if self.zygote is not None and self.zygote.usable else None

    def close(self) -> None:
        """Stop the zygote (its children are left alone: their sandboxes kill them)."""
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None

    # -- what the machine refused ----------------------------------------------------

    def remember_failure(self, mechanism: str, reason: str) -> None:
        """Plan without ``mechanism`` from now on in this process (the first reason is the one kept)."""
        self.failed_mechanisms.setdefault(mechanism, reason)

    # -- sandbox uids --------------------------------------------------------------------

    def next_uid(self) -> int:
        """A uid for the next sandbox: one per submission, so nothing one leaves (zombies, a full
        process table) counts against the next one's limits."""
        self.sandboxes += 1
        return sandbox_uid(os.getpid(), self.sandboxes - 1)

    def sweep_uid(self, uid: int) -> None:
        """Kill every process of a sandbox uid: through the zygote (a fork of a small process) or directly."""
        zygote = self.running_zygote()
        try:
            if zygote is None:
                raise ZygoteError("no zygote")
            zygote.request({"op": "sweep", "uid": uid})
        except ZygoteError:
            kill_uid(uid)
        self.clean_uids.add(uid)

    def sweep_if_needed(self, uid: int) -> None:
        """Sweep ``uid`` unless it is known clean: a uid not seen here (a crashed grader with this pid may have left daemons) is."""
        if uid not in self.clean_uids:
            self.sweep_uid(uid)

    def mark_in_use(self, uid: int) -> None:
        """A child of ``uid`` is about to start: it needs a sweep before the uid is called clean again."""
        self.clean_uids.discard(uid)


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid``, from a helper forked from this process (``confine.kill_all_as``)."""
    from grader.untrusted.confine import kill_all_as

    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked helper
        try:
            kill_all_as(uid)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
