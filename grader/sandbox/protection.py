"""The protection plan: which isolation a sandboxed child gets on this machine.

The planning half of the sandbox's isolation, in the trusted parent:
``plan_protections`` (the strongest isolation this machine is believed to allow),
``without`` (one mechanism less, what that costs, and a note saying why), the minimal
root's layout and which folders it hides, and ``confinement_for``, which turns a plan
into a ``Confinement``: plain data that the child applies to itself
(``grader/untrusted/confine.py``) before any of the submission runs.

No mechanism is assumed: the child names the one that failed, the session starts it
again ``without`` it, and the ``SandboxHost`` remembers the failure so later
sandboxes of the same process don't try it again. This module starts no process.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from grader.sandbox.outcomes import Protections
from grader.untrusted.confine import (
    CLONE_NEWIPC,
    CLONE_NEWNET,
    CLONE_NEWNS,
    PRIVATE_TMP,
    Confinement,
    RootLayout,
    inside,
)
from grader.untrusted.seccomp import seccomp_supported


class MechanismFailed(Exception):
    """One isolation mechanism could not be set up on this machine (internal)."""

    def __init__(self, mechanism: str, reason: str) -> None:
        super().__init__(f"{mechanism}: {reason}")
        self.mechanism, self.reason = mechanism, reason


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


def unreachable_in_minimal_root(paths: Sequence[Path], dirs: Sequence[str]) -> str | None:
    """The first path another uid cannot reach inside a minimal root binding ``dirs``, or None.

    The root is a fresh tmpfs in which each bound folder's parents are made anew, mode
    0755, so only the bound folders' own modes and what lies below them count: a Python
    under a home folder of mode 0700 is reachable there without changing the host.
    Both the path as written and its resolved form are walked (a venv's ``bin/python``
    is a link into the base installation).
    """
    for target in paths:
        written, real = os.path.abspath(target), os.path.realpath(target)
        for chain in (written, real):
            for folder in reversed(Path(chain).parents):
                resolved = os.path.realpath(folder)
                if not any(inside(resolved, d) for d in dirs):
                    if any(inside(d, resolved) for d in dirs):
                        continue  # a parent made fresh in the root
                    return f"{folder} (not in the minimal root)"
                mode = os.stat(resolved).st_mode
                if not mode & stat.S_IXOTH:
                    return f"{resolved} (mode {stat.filemode(mode)})"
        if not any(inside(real, d) for d in dirs):
            return f"{real} (not in the minimal root)"
        mode = os.stat(real).st_mode
        needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
        if mode & needed != needed:
            return f"{real} (mode {stat.filemode(mode)})"
    return None


def no_drop_note(blocked: str) -> str:
    return (
        f"no privilege drop: the Python installation is not readable by other users at {blocked}; "
        "install the grader with a Python every user can read (e.g. /usr/bin/python3 or a venv under /opt)"
    )


def numpy_folder() -> Path:
    """Where numpy is installed, found without importing it (the CLI starts the zygote before numpy loads)."""
    spec = importlib.util.find_spec("numpy")
    if spec is None or spec.origin is None:
        raise ImportError("numpy is not installed")
    return Path(spec.origin).parent


def python_paths() -> list[Path]:
    """What the child's interpreter must be able to read: itself, the stdlib, numpy."""
    return [Path(sys.executable), Path(os.__file__).parent, numpy_folder(), Path(sys.prefix)]


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


def hidden_in_minimal_root(hidden_paths: Sequence[Path]) -> tuple[tuple[str, ...], tuple[str, ...], list[str]]:
    """Which folders are hidden in the minimal root, which need an empty mount over them, and notes.

    A folder outside every bound folder is simply absent; one inside the Python
    installation gets an empty tmpfs over it, unless the interpreter itself is inside.
    """
    dirs = root_layout().dirs
    hidden, covers, notes = [], [], []
    for path in sorted({os.path.realpath(p) for p in hidden_paths}):
        holders = [d for d in dirs if inside(path, d)]
        if not holders:
            hidden.append(path)
        elif any(inside(d, path) for d in dirs) or any(inside(str(p.resolve()), path) for p in python_paths()):
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
    package = Path(__file__).resolve().parent.parent
    found = [package]
    if any((package.parent / name).exists() for name in (".git", "pyproject.toml", "rubrics", "solutions")):
        found.append(package.parent)
    found += [Path(prefix) / "share" / "grader" for prefix in sorted({sys.prefix, sys.base_prefix, "/usr/local"})]
    return [path for path in found if path.exists()]


