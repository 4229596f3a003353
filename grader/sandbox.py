"""The sandbox: the only module that starts processes.

A submission runs in a child Python process (``grader/child.py``) that the parent
feeds inputs and reads float64 arrays from, under limits it cannot lift:

* always: its own session, RLIMIT_AS / CPU / FSIZE / NOFILE / CORE, a wall clock per
  call, stdout and stderr captured to a capped file, a private working directory;
* as root (Gradescope, CI, an instructor's container): a private mount namespace in
  which the reference and rubric folders are hidden and /tmp, /var/tmp and /dev/shm
  are fresh; a network namespace with no interfaces; then a drop to an unprivileged
  uid of its own (no supplementary groups, no_new_privs, RLIMIT_NPROC), so it can't
  read root's files, signal the parent, or outlive the run: every process of that uid
  is killed before the sandbox closes, including ``setsid`` daemons.

What was in force is recorded in ``Protections`` and ends up in the report.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader import wire
from grader.errors import ProtocolError, SandboxError

CHILD_SOURCE = (Path(__file__).parent / "child.py").read_text(encoding="utf-8")
CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_REC, MS_PRIVATE = 0x4000, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
SANDBOX_UID_BASE = 0x5A000000  # far above any real account; one uid per grading process
SIGNAL_CAUSES = {
    signal.SIGSEGV: "crashed with a segmentation fault (often unbounded recursion)",
    signal.SIGBUS: "crashed with a bus error",
    signal.SIGABRT: "aborted",
    signal.SIGXCPU: "ran out of CPU time",
    signal.SIGKILL: "was killed (the CPU time limit, or the memory limit)",
    signal.SIGXFSZ: "wrote more output than the limit allows",
    signal.SIGFPE: "crashed with a floating-point exception",
}


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


@dataclass(frozen=True)
class Limits:
    time_limit: float
    import_time_limit: float
    memory_bytes: int
    output_bytes: int
    processes: int
    open_files: int = 64


@dataclass(frozen=True)
class Protections:
    """Which isolation was in force, for the report and the one-line warning."""

    privilege_drop: bool
    network_cut: bool
    hidden_paths: tuple[str, ...]
    kill_all_processes: bool
    private_tmp: tuple[str, ...] = ()
    rlimits: bool = True
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "privilege_drop": self.privilege_drop,
            "network_cut": self.network_cut,
            "reference_hidden": bool(self.hidden_paths),
            "kill_all_processes": self.kill_all_processes,
            "private_tmp": list(self.private_tmp),
            "resource_limits": self.rlimits,
            "notes": list(self.notes),
        }

    @property
    def weaker_than_possible(self) -> bool:
        return bool(self.notes) or not (self.privilege_drop and self.network_cut and self.hidden_paths)


@dataclass(frozen=True)
class CallOutcome:
    """What a call produced: a float64 array (status OK) or a fault described as data."""

    status: CallStatus
    value: np.ndarray | None = None
    shape: tuple[int, ...] | None = None
    message: str = ""
    error_type: str | None = None
    where: dict | None = None
    returned: str | None = None
    mutated: tuple[str, ...] = ()
    elapsed: float = 0.0


@dataclass(frozen=True)
class ImportOutcome:
    ok: bool
    names: tuple[str, ...] = ()
    failure: CallOutcome | None = None
    elapsed: float = 0.0


def is_root() -> bool:
    return os.geteuid() == 0


def unreadable_for_others(paths: Sequence[Path]) -> str | None:
    """The first path (or ancestor) another uid cannot reach, or None when all are reachable."""
    for target in paths:
        target = target.resolve()
        for folder in reversed(target.parents):
            if not folder.stat().st_mode & stat.S_IXOTH:
                return f"{folder} (mode {stat.filemode(folder.stat().st_mode)})"
        mode = target.stat().st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed:
            return f"{target} (mode {stat.filemode(mode)})"
    return None


def python_paths() -> list[Path]:
    """What the child's interpreter must be able to read: itself, the stdlib, numpy."""
    return [Path(sys.executable), Path(os.__file__).parent, Path(np.__file__).parent, Path(sys.prefix)]


