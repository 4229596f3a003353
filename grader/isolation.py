"""Isolation mechanisms: which protection a sandboxed child gets, and how it puts it on itself.

Two halves, one per side of the fork:

* planning, in the grader: ``plan_protections`` (the strongest isolation this machine
  is believed to allow), ``without`` (one mechanism less, what that costs, and a note
  saying why), the minimal root's layout and which folders it hides, and
  ``confinement_for``, which turns a plan into a ``Confinement``: plain data;
* applying, in the fresh child before any of the submission runs: ``confine`` (private
  namespaces, the minimal root and chroot, the drop to the sandbox uid, no_new_privs,
  resource limits with RLIMIT_AS last, the seccomp filter).

No mechanism is assumed: ``confine`` says which one failed on the report descriptor,
the sandbox starts the child again without it (``without``) and remembers the failure
in ``FAILED_MECHANISMS`` so later sandboxes in the same process don't try it again.

This module starts no process. It imports only the standard library and
``grader.seccomp``: the zygote (``grader/zygote.py``) runs its code to confine the
children it forks, without importing the grader package.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.util
import json
import os
import resource
import signal
import stat
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.seccomp import install_filter, seccomp_supported

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 0x4000, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # the world-writable folders of a usual system
SWEEP_PASSES = 3  # kill(-1) passes per sweep; one is enough (see kill_all_as), the others are margin


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


class MechanismFailed(Exception):
    """One isolation mechanism could not be set up on this machine (internal)."""

    def __init__(self, mechanism: str, reason: str) -> None:
        super().__init__(f"{mechanism}: {reason}")
        self.mechanism, self.reason = mechanism, reason


# Mechanisms that failed earlier in this process, with the reason: not tried again.
FAILED_MECHANISMS: dict[str, str] = {}


def remember_failure(failed: MechanismFailed) -> None:
    """Plan without ``failed.mechanism`` from now on in this process (the first reason is the one kept)."""
    FAILED_MECHANISMS.setdefault(failed.mechanism, failed.reason)


# -- planning (in the grader) -----------------------------------------------------------


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


def numpy_folder() -> Path:
    """Where numpy is installed, found without importing it (the CLI starts the zygote before numpy loads)."""
    spec = importlib.util.find_spec("numpy")
    if spec is None or spec.origin is None:
        raise ImportError("numpy is not installed")
    return Path(spec.origin).parent


def python_paths() -> list[Path]:
    """What the child's interpreter must be able to read: itself, the stdlib, numpy."""
    return [Path(sys.executable), Path(os.__file__).parent, numpy_folder(), Path(sys.prefix)]


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
        str(numpy_folder().parent),
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


# -- what a child does to itself, as data ------------------------------------------------


@dataclass(frozen=True)
class Confinement:
    """Everything ``confine`` does, decided by the grader: plain data, so it can travel to the zygote as JSON.

    ``unshare_flags`` 0 means no private namespaces; ``root`` None means no minimal
    root (then ``hidden`` folders get empty mounts on the host's tree). ``rlimits``
    are applied in order, RLIMIT_AS last. ``seccomp`` is the filter program, or None.
    """

    workdir: str
    unshare_flags: int = 0
    hidden: tuple[str, ...] = ()
    private_tmp: tuple[str, ...] = ()
    root: str | None = None
    layout: RootLayout | None = None
    covers: tuple[str, ...] = ()
    python: tuple[str, ...] = ()
    uid: int | None = None
    rlimits: tuple[tuple[int, int, int], ...] = ()
    seccomp: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict:
        document = {name: getattr(self, name) for name in self.__dataclass_fields__}
        document["layout"] = None if self.layout is None else vars(self.layout)
        document["seccomp"] = None if self.seccomp is None else self.seccomp.hex()
        return json.loads(json.dumps(document))

    @classmethod
    def from_json(cls, document: dict) -> Confinement:
        layout = document.get("layout")
        return cls(
            workdir=document["workdir"],
            unshare_flags=document["unshare_flags"],
            hidden=tuple(document["hidden"]),
            private_tmp=tuple(document["private_tmp"]),
            root=document["root"],
            layout=None
            if layout is None
            else RootLayout(
                dirs=tuple(layout["dirs"]),
                links=tuple(tuple(link) for link in layout["links"]),
                files=tuple(layout["files"]),
                devices=tuple(layout["devices"]),
            ),
            covers=tuple(document["covers"]),
            python=tuple(document["python"]),
            uid=document["uid"],
            rlimits=tuple(tuple(limit) for limit in document["rlimits"]),
            seccomp=None if document["seccomp"] is None else bytes.fromhex(document["seccomp"]),
            env=dict(document["env"]),
        )


