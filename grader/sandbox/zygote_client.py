"""The grader's end of the zygote: start it, send it requests, notice when it failed.

The zygote (``grader/untrusted/zygote.py``) is a fork-server that has imported Python
and numpy once, so a sandboxed child costs a fork instead of an interpreter start-up.
This module only starts and talks to it, and compiles the untrusted folder that it and
every directly spawned child run; what a child does with itself is in
``grader/sandbox/session.py`` (its life) and ``grader/untrusted/confine.py`` (its
confinement).

It is a module of its own, with nothing but the standard library's lightest parts
at import, so ``grade`` can start the zygote within a few milliseconds of its own
start: the zygote's numpy import is then under way while the grader imports its
own modules and numpy, instead of after (``bench/bench_grade.py``).

One zygote per process, shared by every sandbox of it, like a connection pool; the
``SandboxHost`` (``host.py``) holds it and counts failures. The zygote is an
optimisation only: when it can't start, fails a request or dies, the sandbox spawns
that child directly, and after ZYGOTE_RETRIES failures the process stops using one.
"""

from __future__ import annotations

import base64
import functools
import importlib.machinery
import json
import marshal
import os
import select
import socket
import subprocess
import sys
import threading
import types
import zlib
from collections.abc import Sequence

UNTRUSTED = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "untrusted")
with open(os.path.join(UNTRUSTED, "launch.py"), encoding="utf-8") as _launch:
    LAUNCH_SOURCE = _launch.read()  # the program of every sandboxed Python (untrusted/launch.py)
del _launch
ZYGOTE_PROGRAM = LAUNCH_SOURCE + "\nrun_zygote()\n"


def renamed(code: types.CodeType, filename: str) -> types.CodeType:
    """``code`` with every nested function's file name set to ``filename``.

    Compiled from a file, code carries that file's path; a submission could read the
    grader's location off its child's functions, which run from source had only ``<child>``.
    """
    consts = tuple(renamed(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def compiled(name: str, path: str) -> str:
    """A module's code object for a sandboxed process: marshalled, compressed and base64-encoded for JSON.

    From the bytecode cache when it is fresh, as an import would: the zygote then
    doesn't spend its boot compiling while the grader waits for it. Marshal is
    safe here: this process made the bytes and the zygote runs the same interpreter.
    Compressed because the boot request is one socket message, which the socket's
    send buffer (~208 KiB by default) must hold.
    """
    code = renamed(importlib.machinery.SourceFileLoader(name, path).get_code(name), f"<{name}>")
    return base64.b64encode(zlib.compress(marshal.dumps(code), 1)).decode("ascii")


@functools.cache
def untrusted_code() -> dict[str, str]:
    """Every module at the top of the untrusted folder, compiled (see ``compiled``), as ``untrusted.<name>``.

    The whole top level, not a list kept by hand: what a sandboxed process may run is
    what lives there (``launch.py`` itself is the program text, not a module). Its
    ``student/`` folder (the self-check) ships to students, not to sandboxes. Once per
    process, read when the process's first zygote has already been started, not at
    import: ``grade`` imports this module to start the zygote, and every millisecond
    before that counts.
    """
    files = sorted(
        f
        for f in os.listdir(UNTRUSTED)
        if f.endswith(".py") and f not in ("launch.py", "__init__.py") and os.path.isfile(os.path.join(UNTRUSTED, f))
    )
    return {f"untrusted.{f[:-3]}": compiled(f[:-3], os.path.join(UNTRUSTED, f)) for f in files}


def child_program() -> str:
    """The ``-c`` program of a directly spawned child: the launcher with the folder's code written in."""
    return LAUNCH_SOURCE + f"\nrun_child({untrusted_code()!r})\n"


ZYGOTE_SECONDS = 30.0  # the longest a request to the zygote may take (a huge child can take a while to die)
ZYGOTE_RETRIES = 3  # zygotes that may fail in one process before it spawns every child directly
STARTUP_SECONDS = 30.0  # Python + numpy inside the sandbox, before any of the submission runs


# numpy with one BLAS thread: in every child and in the zygote, which can fork only while
# single-threaded; the ``grade`` command sets the same in its own process (cli.run).
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def base_env() -> dict[str, str]:
    """The environment of every child (HOME and TMPDIR are added per child): nothing of the grader's."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", **ONE_BLAS_THREAD}
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


class ZygoteError(Exception):
    """The zygote failed a request or is gone (internal): the sandbox does without it."""


class Zygote:
    """This process's end of its zygote (``grader/untrusted/zygote.py``), shared by every sandbox of the process.

    It is started with the code it runs (``untrusted_code``) and is not waited
    for: the first request waits for it to be ready, so its numpy import overlaps
    whatever the grader does meanwhile. It stays in the
    grader's process group; the seccomp filter lets a child signal none but its own
    processes, so neither can be reached. Any failure closes it
    for good: the caller falls back to a direct spawn or sweep.
    """

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-u", "-c", ZYGOTE_PROGRAM, str(theirs.fileno()), str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                env=base_env(),
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.sock = ours
        self.owner = os.getpid()  # a forked copy of this object (a batch worker's parent's) is not ours
        self.pid = self.proc.pid
        self.ready = False
        self.lock = threading.Lock()  # one request and its reply at a time, whichever thread asks
        try:
            self.sock.sendall(json.dumps({"op": "boot", "code": untrusted_code()}).encode())
        except OSError:
            self.close()
            raise

    @property
    def usable(self) -> bool:
        return self.sock is not None and self.owner == os.getpid()

    def request(self, message: dict, fds: Sequence[int] = (), timeout: float = ZYGOTE_SECONDS) -> dict:
        """Send one request and return the zygote's reply; ZygoteError (and the zygote closed) on any failure.

        Anything that interrupts a request (Ctrl-C, a batch worker's WorkerStop) also
        closes the zygote: its reply would otherwise be read as the next request's.
        """
        with self.lock:
            if not self.usable:
                raise ZygoteError("the zygote is closed")
            try:
                if not self.ready:
                    self._reply(STARTUP_SECONDS)
                    self.ready = True
                socket.send_fds(self.sock, [json.dumps(message).encode()], list(fds))
                return self._reply(timeout)
            except BaseException as err:
                self.close()
                if isinstance(err, (OSError, ValueError, ZygoteError)):
                    raise ZygoteError(f"the zygote failed: {err}") from err
                raise

    def booted(self) -> bool:
        """Has it answered its boot message? Never waits (``Sandbox.begin`` asks before building cases).

        A boot that failed closes it, as a failed request does; False then, and while it boots.
        """
        if self.ready:
            return self.usable
        if not self.lock.acquire(blocking=False):
            return False
        try:
            if not self.usable or not select.select([self.sock], [], [], 0)[0]:
                return False
            self._reply(STARTUP_SECONDS)
            self.ready = True
            return True
        except (OSError, ValueError, ZygoteError):
            self.close()
            return False
        finally:
            self.lock.release()

    def _reply(self, timeout: float) -> dict:
        self.sock.settimeout(timeout)
        data = self.sock.recv(1 << 16)
        if not data:
            raise ZygoteError("it exited")
        reply = json.loads(data)
        if not isinstance(reply, dict) or reply.get("ok") is not True:
            raise ZygoteError(reply.get("error") if isinstance(reply, dict) else "a malformed reply")
        return reply

    def close(self) -> None:
        """Stop the zygote (its children are left alone: their sandboxes kill them)."""
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.owner == os.getpid() and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
