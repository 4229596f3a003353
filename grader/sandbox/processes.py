"""The sandbox's processes: a child spawned directly or forked by the zygote, and what it printed.

Both kinds of child look the same to ``session.Sandbox`` (``poll``, ``wait``,
``kill``). A child is started by the zygote when there is one (a fork-server that
already imported numpy, so a child costs a fork instead of an interpreter start-up)
and directly with subprocess otherwise. The zygote is an optimisation only: when it
can't start, fails a request or dies, that child is spawned directly, and after
ZYGOTE_RETRIES failures the process stops using one (``host.SandboxHost``). Either way
the child runs the same ``confine.confine``.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from grader.sandbox.zygote_client import Zygote, ZygoteError

KEEP_OUTPUT = 64 * 1024  # what is kept of the submission's output; far more than is ever shown


class SpawnedChild:
    """A child started directly (``subprocess``): this process is its parent and reaps it."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self.pid = proc.pid

    def poll(self) -> int | None:
        """The exit code (negative: the signal), or None while it runs."""
        return self.proc.poll()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        """SIGKILL its process group and reap it.

        One SIGKILL reaches every member (the kernel aborts forks in flight), and the
        group id can't be reused while the child is unreaped. Without a uid of its own,
        the seccomp filter is what keeps every process of the submission in the group.
        """
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()


class ForkedChild:
    """A child the zygote forked: the zygote is its parent, signals it and reaps it for us.

    The zygote reaps it only when asked, so its pid (its group id) can't be reused
    before ``kill`` returns. If the zygote dies, the child is init's: it is then
    killed from here by group, and its status is unknown.
    """

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """Like ``wait(0)``; a child seen alive in /proc (the usual answer, before every call) costs no request."""
        if self.returncode is None and process_state(self.pid) not in (None, "Z"):
            return None
        return self.wait(0.0)

    def wait(self, timeout: float) -> int | None:
        if self.returncode is None:
            try:
                status = self.zygote.request({"op": "poll", "pid": self.pid, "timeout": timeout}, timeout=timeout + 10)
                if status["status"] is not None:
                    self.returncode = os.waitstatus_to_exitcode(status["status"])
            except (ZygoteError, KeyError, TypeError, ValueError):
                return None  # unknown: the child is init's now, and may well be alive
        return self.returncode

    def kill(self) -> None:
        if self.returncode is not None:
            return
        try:
            self.returncode = os.waitstatus_to_exitcode(self.zygote.request({"op": "kill", "pid": self.pid})["status"])
        except (ZygoteError, KeyError, TypeError, ValueError):
            for send in (os.killpg, os.kill):
                try:
                    send(self.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            self.returncode = -signal.SIGKILL


ChildProcess = SpawnedChild | ForkedChild


def process_state(pid: int) -> str | None:
    """A process's state letter from /proc (``Z``: dead, not yet reaped), or None when it can't be read."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY | os.O_CLOEXEC)  # asked before every call: no file object
        try:
            data = os.read(fd, 4096)  # one line of a few hundred bytes; the state follows the name (16 bytes at most)
        finally:
            os.close(fd)
        return data[data.rindex(b")") + 2 :].split(maxsplit=1)[0].decode()
    except (OSError, ValueError, IndexError):
        return None


# -- output ------------------------------------------------------------------------------


class Transcript:
    """What the submission printed, in order, across every child it took.

    Each child writes to a fresh capture file (capped by RLIMIT_FSIZE, so one flood
    doesn't silence the next child). Bytes are copied out as they come and never read
    again: the child holds its file open read-write and could seek back and rewrite it,
    but what was copied when the first hidden call started is what students see.
    """

    def __init__(self, folder: Path, keep: int = KEEP_OUTPUT) -> None:
        self.folder = folder
        self.keep = keep
        self.data = bytearray()
        self.file = None
        self.taken = 0
        self.count = 0
        self.shown_end: int | None = None  # how much students may see: fixed when the first hidden call begins

    def new_capture(self):
        self.close_capture()
        self.count += 1
        self.file = open(self.folder / f"output-{self.count}", "w+b")  # noqa: SIM115 - closed in close_capture
        self.taken = 0
        return self.file

    def absorb(self) -> None:
        if self.file is None or len(self.data) >= self.keep:
            return
        fd = self.file.fileno()
        size = os.fstat(fd).st_size
        if size > self.taken:
            chunk = os.pread(fd, min(self.keep - len(self.data), size - self.taken), self.taken)
            self.data += chunk
            self.taken += len(chunk)

    def hide_from_here(self) -> None:
        """A hidden input is about to be sent: what was printed before it is all students may see."""
        self.hide_at(None)

    def hide_at(self, mark: int | None) -> None:
        """As ``hide_from_here``, but nothing printed after ``mark`` is shown either (None: up to now)."""
        if self.shown_end is None:
            self.absorb()
            self.shown_end = len(self.data) if mark is None else min(mark, len(self.data))

    @property
    def hidden_seen(self) -> bool:
        return self.shown_end is not None

    def shown(self, limit: int) -> bytes:
        """What the submission printed before its first hidden call (at most ``limit`` bytes).

        Hidden inputs are sent only after this point, so nothing in it can quote one.
        """
        if self.shown_end is None:
            self.absorb()
        end = len(self.data) if self.shown_end is None else self.shown_end
        return bytes(self.data[: min(end, limit)])

    def full(self, limit: int) -> bool:
        """Has the current child's capture file reached ``limit`` bytes (its RLIMIT_FSIZE)?"""
        return self.file is not None and os.fstat(self.file.fileno()).st_size >= limit

    def close_capture(self) -> None:
        if self.file is not None:
            self.absorb()
            self.file.close()
            Path(self.file.name).unlink(missing_ok=True)
            self.file = None
