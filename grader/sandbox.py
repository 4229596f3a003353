"""The sandbox: the only module that starts processes.

A submission runs in a child Python process (``grader/child.py``) that the parent
feeds inputs and reads float64 arrays from, under limits it cannot lift:

* always: its own session, RLIMIT_AS / CPU / FSIZE / NOFILE / CORE, a wall clock per
  call, stdout and stderr captured to a capped file per child, a private working folder;
* on Linux x86-64 and arm64, as any user: a seccomp filter that refuses sockets,
  leaving its process group (``setsid``, ``setpgid``), signalling or tracing the
  grader, new namespaces and io_uring. So even on a student's laptop there is no
  network, and no process of the submission outlives the run;
* as root (Gradescope, CI, an instructor's container): private mount, network and IPC
  namespaces in which the child's whole filesystem is a minimal read-only tree (the
  Python installation, a few devices, fresh /tmp, /var/tmp and /dev/shm, a /proc that
  shows only its own processes): the grader's files, the rubric, the reference, the
  repository and the report's folder are not there at all. Then a drop to an
  unprivileged uid of its own (no supplementary groups, no_new_privs, RLIMIT_NPROC),
  and every process of that uid is killed whenever a child is replaced or the sandbox
  closes, ``setsid`` daemons included.

No mechanism is assumed: if one fails on this machine (a container without
CAP_SYS_ADMIN, a kernel without seccomp, a Python that can't run in the minimal tree)
the child is started again without it, the reason goes into the report's notes, and
later sandboxes in the same process don't try it again. What was in force is recorded
in ``Protections`` and ends up in the report.
"""

from __future__ import annotations

import builtins
import ctypes
import enum
import errno
import functools
import os
import resource
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from grader import wire
from grader.errors import ProtocolError, SandboxError

CHILD_SOURCE = (Path(__file__).parent / "child.py").read_text(encoding="utf-8")
CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x08000000, 0x40000000
NAMESPACE_FLAGS = 0x7E020000  # every CLONE_NEW* flag: mount, cgroup, uts, ipc, user, pid, net
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 0x4000, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
SANDBOX_UID_BASE = 0x5A000000  # far above any real account; one uid per grading process
STARTUP_SECONDS = 30.0  # Python + numpy inside the sandbox, before any of the submission runs
KEEP_OUTPUT = 64 * 1024  # what is kept of the submission's output; far more than is ever shown
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # the world-writable folders of a usual system
SIGNAL_CAUSES = {
    signal.SIGSEGV: "crashed with a segmentation fault (often unbounded recursion)",
    signal.SIGBUS: "crashed with a bus error",
    signal.SIGABRT: "aborted",
    signal.SIGXCPU: "ran out of CPU time",
    signal.SIGKILL: "was killed (the CPU time limit, or the memory limit)",
    signal.SIGXFSZ: "wrote more output than the limit allows",
    signal.SIGFPE: "crashed with a floating-point exception",
}
BAD_RETURN_WORDS = {  # what a hidden case says: the child's own words could carry an input
    "none": "returned None; expected a numpy array (did you forget `return`?)",
    "complex": "returned an array of complex numbers; expected an array of real numbers",
    "dtype": "returned an array whose dtype is not a real number type; expected an array of real numbers",
    "not_rectangular": "returned a sequence that is not a rectangular array of real numbers",
    "unconvertible": "returned a value that could not be converted to numbers",
    "type": "returned something that is not a numpy array",
}
CUSTOM_EXCEPTION = "an exception of a class defined in the file"


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
        }

    @property
    def weaker_than_possible(self) -> bool:
        return bool(self.notes) or not (self.privilege_drop and self.network_cut and self.reference_hidden)


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


class MechanismFailed(Exception):
    """One isolation mechanism could not be set up on this machine (internal)."""

    def __init__(self, mechanism: str, reason: str) -> None:
        super().__init__(f"{mechanism}: {reason}")
        self.mechanism, self.reason = mechanism, reason


# Mechanisms that failed earlier in this process, with the reason: not tried again.
FAILED_MECHANISMS: dict[str, str] = {}


# -- planning ----------------------------------------------------------------------


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