def plan_protections(hidden_paths: Sequence[Path]) -> Protections:
    """Decide what isolation this machine allows, and say why where it is weaker."""
    if not is_root():
        return Protections(
            privilege_drop=False,
            network_cut=False,
            hidden_paths=(),
            kill_all_processes=False,
            notes=("not running as root: the submission runs as the same user, with resource limits only",),
        )
    python = [p.resolve() for p in python_paths()]
    notes: list[str] = []
    # A folder that holds the interpreter can't be covered by an empty mount.
    hidden: list[str] = []
    for path in sorted({Path(p).resolve() for p in hidden_paths}):
        if any(path == p or path in p.parents for p in python):
            notes.append(f"{path} is not hidden from the submission: the Python installation is inside it")
        else:
            hidden.append(str(path))
    private_tmp = tuple(
        t for t in ("/tmp", "/var/tmp", "/dev/shm") if not any(Path(t).resolve() in p.parents for p in python)
    )
    blocked = unreadable_for_others(python_paths())
    if blocked:
        notes.append(
            f"no privilege drop: the Python installation is not readable by other users at {blocked}; "
            "install the grader with a Python every user can read (e.g. /usr/bin/python3 or a venv under /opt)"
        )
    return Protections(
        privilege_drop=not blocked,
        network_cut=True,
        hidden_paths=tuple(hidden),
        kill_all_processes=not blocked,
        private_tmp=private_tmp,
        notes=tuple(notes),
    )


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def kill_uid(uid: int) -> None:
    """SIGKILL every process of ``uid``, from a helper that runs as that uid.

    ``kill(-1)`` from inside the uid reaches processes that left the session
    (``setsid`` daemons), which ``killpg`` misses; repeat until none is left, so a
    process forked during one sweep is caught by the next.
    """
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the forked helper
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            for _ in range(1000):
                try:
                    os.kill(-1, signal.SIGKILL)
                except ProcessLookupError:
                    break
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