def plan_protections(hidden_paths: Sequence[Path], failed: Mapping[str, str]) -> Protections:
    """The strongest isolation this machine is believed to allow, and why where it is weaker.

    ``failed`` holds the mechanisms this process has seen fail, with the first reason
    (``SandboxHost.failed_mechanisms``): they are not tried again.
    """
    filtered = seccomp_supported() and "syscall_filter" not in failed
    if not is_root():
        note = "not running as root: the submission runs as your own user and can read and write your files"
        if filtered:
            note += (
                "; a seccomp filter refuses its network sockets, keeps its processes in one group "
                "and lets it signal none but its own"
            )
        protections = Protections(
            privilege_drop=False,
            network_cut=filtered,
            hidden_paths=(),
            kill_all_processes=filtered,
            syscall_filter=filtered,
            notes=(note,),
        )
        if seccomp_supported() and not filtered:
            protections = without(protections, "syscall_filter", failed["syscall_filter"], hidden_paths)
        elif not seccomp_supported():
            protections = replace(protections, notes=(note + " (no seccomp on this platform: it has the network)",))
        return protections
    # Planned for the minimal root; ``without`` falls back to the host's modes if that root is lost.
    blocked = unreachable_in_minimal_root(python_paths(), root_layout().dirs)
    notes = [no_drop_note(blocked)] if blocked else []
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
        if mechanism in failed:
            protections = without(protections, mechanism, failed[mechanism], hidden_paths)
    return protections


def without(protections: Protections, mechanism: str, reason: str, hidden_paths: Sequence[Path]) -> Protections:
    """``protections`` with one mechanism turned off, what that implies, and a note saying why."""
    p = protections
    if mechanism == "minimal_filesystem" and p.minimal_filesystem:
        hidden, private_tmp, more = hidden_on_host(hidden_paths)
        note = f"no minimal filesystem ({reason}): the submission can read every world-readable file but the hidden folders"
        weaker = replace(p, minimal_filesystem=False, hidden_paths=hidden, private_tmp=private_tmp, notes=(note, *more))
        return without_unreachable_python(weaker)
    if mechanism == "namespaces" and p.namespaces:
        note = f"no private namespaces ({reason}): the submission can read every world-readable file and shares /tmp"
        if not p.syscall_filter:
            note += ", and it has the network"
        weaker = replace(
            p,
            namespaces=False,
            minimal_filesystem=False,
            hidden_paths=(),
            private_tmp=(),
            network_cut=p.syscall_filter,
            notes=(note, *p.notes),
        )
        return without_unreachable_python(weaker) if p.minimal_filesystem else weaker
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


def without_unreachable_python(protections: Protections) -> Protections:
    """Without a minimal root the host's own modes decide: no privilege drop if the interpreter is out of reach."""
    blocked = unreadable_for_others(python_paths()) if protections.privilege_drop else None
    if not blocked:
        return protections
    return replace(
        protections,
        privilege_drop=False,
        kill_all_processes=protections.syscall_filter,
        notes=(*protections.notes, no_drop_note(blocked)),
    )


def confinement_for(
    protections: Protections,
    workdir: str,
    root: str,
    covers: Sequence[str],
    uid: int | None,
    rlimits: Sequence[tuple[int, int, int]],
    env: dict[str, str],
    cgroup_procs: Sequence[str] = (),
    parent_pid: int = 0,
) -> Confinement:
    """What a child started under ``protections`` does to itself (``root``: where to build the minimal tree).

    ``cgroup_procs``: the submission's cgroup to join; ``parent_pid``: who forks it.
    """
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
        syscall_filter=p.syscall_filter,
        env=dict(env),
        cgroup_procs=tuple(cgroup_procs),
        parent_pid=parent_pid,
    )