def confinement_for(
    protections: Protections,
    workdir: str,
    root: str,
    covers: Sequence[str],
    uid: int | None,
    rlimits: Sequence[tuple[int, int, int]],
    seccomp: bytes | None,
    env: dict[str, str],
) -> Confinement:
    """What a child started under ``protections`` does to itself (``root``: where to build the minimal tree)."""
    p = protections
    minimal = p.namespaces and p.minimal_filesystem
    return Confinement(
        workdir=workdir,
        unshare_flags=(CLONE_NEWNS | CLONE_NEWIPC | (CLONE_NEWNET if p.network_cut else 0)) if p.namespaces else 0,
        hidden=tuple(p.hidden_paths) if p.namespaces and not minimal else (),
        private_tmp=tuple(p.private_tmp) if p.namespaces and not minimal else (),
        root=root if minimal else None,
        layout=root_layout() if minimal else None,
        covers=tuple(covers) if minimal else (),
        python=tuple(str(path) for path in python_paths()) if minimal else (),
        uid=uid,
        rlimits=tuple(rlimits),
        seccomp=seccomp if p.syscall_filter else None,
        env=dict(env),
    )


# -- applying (in the fresh child, before any of the submission runs) -----------------------


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


def check_python_runs(paths: Sequence[str]) -> None:
    """Raise OSError unless this uid can reach the interpreter, the stdlib and numpy (inside the root).

    A child exec'd into a root without them fails at exec; one forked from the zygote
    has them loaded already, but a submission importing another module would fail, so
    both kinds of child stop here and the minimal filesystem is dropped instead.
    """
    for path in paths:
        if not os.access(path, os.R_OK | (os.X_OK if os.path.isdir(path) else 0)):
            raise OSError(2, f"cannot run {sys.executable} in it: {path} is not there")


@contextmanager
def stage(mechanism: str, report_fd: int) -> Iterator[None]:  # pragma: no cover - in the child
    """Name the mechanism on ``report_fd`` if setting it up fails, so the grader can start again without it."""
    try:
        yield
    except BaseException as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        os.write(report_fd, f"{mechanism}\t{reason}".encode(errors="replace")[:500])
        raise


def confine(c: Confinement, report_fd: int) -> None:  # pragma: no cover - runs in the child
    """Namespaces, root, the privilege drop, limits, filter: what a fresh child does before the submission runs.

    Runs in a forked child, in the child's own session: before exec when the grader
    spawns the child directly, before the serve loop when the zygote forks it.
    """
    lib = libc() if sys.platform.startswith("linux") else None
    if c.unshare_flags:
        with stage("namespaces", report_fd):
            _check(lib.unshare(c.unshare_flags), "unshare")
            _mount(lib, None, "/", None, MS_REC | MS_PRIVATE)
            if c.root is None:
                cover_on_host(lib, c.hidden, c.private_tmp)
        if c.root is not None:
            with stage("minimal_filesystem", report_fd):
                build_root(lib, c.root, c.layout, c.covers)
    os.chdir(c.workdir)
    if c.uid is not None:
        with stage("privilege_drop", report_fd):
            os.setgroups([])
            os.setgid(c.uid)
            os.setuid(c.uid)
    if c.root is not None:
        with stage("minimal_filesystem", report_fd):
            check_python_runs(c.python)
    if lib is not None:
        lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    # Limits after the mounts: the forked image may be large (the grader's, before
    # exec), so a low RLIMIT_AS must not apply to anything but what follows.
    for which, soft, hard in c.rlimits:
        resource.setrlimit(which, (soft, hard))
    if c.seccomp is not None:
        with stage("syscall_filter", report_fd):
            install_filter(lib, c.seccomp)


def kill_all_as(uid: int) -> None:  # pragma: no cover - runs in a throw-away forked process
    """Become ``uid`` (this process is a throw-away fork) and SIGKILL every process of that uid.

    ``kill(-1)`` from inside the uid reaches processes that left the session (``setsid``
    daemons), which ``killpg`` misses. One pass is enough: the kernel signals every
    process of the uid under the task-list lock, and a fork not finished by then is
    aborted by the SIGKILL pending in its parent, so no process of the uid is left or
    appears afterwards. Its result can't tell "none left" anyway: ``kill(-1)`` returns
    0 whenever any other process exists, even one it may not signal (looping until
    ESRCH used to mean 1000 passes, ~15 ms per sweep).
    """
    os.closerange(3, 1 << 16)  # none of the grader's (or the zygote's) descriptors while it is the uid
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)
    for _ in range(SWEEP_PASSES):
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