class Sandbox:
    """One submission's child process(es): start, call, restart after a fault, close.

    Use as a context manager. ``call`` never raises for anything the submission does;
    it returns a ``CallOutcome``. After a timeout, crash or protocol fault the child is
    killed and the next call starts a fresh one (re-importing the submission).
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
    ) -> None:
        self.source = source
        self.filename = filename
        self.limits = limits
        self.forbidden = list(forbidden_imports)
        self.expected_calls = max(1, expected_calls)
        self.protections = protections or plan_protections(hidden_paths)
        self.uid = SANDBOX_UID_BASE + os.getpid() if self.protections.privilege_drop else None
        self.private = Path(tempfile.mkdtemp(prefix="grader-"))
        self.capture = open(self.private / "output", "w+b")  # noqa: SIM115 - closed in close()
        self.proc: subprocess.Popen | None = None
        self.reader: wire.FrameReader | None = None
        self.writer_fd: int | None = None
        self.import_outcome: ImportOutcome | None = None
        self.next_id = 0
        self.starts = 0
        self._libc = libc() if is_root() else None
        # As root, /tmp in the child's mount namespace is a fresh tmpfs of its own.
        self.scratch: Path | None = None
        if "/tmp" in self.protections.private_tmp:
            self.workdir = "/tmp"
        else:
            # cwd, HOME and TMPDIR of the child: its own folder, removed in close().
            self.scratch = Path(tempfile.mkdtemp(prefix="grader-work-"))
            if self.uid is not None:
                os.chown(self.scratch, self.uid, self.uid)
            self.workdir = str(self.scratch)

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Kill every process of the submission and remove the private folder."""
        self._stop_child()
        self.capture.close()
        shutil.rmtree(self.private, ignore_errors=True)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _stop_child(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
        if self.uid is not None:
            kill_uid(self.uid)
        for fd in (self.writer_fd, self.reader.fd if self.reader else None):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.proc, self.reader, self.writer_fd = None, None, None

    def _preexec(self, read_fd: int, write_fd: int) -> None:  # pragma: no cover - runs in the child
        """Runs in the forked child before exec: namespaces, limits, then the privilege drop."""
        protections = self.protections
        if is_root() and self._libc is not None:
            flags = CLONE_NEWNS | (CLONE_NEWNET if protections.network_cut else 0)
            if self._libc.unshare(flags) != 0:
                os._exit(121)
            self._libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
            for path in protections.hidden_paths:
                if (
                    self._libc.mount(
                        b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"size=16k,mode=0700"
                    )
                    != 0
                ):
                    os._exit(122)
            for path in protections.private_tmp:
                if os.path.isdir(path):
                    self._libc.mount(b"tmpfs", path.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"size=64m,mode=1777")
        if self.uid is not None:
            os.setgroups([])
            os.setgid(self.uid)
            os.setuid(self.uid)
            if self._libc is not None:
                self._libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        os.chdir(self.workdir)
        # Limits last: the forked parent image is large, so a low RLIMIT_AS must not
        # apply to anything but the exec that follows.
        cpu = int(self.limits.import_time_limit + self.limits.time_limit * self.expected_calls) + 2
        if self.uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.limits.processes, self.limits.processes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limits.output_bytes, self.limits.output_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.limits.open_files, self.limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_bytes, self.limits.memory_bytes))

    def _start_child(self) -> ImportOutcome:
        self.starts += 1
        if self.uid is not None:
            kill_uid(self.uid)
        req_read, req_write = os.pipe()
        rep_read, rep_write = os.pipe()
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": self.workdir,
            "TMPDIR": self.workdir,
            "LANG": "C.UTF-8",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        for key in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
            if key in os.environ:
                env[key] = os.environ[key]
        started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-u", "-c", CHILD_SOURCE, str(req_read), str(rep_write)],
                stdin=subprocess.DEVNULL,
                stdout=self.capture,
                stderr=self.capture,
                pass_fds=(req_read, rep_write),
                env=env,
                start_new_session=True,
                preexec_fn=lambda: self._preexec(req_read, rep_write),
            )
        except OSError as err:
            raise SandboxError(f"cannot start the sandboxed child: {err}") from err
        finally:
            os.close(req_read)
            os.close(rep_write)
        self.reader = wire.FrameReader(rep_read)
        self.writer_fd = req_write
        deadline = started + self.limits.import_time_limit
        header = {"op": "load", "filename": self.filename, "source_len": len(self.source), "forbidden": self.forbidden}
        if not self._send(wire.encode_frame(header, self.source)):
            return ImportOutcome(False, failure=self._fault_after_death(deadline, "while importing the file"))
        try:
            reply = self.reader.read_header(deadline)
        except wire.Timeout:
            self._stop_child()
            return ImportOutcome(
                False,
                failure=CallOutcome(
                    CallStatus.TIMEOUT,
                    message=f"importing the file took longer than {self.limits.import_time_limit:g} s",
                ),
            )
        except (EOFError, ProtocolError):
            return ImportOutcome(False, failure=self._fault_after_death(deadline, "while importing the file"))
        elapsed = time.monotonic() - started
        if reply.get("status") == "ready" and isinstance(reply.get("names"), list):
            return ImportOutcome(True, names=tuple(str(n) for n in reply["names"]), elapsed=elapsed)
        self._stop_child()
        return ImportOutcome(False, failure=self._import_failure(reply), elapsed=elapsed)

    @staticmethod
    def _import_failure(reply: dict) -> CallOutcome:
        phase = reply.get("phase_status")
        status = {
            "memory": CallStatus.MEMORY,
            "exit": CallStatus.EXITED,
        }.get(phase, CallStatus.IMPORT_ERROR)
        return CallOutcome(
            status,
            message=str(reply.get("message", ""))[:500],
            error_type=str(reply.get("type", "")) or None,
            where=reply.get("where") if isinstance(reply.get("where"), dict) else None,
        )

    def _send(self, data: bytes) -> bool:
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self.writer_fd, view) :]
        except (BrokenPipeError, OSError):
            return False
        return True

    def _fault_after_death(self, deadline: float, during: str) -> CallOutcome:
        """The child's pipe closed: say how it ended (signal, exit code) and clean up."""
        proc = self.proc
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=max(0.5, min(2.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                code = None
        self._stop_child()
        if code is not None and code < 0:
            sig = signal.Signals(-code)
            status = CallStatus.MEMORY if sig == signal.SIGKILL and False else CallStatus.CRASHED
            cause = SIGNAL_CAUSES.get(sig, f"was killed by {sig.name}")
            return CallOutcome(status, message=f"the process {cause} {during}", error_type=sig.name)
        if code is None:
            return CallOutcome(CallStatus.CRASHED, message=f"the process stopped answering {during}")
        return CallOutcome(
            CallStatus.EXITED,
            message=f"the process exited with code {code} {during} (sys.exit, os._exit or similar)",
        )

    # -- calls -----------------------------------------------------------------------

    def ensure_started(self) -> ImportOutcome:
        """Start the child if none is running; an import failure is final (it is deterministic)."""
        if self.import_outcome is not None and not self.import_outcome.ok:
            return self.import_outcome
        if self.proc is None or self.proc.poll() is not None:
            self._stop_child()
            self.import_outcome = self._start_child()
        return self.import_outcome

    def output_offset(self) -> int:
        self.capture.flush()
        return os.fstat(self.capture.fileno()).st_size

    def read_output(self, start: int, end: int, limit: int) -> str:
        """The captured output between two offsets, at most ``limit`` bytes."""
        self.capture.seek(start)
        data = self.capture.read(max(0, min(end - start, limit)))
        return data.decode("utf-8", "replace")

    def call(
        self, function: str, args: Sequence[tuple[str, np.ndarray]], expected_shape: tuple[int, ...], hidden: bool
    ) -> CallOutcome:
        """Call ``function`` on the arguments in the child; every fault comes back as data."""
        imported = self.ensure_started()
        if not imported.ok:
            return imported.failure
        if function not in imported.names:
            return CallOutcome(CallStatus.MISSING)
        self.next_id += 1
        call_id = self.next_id
        payloads = [wire.encode_array(np.ascontiguousarray(value)) for _, value in args]
        header = {
            "op": "call",
            "id": call_id,
            "function": function,
            "hidden": hidden,
            "args": [{"name": name, "len": len(p)} for (name, _), p in zip(args, payloads)],
        }
        started = time.monotonic()
        deadline = started + self.limits.time_limit
        if not self._send(wire.encode_frame(header, *payloads)):
            return self._fault_after_death(deadline, f"while running {function}")
        expected_size = int(np.prod(expected_shape))
        try:
            reply = self.reader.read_header(deadline)
            if reply.get("id") != call_id:
                raise ProtocolError("a reply answered a different call")
            status = reply.get("status")
            if status == "ok":
                shape, value = self.reader.read_array(
                    reply.get("len"), expected_size, deadline, max_skip=self.limits.memory_bytes
                )
        except wire.Timeout:
            self._stop_child()
            return CallOutcome(
                CallStatus.TIMEOUT,
                message=f"{function} did not return within the {self.limits.time_limit:g} s limit",
                elapsed=time.monotonic() - started,
            )
        except EOFError:
            return self._fault_after_death(deadline, f"while running {function}")
        except ProtocolError as err:
            self._stop_child()
            return CallOutcome(CallStatus.PROTOCOL, message=f"the process sent a malformed reply: {err}")
        elapsed = time.monotonic() - started
        mutated = tuple(str(n) for n in reply.get("mutated", ()) if isinstance(n, str))[:16]
        detail = {
            "message": str(reply.get("message", ""))[:500],
            "error_type": str(reply["type"])[:100] if "type" in reply else None,
            "where": reply.get("where") if isinstance(reply.get("where"), dict) else None,
            "returned": str(reply.get("returned", ""))[:200] or None,
            "mutated": mutated,
            "elapsed": elapsed,
        }
        if status == "ok":
            return CallOutcome(CallStatus.OK, value=value, shape=shape, **detail)
        mapped = {
            "exception": CallStatus.EXCEPTION,
            "not_implemented": CallStatus.NOT_IMPLEMENTED,
            "memory": CallStatus.MEMORY,
            "exit": CallStatus.EXITED,
            "recursion": CallStatus.EXCEPTION,
            "bad_return": CallStatus.BAD_RETURN,
            "missing": CallStatus.MISSING,
        }.get(status)
        if mapped is None:
            self._stop_child()
            return CallOutcome(
                CallStatus.PROTOCOL, message=f"the process sent an unknown reply status {str(status)[:40]!r}"
            )
        return CallOutcome(mapped, **detail)


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))
