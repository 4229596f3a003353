"""A cgroup per sandbox: the memory and the number of processes of a submission as a whole.

RLIMIT_AS bounds each process; a submission that forks gets that much per process.
As root, where the machine has a writable memory cgroup, each ``Sandbox`` makes a
group of its own under the grader's own cgroup, sets its memory limit (no swap) and
its process limit, and every child joins it before anything else
(``confine.confine``'s first step): every process of the submission, forked or
not, counts against one limit, and the kernel's OOM killer picks within the group.

cgroup v2 (one hierarchy; ``memory.max``, ``memory.swap.max``, ``pids.max``,
``cgroup.kill``) is used when it has the memory controller; else cgroup v1's memory
hierarchy (``memory.limit_in_bytes``, ``memory.memsw.limit_in_bytes``), with its pids
hierarchy too when the sandbox has no uid of its own (with one, RLIMIT_NPROC counts). Anything else raises ``CgroupUnavailable``
with the reason, and the sandbox bounds the product with RLIMIT_NPROC instead.

Trusted side: the grader makes, fills and removes the folders; the child only writes
its own pid into ``cgroup.procs`` files it is given. Reads /proc and /sys only.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass

from grader.sandbox.outcomes import Limits, MemoryBound

REMOVE_TRIES = 50  # rmdir waits for the last member's exit to be accounted (a few ms at most)


class CgroupUnavailable(Exception):
    """This machine gives the grader no memory cgroup it can make (internal); the message says why."""


@dataclass(frozen=True)
class Hierarchy:
    version: int
    controller: str  # "" for v2, "memory" or "pids" for v1
    folder: str  # the grader's own cgroup in it


def _mounts() -> list[tuple[str, str, str, set[str]]]:
    """(mount point, root within the hierarchy, fs type, super options) of every cgroup mount."""
    found = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as info:
            for line in info:
                left, _, right = line.partition(" - ")
                fields, tail = left.split(), right.split()
                if len(fields) >= 5 and len(tail) >= 3 and tail[0] in ("cgroup", "cgroup2"):
                    found.append((fields[4], fields[3], tail[0], set(tail[2].split(","))))
    except OSError:
        pass
    return found


def _own_paths() -> dict[str, str]:
    """The grader's cgroup per v1 controller, and under "" its v2 one (from /proc/self/cgroup)."""
    paths: dict[str, str] = {}
    try:
        with open("/proc/self/cgroup", encoding="utf-8") as own:
            for line in own:
                _, controllers, path = line.rstrip("\n").split(":", 2)
                for name in controllers.split(",") if controllers else [""]:
                    paths[name] = path
    except (OSError, ValueError):
        pass
    return paths


def _folder(mount: str, root: str, path: str) -> str:
    """The grader's cgroup folder under ``mount``, whose own root is ``root`` in the hierarchy."""
    if root != "/" and (path == root or path.startswith(root + "/")):
        path = path[len(root) :]
    return os.path.join(mount, path.lstrip("/"))


def find_hierarchies() -> list[Hierarchy]:
    """Where to make the groups: a v2 hierarchy with memory, else v1 memory (and v1 pids); or why not."""
    mounts, own = _mounts(), _own_paths()
    reasons = []
    for mount, root, fstype, _ in mounts:
        if fstype != "cgroup2" or "" not in own:
            continue
        folder = _folder(mount, root, own[""])
        try:
            with open(os.path.join(folder, "cgroup.controllers"), encoding="ascii") as controllers:
                available = controllers.read().split()
        except OSError as err:
            reasons.append(f"cgroup v2 at {mount}: {err.strerror}")
            continue
        if "memory" in available:
            return [Hierarchy(2, "", folder)]
        reasons.append(f"cgroup v2 at {mount} has no memory controller")
    memory = [m for m in mounts if m[2] == "cgroup" and "memory" in m[3]]
    if memory and "memory" in own:
        found = [Hierarchy(1, "memory", _folder(memory[0][0], memory[0][1], own["memory"]))]
        pids = [m for m in mounts if m[2] == "cgroup" and "pids" in m[3]]
        if pids and "pids" in own:
            found.append(Hierarchy(1, "pids", _folder(pids[0][0], pids[0][1], own["pids"])))
        return found
    reasons.append("no cgroup v1 memory hierarchy")
    raise CgroupUnavailable("; ".join(reasons) if reasons else "no cgroup file system is mounted")


def _write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as handle:
        handle.write(value)


def group_name(serial: int) -> str:
    """A sandbox's group name: ``grader-<pid of its grader>-<serial>``, so a stale one's owner is known."""
    return f"grader-{os.getpid()}-{serial:x}"


def remove_stale(folder: str) -> None:
    """Remove the empty groups of graders that are gone (killed outright, they could not remove their own)."""
    try:
        entries = os.listdir(folder)
    except OSError:
        return
    for entry in entries:
        parts = entry.split("-")
        if len(parts) != 3 or parts[0] != "grader" or not parts[1].isdigit():
            continue
        if int(parts[1]) != os.getpid() and not os.path.exists(f"/proc/{parts[1]}"):
            try:
                os.rmdir(os.path.join(folder, entry))
            except OSError:
                pass  # not empty (a process of it still runs) or already gone


