"""Signals to `grade FILE`: one line and an exit code, and no process of the submission outlives the grader."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import write_rubric_copy
from grader.sandbox.cgroup import CgroupUnavailable, find_hierarchies
from grader.sandbox.host import SandboxHost
from grader.sandbox.outcomes import Limits
from grader.sandbox.processes import process_state
from grader.sandbox.session import Sandbox

SPIN = "def grad_X(dY, W):\n    while True:\n        pass\n"
NOBODY = 65534
LIMITS = Limits(time_limit=2.0, import_time_limit=10.0, memory_bytes=1 << 30, output_bytes=1 << 20, processes=64)

# The grader itself runs as uid 65534: root, and an interpreter that uid can read on the host.
AS_NOBODY = pytest.mark.root(readable_on_host=True)
pytestmark = pytest.mark.slow  # each test runs `grade` and kills it: seconds apiece


def parents() -> dict[int, int]:
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                data = stat.read()
            found[int(entry)] = int(data[data.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return found


def descendants(pid: int) -> set[int]:
    tree = parents()
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in tree.items() if parent in frontier} - found
        found |= frontier
    return found


def alive(pids: set[int]) -> list[int]:
    """Those still running (not zombies): a pid reused within the test's seconds is not a concern."""
    return [pid for pid in pids if process_state(pid) not in (None, "Z", "X")]


@pytest.fixture
def folder():
    """A private folder that uid 65534 can use too (pytest's tmp folders are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="grader-signals-"))
    path.chmod(0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def start_spinning_grade(folder: Path, as_nobody: bool) -> tuple[subprocess.Popen, set[int]]:
    """`grade` on a file whose grad_X spins, once the spinning child runs; with the grader's descendants."""
    rubric = write_rubric_copy(folder, time_limit=60.0, import_time_limit=10.0)
    rubric.chmod(0o644)
    submission = folder / "quiz4.py"
    submission.write_text(SPIN)
    submission.chmod(0o644)
    prefix = ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups"] if as_nobody else []
    command = [*prefix, sys.executable, "-m", "grader", str(submission), "--rubric", str(rubric), "-o", "r.json"]
    proc = subprocess.Popen(command, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        tree, family = descendants(proc.pid), parents()
        if any(family.get(p) in tree for p in tree):  # the zygote's child: the sandbox is running
            time.sleep(0.5)  # into the call
            return proc, descendants(proc.pid)
        time.sleep(0.05)
    proc.kill()
    pytest.fail("the sandboxed child never started")


@pytest.mark.parametrize(
    ("signum", "code", "line"),
    [
        (signal.SIGINT, 130, "interrupted: no report was written"),
        (signal.SIGTERM, 128 + signal.SIGTERM, "stopped by SIGTERM: no report was written"),
        (signal.SIGHUP, 128 + signal.SIGHUP, "stopped by SIGHUP: no report was written"),
    ],
    ids=["ctrl-c", "sigterm", "sighup"],
)
@pytest.mark.parametrize("as_nobody", [False, pytest.param(True, marks=AS_NOBODY)], ids=["root", "nonroot"])
def test_a_signal_to_grade_prints_one_line_exits_with_its_code_and_stops_every_child(
    folder, signum, code, line, as_nobody
):
    if as_nobody and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run as uid 65534")
    proc, spawned = start_spinning_grade(folder, as_nobody)
    assert spawned, "the grader had started its sandbox"
    os.kill(proc.pid, signum)  # setpriv execs the grader: the pid is the grader's either way
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert stderr.strip().splitlines() == [line], stderr
    deadline = time.monotonic() + 3
    while alive(spawned) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(spawned) == [], "a process of the submission outlived the grader"


@pytest.mark.parametrize("as_nobody", [False, pytest.param(True, marks=AS_NOBODY)], ids=["root", "nonroot"])
def test_every_child_dies_with_a_grader_killed_outright(folder, as_nobody):
    """SIGKILL can't be handled: the zygote dies with the grader, and its children with it (parent-death signals)."""
    if as_nobody and shutil.which("setpriv") is None:
        pytest.skip("needs setpriv (util-linux) to run as uid 65534")
    proc, spawned = start_spinning_grade(folder, as_nobody)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 3
    while alive(spawned) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(spawned) == [], "a child of the zygote kept spinning after the grader died"
    if not as_nobody:
        left_groups(proc.pid)


def left_groups(grader: int) -> None:
    """A grader killed outright can't remove its cgroup: the next sandbox made on the machine does."""
    try:
        folders = [h.folder for h in find_hierarchies()]
    except CgroupUnavailable:
        return
    mine = [Path(f) / name for f in folders for name in os.listdir(f) if name.startswith(f"grader-{grader}-")]
    assert mine, "the killed grader had a cgroup"
    with Sandbox(b"", "probe.py", LIMITS, host=SandboxHost()) as box:
        assert box.cgroup is not None
    assert [path for path in mine if path.exists()] == []