@dataclass(frozen=True)
class RootLayout:
    """The child's whole filesystem in a minimal root, each entry at its own path.

    ``dirs`` are bound read-only (the Python installation and the system libraries),
    ``links`` are top-level symlinks recreated as they are (``/lib -> usr/lib``),
    ``files`` single files bound read-only, ``devices`` bound as they are.
    """

    dirs: tuple[str, ...]
    links: tuple[tuple[str, str], ...]
    files: tuple[str, ...]
    devices: tuple[str, ...]


@functools.cache
def root_layout() -> RootLayout:
    wanted = {
        "/usr",
        sys.prefix,
        sys.base_prefix,
        sys.exec_prefix,
        sys.base_exec_prefix,
        os.path.dirname(os.path.realpath(sys.executable)),
        os.path.dirname(os.path.abspath(sys.executable)),
        os.path.dirname(os.__file__),
        os.path.dirname(os.path.dirname(np.__file__)),
    }
    links = []
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            links.append((top, os.readlink(top)))
        elif os.path.isdir(top):
            wanted.add(top)
    real = {os.path.realpath(p) for p in wanted if os.path.isdir(p)} - {"/"}
    dirs = tuple(sorted(d for d in real if not any(d.startswith(other + "/") for other in real)))
    files = tuple(p for p in ("/etc/ld.so.cache",) if os.path.isfile(p))
    devices = tuple(
        p for p in ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom") if _is_char_device(p)
    )
    return RootLayout(dirs=dirs, links=tuple(links), files=files, devices=devices)


def _is_char_device(path: str) -> bool:
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return False


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def hidden_in_minimal_root(hidden_paths: Sequence[Path]) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """Which folders are hidden in the minimal root, which need an empty mount over them, and notes.

    A folder outside every bound folder is simply absent; one inside the Python
    installation gets an empty tmpfs over it, unless the interpreter itself is inside.
    """
    dirs = root_layout().dirs
    hidden, covers, notes = [], [], []
    for path in sorted({os.path.realpath(p) for p in hidden_paths}):
        holders = [d for d in dirs if _inside(path, d)]
        if not holders:
            hidden.append(path)
        elif any(_inside(d, path) for d in dirs) or any(_inside(str(p.resolve()), path) for p in python_paths()):
            notes.append(f"{path} is not hidden from the submission: the Python installation is inside it")
        else:
            hidden.append(path)
            covers.append(path)
    return tuple(hidden), tuple(covers), notes


def hidden_on_host(hidden_paths: Sequence[Path]) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """Without a minimal root: folders to cover with an empty mount, private tmp folders, notes.

    A folder that holds the interpreter can't be covered by an empty mount.
    """
    python = [p.resolve() for p in python_paths()]
    notes: list[str] = []
    hidden: list[str] = []
    for path in sorted({Path(p).resolve() for p in hidden_paths}):
        if any(path == p or path in p.parents for p in python):
            notes.append(f"{path} is not hidden from the submission: the Python installation is inside it")
        else:
            hidden.append(str(path))
    private_tmp = tuple(t for t in PRIVATE_TMP if not any(Path(t).resolve() in p.parents for p in python))
    return tuple(hidden), private_tmp, notes


def default_hidden_paths() -> list[Path]:
    """Folders no submission needs, some holding secrets whatever the rubric in use.

    The grader's package, its source checkout when it runs from one (the .git, the
    tests and their correct fixtures, the solutions), and the data a wheel installs
    (the bundled rubric and reference under ``share/grader``).
    """
    package = Path(__file__).resolve().parent
    found = [package]
    if any((package.parent / name).exists() for name in (".git", "pyproject.toml", "rubrics", "solutions")):
        found.append(package.parent)
    found += [Path(prefix) / "share" / "grader" for prefix in sorted({sys.prefix, sys.base_prefix, "/usr/local"})]
    return [path for path in found if path.exists()]


def seccomp_supported() -> bool:
    return sys.platform.startswith("linux") and os.uname().machine in SECCOMP_ARCHES