class SubmissionCgroup:
    """One sandbox's group(s): made with the limits set, joined by each child, emptied and removed at close."""

    def __init__(self, name: str, memory_bytes: int, processes: int, count_processes: bool = True) -> None:
        """``count_processes`` False: no v1 pids group (joining each hierarchy costs a child ~5 ms, and a
        sandbox uid's RLIMIT_NPROC counts them already); v2's pids.max comes with the one group anyway."""
        if os.geteuid() != 0:
            raise CgroupUnavailable("not running as root")
        hierarchies = [h for h in find_hierarchies() if count_processes or h.controller != "pids"]
        self.version = hierarchies[0].version
        self.folders: list[str] = []
        self.processes = None
        try:
            for hierarchy in hierarchies:
                self._make(hierarchy, name, memory_bytes, processes)
        except OSError as err:
            self.close()
            where = err.filename or "a cgroup"
            raise CgroupUnavailable(f"cannot set up {where}: {err.strerror}") from err
        self.memory_bytes = memory_bytes

    def _make(self, hierarchy: Hierarchy, name: str, memory_bytes: int, processes: int) -> None:
        folder = os.path.join(hierarchy.folder, name)
        if hierarchy.version == 2:
            control = os.path.join(hierarchy.folder, "cgroup.subtree_control")
            with open(control, encoding="ascii") as enabled:
                on = enabled.read().split()
            missing = [c for c in ("memory", "pids") if c not in on]
            if missing:  # fails (EBUSY) in a non-root cgroup that holds processes: then no cgroup
                _write(control, " ".join(f"+{c}" for c in missing))
        remove_stale(hierarchy.folder)
        try:
            os.mkdir(folder, 0o755)
        except FileExistsError:  # left by a grader that had this pid and was killed: empty, or it can't go
            os.rmdir(folder)
            os.mkdir(folder, 0o755)
        self.folders.append(folder)
        if hierarchy.version == 2:
            _write(os.path.join(folder, "memory.max"), str(memory_bytes))
            if os.path.exists(os.path.join(folder, "memory.swap.max")):
                _write(os.path.join(folder, "memory.swap.max"), "0")
            _write(os.path.join(folder, "pids.max"), str(processes))
            self.processes = processes
        elif hierarchy.controller == "memory":
            _write(os.path.join(folder, "memory.limit_in_bytes"), str(memory_bytes))
            if os.path.exists(os.path.join(folder, "memory.memsw.limit_in_bytes")):
                _write(os.path.join(folder, "memory.memsw.limit_in_bytes"), str(memory_bytes))
        else:
            _write(os.path.join(folder, "pids.max"), str(processes))
            self.processes = processes

    @property
    def procs_files(self) -> tuple[str, ...]:
        """The files a child writes its pid into to join every group."""
        return tuple(os.path.join(folder, "cgroup.procs") for folder in self.folders)

    def members(self) -> list[int]:
        pids: set[int] = set()
        for path in self.procs_files:
            try:
                with open(path, encoding="ascii") as procs:
                    pids |= {int(p) for p in procs.read().split()}
            except (OSError, ValueError):
                pass
        return sorted(pids)

    def kill_members(self) -> None:
        """SIGKILL whatever is still in the group (the uid sweep's net for a child with no uid of its own)."""
        for folder in self.folders:
            kill_file = os.path.join(folder, "cgroup.kill")
            if self.version == 2 and os.path.exists(kill_file):
                try:
                    _write(kill_file, "1")
                except OSError:
                    pass
        for _ in range(10):  # v1: members listed then killed; a fork in between is caught next pass
            members = self.members()
            if not members:
                return
            for pid in members:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.002)

    def close(self) -> None:
        """Kill what is left in the group and remove its folders (a member not yet accounted for is waited for)."""
        self.kill_members()
        for folder in reversed(self.folders):
            for _ in range(REMOVE_TRIES):
                try:
                    os.rmdir(folder)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.002)
        self.folders = []


# -- the bound in force ------------------------------------------------------------------


def process_cap(limits: Limits) -> int:
    """RLIMIT_NPROC without a cgroup: as many processes as keep processes x RLIMIT_AS within the budget."""
    return max(1, min(limits.processes, limits.submission_memory_bytes // limits.memory_bytes))


def fallback_bound(limits: Limits, own_uid: bool, reason: str) -> MemoryBound:
    """The bound without a cgroup: the process limit of the sandbox's own uid, else only RLIMIT_AS per process."""
    if not own_uid:
        why = f"{reason}; without a uid of its own the submission's processes can't be counted"
        return MemoryBound("per process", None, None, why)
    cap = process_cap(limits)
    return MemoryBound("process limit", cap * limits.memory_bytes, cap, reason)


def bound_memory(
    name: str, limits: Limits, own_uid: bool, failed: dict[str, str]
) -> tuple[SubmissionCgroup | None, MemoryBound]:
    """A cgroup for one sandbox and the bound it gives, or None and the fallback's, with the reason.

    ``failed`` holds the mechanisms this process saw fail (``SandboxHost.failed_mechanisms``);
    a cgroup that can't be made is added to it, so later sandboxes don't try again.
    """
    reason = failed.get("memory_cgroup")
    if reason is None:
        try:
            group = SubmissionCgroup(
                name, limits.submission_memory_bytes, limits.processes, count_processes=not own_uid
            )
        except CgroupUnavailable as err:
            reason = failed.setdefault("memory_cgroup", str(err))
        else:
            processes = group.processes or (limits.processes if own_uid else None)
            return group, MemoryBound(f"cgroup v{group.version}", limits.submission_memory_bytes, processes)
    return None, fallback_bound(limits, own_uid, reason)
