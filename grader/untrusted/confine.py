"""How a sandboxed child confines itself, before any of the submission runs.

This is the applying half of the isolation the parent plans in
``grader/sandbox/protection.py``: the parent decides everything and sends it as a
``Confinement`` (plain data, JSON on the way to the zygote), and ``confine`` applies
it in a fixed, visible order, like nsjail's ``containProc``:

0. joining the submission's cgroup (``cgroup_procs``: its memory and process count
   as a whole, see ``grader/sandbox/cgroup.py``), while /sys is still in view;
1. private namespaces (mount, IPC, network) and, without a minimal root, empty
   mounts over the hidden folders;
2. the minimal read-only root and the chroot into it;
3. the working folder, then the drop to the sandbox uid (no groups), then the
   parent-death signal (SIGKILL when the process that forked it, the zygote or the
   grader, dies; a change of uid clears it, so it comes after), and a check that the
   parent is still there;
4. a check that the interpreter is still reachable inside the root;
5. no_new_privs, then the resource limits, RLIMIT_AS last;
6. the seccomp filter (``seccomp.py``), built for this process's pid.

A step that fails names its mechanism on the report descriptor (``stage``), so the
parent can start the child again without it.

Untrusted side: it runs inside the sandbox (in a child spawned directly, or in one the
zygote forked), so it imports only the standard library and its own folder, never
``grader``.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from .seccomp import install_filter, seccomp_program

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWNET = 0x00020000, 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 0x4000, 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
PRIVATE_TMP = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # the world-writable folders of a usual system
SWEEP_PASSES = 3  # kill(-1) passes per sweep; one is enough (see kill_all_as), the others are margin


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


@dataclass(frozen=True)
class Confinement:
    """Everything ``confine`` does, decided by the grader: plain data, so it can travel to the zygote as JSON.

    ``unshare_flags`` 0 means no private namespaces; ``root`` None means no minimal
    root (then ``hidden`` folders get empty mounts on the host's tree). ``rlimits``
    are applied in order, RLIMIT_AS last. ``syscall_filter``: install the seccomp
    filter. ``cgroup_procs``: the ``cgroup.procs`` files to join first (none: no
    cgroup). ``parent_pid``: the process forking it (0: don't check it is alive).
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
    syscall_filter: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cgroup_procs: tuple[str, ...] = ()
    parent_pid: int = 0

    def to_json(self) -> dict:
        document = {name: getattr(self, name) for name in self.__dataclass_fields__}
        document["layout"] = None if self.layout is None else vars(self.layout)
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
            syscall_filter=bool(document["syscall_filter"]),
            env=dict(document["env"]),
            cgroup_procs=tuple(document["cgroup_procs"]),
            parent_pid=int(document["parent_pid"]),
        )


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
    bound on top of them; the empty covers last, over folders inside the binds. The
    bound folders' parents are made mode 0755 whatever the grader's umask: the parent
    plans the privilege drop on that (``unreachable_in_minimal_root``).
    """
    umask = os.umask(0o022)
    try:
        _build_root(lib, root, layout, covers)
    finally:
        os.umask(umask)
    os.chroot(root)


def _build_root(lib, root: str, layout: RootLayout, covers: Sequence[str]) -> None:
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


def inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def cover_on_host(lib, hidden: Sequence[str], private_tmp: Sequence[str]) -> None:
    """Without a minimal root: empty mounts over the hidden folders, fresh tmp folders."""
    covered: list[str] = []
    for path in sorted(hidden):
        if any(inside(path, done) for done in covered) or not os.path.isdir(path):
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
    if c.cgroup_procs:
        with stage("memory_cgroup", report_fd):
            for procs in c.cgroup_procs:
                with open(procs, "w", encoding="ascii") as group:
                    group.write(str(os.getpid()))
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
    if lib is not None:
        lib.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if c.parent_pid and os.getppid() != c.parent_pid:  # it died before the line above: nothing waits for us
        os._exit(1)
    if c.root is not None:
        with stage("minimal_filesystem", report_fd):
            check_python_runs(c.python)
    if lib is not None:
        lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    # Limits after the mounts: the forked image may be large (the grader's, before
    # exec), so a low RLIMIT_AS must not apply to anything but what follows.
    for which, soft, hard in c.rlimits:
        resource.setrlimit(which, (soft, hard))
    if c.syscall_filter:
        with stage("syscall_filter", report_fd):
            install_filter(lib, seccomp_program(os.getpid()))


def kill_all_as(uid: int) -> None:  # pragma: no cover - runs in a throw-away forked process
    """Become ``uid`` (this process is a throw-away fork) and SIGKILL every process of that uid.

    ``kill(-1)`` from inside the uid reaches processes that left the session (``setsid``
    daemons), which ``killpg`` misses. One pass is enough: the kernel signals every
    process of the uid under the task-list lock, and a fork not finished by then is
    aborted by the SIGKILL pending in its parent, so no process of the uid is left or
    appears afterwards. Its result can't tell "none left" anyway: ``kill(-1)`` returns
    0 whenever any other process exists, even one it may not signal (looping until
    ESRCH used to mean 1000 passes per sweep).
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