def plan_protections(hidden_paths: Sequence[Path]) -> Protections:
    """The strongest isolation this machine is believed to allow, and why where it is weaker."""
    filtered = seccomp_supported() and "syscall_filter" not in FAILED_MECHANISMS
    if not is_root():
        note = "not running as root: the submission runs as your own user and can read and write your files"
        if filtered:
            note += "; a seccomp filter refuses its network sockets and keeps its processes in one group"
        protections = Protections(
            privilege_drop=False,
            network_cut=filtered,
            hidden_paths=(),
            kill_all_processes=filtered,
            syscall_filter=filtered,
            notes=(note,),
        )
        if seccomp_supported() and not filtered:
            protections = without(protections, "syscall_filter", FAILED_MECHANISMS["syscall_filter"], hidden_paths)
        elif not seccomp_supported():
            protections = replace(protections, notes=(note + " (no seccomp on this platform: it has the network)",))
        return protections
    blocked = unreadable_for_others(python_paths())
    notes = []
    if blocked:
        notes.append(
            f"no privilege drop: the Python installation is not readable by other users at {blocked}; "
            "install the grader with a Python every user can read (e.g. /usr/bin/python3 or a venv under /opt)"
        )
    hidden, _, more = hidden_in_minimal_root(hidden_paths)
    protections = Protections(
        privilege_drop=not blocked,
        network_cut=True,
        hidden_paths=hidden,
        kill_all_processes=not blocked or filtered,
        private_tmp=PRIVATE_TMP,
        notes=tuple(notes + more),
        namespaces=True,
        minimal_filesystem=True,
        syscall_filter=filtered,
    )
    for mechanism in ("namespaces", "minimal_filesystem", "syscall_filter"):
        if mechanism in FAILED_MECHANISMS:
            protections = without(protections, mechanism, FAILED_MECHANISMS[mechanism], hidden_paths)
    return protections


def without(protections: Protections, mechanism: str, reason: str, hidden_paths: Sequence[Path]) -> Protections:
    """``protections`` with one mechanism turned off, what that implies, and a note saying why."""
    p = protections
    if mechanism == "minimal_filesystem" and p.minimal_filesystem:
        hidden, private_tmp, more = hidden_on_host(hidden_paths)
        note = f"no minimal filesystem ({reason}): the submission can read every world-readable file but the hidden folders"
        return replace(p, minimal_filesystem=False, hidden_paths=hidden, private_tmp=private_tmp, notes=(note, *more))
    if mechanism == "namespaces" and p.namespaces:
        note = f"no private namespaces ({reason}): the submission can read every world-readable file and shares /tmp"
        if not p.syscall_filter:
            note += ", and it has the network"
        return replace(
            p,
            namespaces=False,
            minimal_filesystem=False,
            hidden_paths=(),
            private_tmp=(),
            network_cut=p.syscall_filter,
            notes=(note, *p.notes),
        )
    if mechanism == "syscall_filter" and p.syscall_filter:
        note = f"no syscall filter ({reason})"
        if not p.namespaces:
            note += ": the submission has the network"
        if not p.privilege_drop:
            note += ", and a process it starts in a new session outlives the run"
        return replace(
            p,
            syscall_filter=False,
            network_cut=p.namespaces,
            kill_all_processes=p.privilege_drop,
            notes=(*p.notes, note),
        )
    if mechanism == "privilege_drop" and p.privilege_drop:
        note = f"no privilege drop ({reason}): the submission runs as root and could undo the other protections"
        return replace(p, privilege_drop=False, kill_all_processes=p.syscall_filter, notes=(note, *p.notes))
    return p


# -- mechanisms (run in the forked child, before exec) -------------------------------


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def _mount(lib, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def encode(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    _check(lib.mount(encode(source), encode(target), encode(fstype), flags, encode(data)), f"mount {target}")


def _bind(lib, source: str, target: str, flags: int, read_only: bool = True) -> None:
    _mount(lib, source, target, None, MS_BIND)
    _mount(lib, None, target, None, MS_BIND | MS_REMOUNT | flags | (MS_RDONLY if read_only else 0))


def build_root(lib, root: str, layout: RootLayout, covers: Sequence[str]) -> None:
    """Mount the minimal tree at ``root`` (in a private mount namespace) and chroot into it.

    Order matters: the private tmp folders first, so a Python installed under /tmp is
    bound on top of them; the empty covers last, over folders inside the binds.
    """
    _mount(lib, "tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for path in PRIVATE_TMP:
        os.makedirs(root + path, exist_ok=True)
        _mount(lib, "tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    for path, target in layout.links:
        os.symlink(target, root + path)
    for path in layout.dirs:
        os.makedirs(root + path, exist_ok=True)
        _bind(lib, path, root + path, MS_NOSUID | MS_NODEV)
    for path in (*layout.files, *layout.devices):
        os.makedirs(os.path.dirname(root + path), exist_ok=True)
        os.close(os.open(root + path, os.O_CREAT | os.O_WRONLY, 0o644))
        if path in layout.devices:
            _bind(lib, path, root + path, MS_NOSUID | MS_NOEXEC, read_only=False)
        else:
            _bind(lib, path, root + path, MS_NOSUID | MS_NODEV)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "fd/0"), ("stdout", "fd/1"), ("stderr", "fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(root + "/proc", exist_ok=True)
    try:  # a /proc of its own processes only; without it (some containers) /proc stays empty
        _mount(lib, "proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    except OSError:
        pass
    for path in covers:
        if os.path.isdir(root + path):
            _mount(lib, "tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, "size=4k,mode=0")
    _mount(lib, None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chroot(root)


def cover_on_host(lib, hidden: Sequence[str], private_tmp: Sequence[str]) -> None:
    """Without a minimal root: empty mounts over the hidden folders, fresh tmp folders."""
    covered: list[str] = []
    for path in sorted(hidden):
        if any(_inside(path, done) for done in covered) or not os.path.isdir(path):
            continue  # already under an empty mount
        _mount(lib, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16k,mode=0700")
        covered.append(path)
    for path in private_tmp:
        if os.path.isdir(path):
            _mount(lib, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=1777")
    try:  # a /proc that shows only the child's own processes, not the grader's command line
        _mount(lib, "proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    except OSError:
        pass


# seccomp: syscall numbers of what the filter refuses, per architecture.
SECCOMP_ARCHES = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SYSCALLS = {
    "x86_64": {
        "socket": 41,
        "kill": 62,
        "tgkill": 234,
        "clone": 56,
        "clone3": 435,
        "setsid": 112,
        "setpgid": 109,
        "tkill": 200,
        "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "unshare": 272,
        "setns": 308,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "perf_event_open": 298,
        "bpf": 321,
        "userfaultfd": 323,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "pidfd_getfd": 438,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "shmget": 29,
        "semget": 64,
        "msgget": 68,
    },  # fmt: skip
    "aarch64": {
        "socket": 198,
        "kill": 129,
        "tgkill": 131,
        "clone": 220,
        "clone3": 435,
        "setsid": 157,
        "setpgid": 154,
        "tkill": 130,
        "rt_sigqueueinfo": 138,
        "rt_tgsigqueueinfo": 240,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "unshare": 97,
        "setns": 268,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "perf_event_open": 241,
        "bpf": 280,
        "userfaultfd": 282,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "pidfd_getfd": 438,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "shmget": 194,
        "semget": 190,
        "msgget": 186,
    },  # fmt: skip
}
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K …, BPF_RET|K
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000


def seccomp_program(parent_pid: int, parent_pgid: int) -> bytes:
    """A classic-BPF seccomp filter: refuse what could reach outside the sandbox.

    Refused with EPERM: leaving the process group or session (so ``killpg`` reaches
    every process), tracing or signalling the grader (``kill(-1)``, its pid, its group),
    new namespaces, keyrings and System V IPC objects (both outlive the process: a
    later run could find them), io_uring (which could open sockets behind the filter's
    back), perf and bpf. ``socket`` gets EACCES (no network, no D-Bus asking systemd
    to start a process for it), ``clone3`` ENOSYS (its flags can't be inspected; libc
    falls back to ``clone``). Any other architecture's syscalls get EPERM.
    """
    machine = os.uname().machine
    nr = SYSCALLS[machine]
    special = ("socket", "kill", "tgkill", "clone", "clone3")
    items: list[tuple] = [("stmt", _LD, 4), ("jump", _JEQ, SECCOMP_ARCHES[machine], None, "deny"), ("stmt", _LD, 0)]
    if machine == "x86_64":
        items.append(("jump", _JGE, 0x40000000, "deny", None))  # the x32 ABI
    items += [("jump", _JEQ, number, "deny", None) for name, number in nr.items() if name not in special]
    items += [
        ("jump", _JEQ, nr["socket"], "refuse", None),
        ("jump", _JEQ, nr["clone3"], "nosys", None),
        ("jump", _JEQ, nr["kill"], "kill", None),
        ("jump", _JEQ, nr["tgkill"], "tgkill", None),
        ("jump", _JEQ, nr["clone"], "clone", None),
        ("stmt", _RET, _ALLOW),
        ("label", "kill"),
        ("stmt", _LD, 16),  # the low 32 bits of the first argument (little-endian)
        ("jump", _JEQ, 0xFFFFFFFF, "deny", None),
        ("jump", _JEQ, parent_pid, "deny", None),
        ("jump", _JEQ, -parent_pgid & 0xFFFFFFFF, "deny", None),
        ("stmt", _RET, _ALLOW),
        ("label", "tgkill"),
        ("stmt", _LD, 16),
        ("jump", _JEQ, parent_pid, "deny", None),
        ("stmt", _RET, _ALLOW),
        ("label", "clone"),
        ("stmt", _LD, 16),
        ("jump", _JSET, NAMESPACE_FLAGS, "deny", None),
        ("stmt", _RET, _ALLOW),
        ("label", "refuse"),
        ("stmt", _RET, _ERRNO | errno.EACCES),
        ("label", "nosys"),
        ("stmt", _RET, _ERRNO | errno.ENOSYS),
        ("label", "deny"),
        ("stmt", _RET, _ERRNO | errno.EPERM),
    ]
    return _assemble(items)


def _assemble(items: list[tuple]) -> bytes:
    """BPF instructions from ("stmt", code, k), ("jump", code, k, true_label, false_label), ("label", name)."""
    labels, position = {}, 0
    for item in items:
        if item[0] == "label":
            labels[item[1]] = position
        else:
            position += 1
    out, position = [], 0
    for item in items:
        if item[0] == "label":
            continue
        position += 1
        if item[0] == "stmt":
            out.append(struct.pack("=HBBI", item[1], 0, 0, item[2]))
            continue
        offsets = [0 if label is None else labels[label] - position for label in item[3:5]]
        assert all(0 <= o < 256 for o in offsets), "a BPF jump is out of range"
        out.append(struct.pack("=HBBI", item[1], offsets[0], offsets[1], item[2]))
    return b"".join(out)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


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

    def close_capture(self) -> None:
        if self.file is not None:
            self.absorb()
            self.file.close()
            Path(self.file.name).unlink(missing_ok=True)
            self.file = None


# -- the sandbox -------------------------------------------------------------------------


def known_exception_names() -> frozenset[str]:
    """Exception classes of Python and numpy: names a hidden case may repeat."""
    names = {n for n, v in vars(builtins).items() if isinstance(v, type) and issubclass(v, BaseException)}
    numpy_exceptions = getattr(np, "exceptions", None)  # numpy >= 1.25
    if numpy_exceptions is not None:
        names |= {n for n, v in vars(numpy_exceptions).items() if isinstance(v, type) and issubclass(v, BaseException)}
    return frozenset(names | {"LinAlgError"})


KNOWN_EXCEPTIONS = known_exception_names()


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
        self.source_lines = source.decode("utf-8", "replace").splitlines()
        self.filename = filename
        self.limits = limits
        self.hidden_paths = (*hidden_paths, *default_hidden_paths())
        self.forbidden = list(forbidden_imports)
        self.expected_calls = max(1, expected_calls)
        self.protections = protections or plan_protections(self.hidden_paths)
        self.private = Path(tempfile.mkdtemp(prefix="grader-"))
        self.transcript = Transcript(self.private)
        self.proc: subprocess.Popen | None = None
        self.reader: wire.FrameReader | None = None
        self.writer_fd: int | None = None
        self.import_outcome: ImportOutcome | None = None
        self.next_id = 0
        self.starts = 0
        self.hidden_seen = False
        self._libc = libc() if sys.platform.startswith("linux") else None
        self._filter = None
        if seccomp_supported():
            program = seccomp_program(os.getpid(), os.getpgrp())
            self._filter_buffer = ctypes.create_string_buffer(program, len(program))
            self._filter = SockFprog(len(program) // 8, ctypes.addressof(self._filter_buffer))
        self.scratch: Path | None = None
        self._covers: tuple[str, ...] = ()
        self._configure()

    @property
    def uid(self) -> int | None:
        return SANDBOX_UID_BASE + os.getpid() if self.protections.privilege_drop else None

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
        self.transcript.close_capture()
        shutil.rmtree(self.private, ignore_errors=True)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def _stop_child(self) -> None:
        if self.proc is not None:
            # One SIGKILL reaches every member (the kernel aborts forks in flight), and
            # the group id can't be reused while a member lives. Without a uid of its own,
            # the seccomp filter is what keeps every process of the submission in it.
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
        self.transcript.close_capture()
        self.proc, self.reader, self.writer_fd = None, None, None

    @contextmanager
    def _stage(self, mechanism: str, report_fd: int) -> Iterator[None]:  # pragma: no cover - in the child
        try:
            yield
        except BaseException as err:
            reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
            os.write(report_fd, f"{mechanism}\t{reason}".encode(errors="replace")[:500])
            raise

    def _preexec(self, report_fd: int) -> None:  # pragma: no cover - runs in the child
        """Runs in the forked child before exec: namespaces, root, the privilege drop, limits, filter."""
        p, lib = self.protections, self._libc
        if p.namespaces:
            with self._stage("namespaces", report_fd):
                _check(lib.unshare(CLONE_NEWNS | CLONE_NEWIPC | (CLONE_NEWNET if p.network_cut else 0)), "unshare")
                _mount(lib, None, "/", None, MS_REC | MS_PRIVATE)
                if not p.minimal_filesystem:
                    cover_on_host(lib, p.hidden_paths, p.private_tmp)
            if p.minimal_filesystem:
                with self._stage("minimal_filesystem", report_fd):
                    build_root(lib, str(self.private / "root"), root_layout(), self._covers)
        os.chdir(self.workdir)
        uid = self.uid
        if uid is not None:
            with self._stage("privilege_drop", report_fd):
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
        if lib is not None:
            lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        # Limits after the mounts: the forked parent image is large, so a low RLIMIT_AS
        # must not apply to anything but the exec that follows.
        cpu = int(self.limits.import_time_limit + self.limits.time_limit * self.expected_calls) + 2
        if uid is not None:
            resource.setrlimit(resource.RLIMIT_NPROC, (self.limits.processes, self.limits.processes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        resource.setrlimit(resource.RLIMIT_FSIZE, (self.limits.output_bytes, self.limits.output_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (self.limits.open_files, self.limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_AS, (self.limits.memory_bytes, self.limits.memory_bytes))
        if p.syscall_filter:
            with self._stage("syscall_filter", report_fd):
                _check(lib.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(self._filter), 0, 0), "seccomp")

    def _env(self) -> dict[str, str]:
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
        return env

    def _spawn(self) -> None:
        """Start a child and wait for its "started" frame; MechanismFailed if isolation broke it."""
        if self.uid is not None:
            kill_uid(self.uid)
        req_read, req_write = os.pipe()
        rep_read, rep_write = os.pipe()
        report_read, report_write = os.pipe()
        capture = self.transcript.new_capture()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-u", "-c", CHILD_SOURCE, str(req_read), str(rep_write)],
                stdin=subprocess.DEVNULL,
                stdout=capture,
                stderr=capture,
                pass_fds=(req_read, rep_write),
                env=self._env(),
                start_new_session=True,
                preexec_fn=lambda: self._preexec(report_write),
            )
        except (OSError, subprocess.SubprocessError) as err:
            os.close(report_write)
            reason = os.read(report_read, 1000).decode(errors="replace")
            for fd in (req_read, req_write, rep_read, rep_write, report_read):
                os.close(fd)
            if "\t" in reason:
                raise MechanismFailed(*reason.split("\t", 1)) from err
            if isinstance(err, OSError) and self.protections.minimal_filesystem:  # exec failed inside the root
                raise MechanismFailed("minimal_filesystem", f"cannot run {sys.executable} in it: {err}") from err
            raise SandboxError(f"cannot start the sandboxed child: {err}") from err
        for fd in (req_read, rep_write, report_read, report_write):
            os.close(fd)
        os.set_blocking(req_write, False)
        self.reader = wire.FrameReader(rep_read)
        self.writer_fd = req_write
        try:
            hello = self.reader.read_header(time.monotonic() + STARTUP_SECONDS)
        except (wire.Timeout, EOFError, ProtocolError):
            hello = None
        if hello != {"status": "started"}:
            code = self.proc.poll()
            mark = len(self.transcript.data)
            self._stop_child()
            tail = bytes(self.transcript.data[mark:][-300:]).decode(errors="replace").strip().splitlines()
            del self.transcript.data[mark:]  # the machine's words, not the student's output
            why = f"Python could not start in it (exit code {code}{': ' + tail[-1] if tail else ''})"
            for mechanism in ("minimal_filesystem", "syscall_filter", "namespaces"):
                if getattr(self.protections, mechanism):
                    raise MechanismFailed(mechanism, why)
            raise SandboxError(f"the sandboxed Python did not start: {why}")

    def _start_child(self) -> ImportOutcome:
        self.starts += 1
        for _ in range(5):
            try:
                self._spawn()
                break
            except MechanismFailed as failed:
                FAILED_MECHANISMS.setdefault(failed.mechanism, failed.reason)
                weaker = without(self.protections, failed.mechanism, failed.reason, self.hidden_paths)
                if weaker == self.protections:
                    raise SandboxError(f"cannot start the sandboxed child: {failed}") from failed
                self.protections = weaker
                self._configure()
        else:
            raise SandboxError("cannot start the sandboxed child: every isolation mechanism failed")
        started = time.monotonic()
        deadline = started + self.limits.import_time_limit
        header = {"op": "load", "filename": self.filename, "source_len": len(self.source), "forbidden": self.forbidden}
        timeout = CallOutcome(
            CallStatus.TIMEOUT, message=f"importing the file took longer than {self.limits.import_time_limit:g} s"
        )
        try:
            wire.write_all(self.writer_fd, wire.encode_frame(header, self.source), deadline)
            reply = self.reader.read_header(deadline)
            names = wire.parse_names(reply.get("names")) if reply.get("status") == "ready" else None
        except wire.Timeout:
            self._stop_child()
            return ImportOutcome(False, failure=timeout)
        except (EOFError, OSError, ProtocolError):
            return ImportOutcome(False, failure=self._fault_after_death(deadline, "while importing the file"))
        elapsed = time.monotonic() - started
        if names is not None:
            return ImportOutcome(True, names=names, elapsed=elapsed)
        self._stop_child()
        return ImportOutcome(False, failure=self._import_failure(reply), elapsed=elapsed)

    def _where(self, lineno: int | None) -> dict | None:
        """A fault's place in the submission, the line's text taken from the parent's copy of the file."""
        if lineno is None or not 0 < lineno <= len(self.source_lines):
            return None
        return {"lineno": lineno, "line": wire.clean_text(self.source_lines[lineno - 1].strip(), 200)}

    def _exception_name(self, name: str | None, hidden: bool) -> str | None:
        if name is None or not hidden or name in KNOWN_EXCEPTIONS:
            return name
        return CUSTOM_EXCEPTION  # a class the submission made up could be named after a hidden input

    def _import_failure(self, reply: dict) -> CallOutcome:
        hidden = self.hidden_seen  # a re-import after a hidden call could have stashed an input somewhere
        status = {"memory": CallStatus.MEMORY, "exit": CallStatus.EXITED}.get(reply.get("phase_status"))
        try:
            lineno = wire.parse_lineno(reply.get("where"))
        except ProtocolError:
            lineno = None
        error_type = reply.get("type") if isinstance(reply.get("type"), str) else None
        return CallOutcome(
            status or CallStatus.IMPORT_ERROR,
            message="" if hidden else wire.clean_text(reply.get("message"), 500),
            error_type=self._exception_name(wire.clean_text(error_type, 100) or None, hidden),
            where=self._where(lineno),
        )

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
            cause = SIGNAL_CAUSES.get(sig, f"was killed by {sig.name}")
            return CallOutcome(CallStatus.CRASHED, message=f"the process {cause} {during}", error_type=sig.name)
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

    def _capture_full(self) -> bool:
        capture = self.transcript.file
        return capture is not None and os.fstat(capture.fileno()).st_size >= self.limits.output_bytes

    def output_offset(self) -> int:
        """How much the submission has printed so far; what is before it is fixed from now on."""
        self.transcript.absorb()
        return len(self.transcript.data)

    def read_output(self, start: int, end: int, limit: int) -> str:
        """The captured output between two offsets, at most ``limit`` bytes, safe to print."""
        data = bytes(self.transcript.data[start : max(start, min(end, start + limit))])
        return wire.clean_text(data.decode("utf-8", "replace"), limit)

    def call(
        self, function: str, args: Sequence[tuple[str, np.ndarray]], expected_shape: tuple[int, ...], hidden: bool
    ) -> CallOutcome:
        """Call ``function`` on the arguments in the child; every fault comes back as data."""
        imported = self.ensure_started()
        if not imported.ok:
            return imported.failure
        if function not in imported.names:
            return CallOutcome(CallStatus.MISSING)
        self.hidden_seen = self.hidden_seen or hidden
        hidden = self.hidden_seen
        self.next_id += 1
        call_id = self.next_id
        names = tuple(name for name, _ in args)
        payloads = [wire.encode_array(np.ascontiguousarray(value)) for _, value in args]
        header = {
            "op": "call",
            "id": call_id,
            "function": function,
            "args": [{"name": name, "len": len(p)} for name, p in zip(names, payloads)],
        }
        started = time.monotonic()
        deadline = started + self.limits.time_limit
        expected_size = int(np.prod(expected_shape))
        shape, value = None, None
        try:
            self.reader.drain()
            wire.write_all(self.writer_fd, wire.encode_frame(header, *payloads), deadline)
            reply = wire.parse_reply(self.reader.read_header(deadline), call_id, names)
            if reply.status == "ok":
                shape, value = self.reader.read_array(
                    reply.length, expected_size, deadline, max_skip=self.limits.memory_bytes
                )
        except wire.Timeout:
            self._stop_child()
            return CallOutcome(
                CallStatus.TIMEOUT,
                message=f"{function} did not return within the {self.limits.time_limit:g} s limit",
                elapsed=time.monotonic() - started,
            )
        except (EOFError, OSError):
            return self._fault_after_death(deadline, f"while running {function}")
        except ProtocolError as err:
            self._stop_child()
            return CallOutcome(CallStatus.PROTOCOL, message=f"the process sent a malformed reply: {err}")
        message = reply.message
        if reply.status == "bad_return" and (hidden or not message):
            message = BAD_RETURN_WORDS[reply.problem or "type"]
        elif reply.status == "exit" and hidden:
            message = "called sys.exit"
        detail = {
            "message": message,
            "error_type": self._exception_name(reply.error_type, hidden),
            "where": self._where(reply.lineno),
            "returned": None if hidden else reply.returned,
            "mutated": reply.mutated,
            "elapsed": time.monotonic() - started,
        }
        if self._capture_full():
            self._stop_child()  # a child that ignored SIGXFSZ could print nothing more: start afresh
        if reply.status == "ok":
            return CallOutcome(CallStatus.OK, value=value, shape=shape, **detail)
        mapped = {
            "exception": CallStatus.EXCEPTION,
            "not_implemented": CallStatus.NOT_IMPLEMENTED,
            "memory": CallStatus.MEMORY,
            "exit": CallStatus.EXITED,
            "recursion": CallStatus.EXCEPTION,
            "bad_return": CallStatus.BAD_RETURN,
            "missing": CallStatus.MISSING,
        }[reply.status]
        return CallOutcome(mapped, **detail)


def errno_name(code: int) -> str:
    return errno.errorcode.get(code, str(code))
