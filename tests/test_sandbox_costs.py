"""Costs are per submission: a total time budget, no endless restarts, memory bounded as a whole, a uid each."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import grade, write_rubric_copy
from grader.assignment.rubric import load_rubric
from grader.grading import feedback
from grader.sandbox.budget import Budget
from grader.sandbox.cgroup import CgroupUnavailable, SubmissionCgroup
from grader.sandbox.outcomes import CallOutcome, CallStatus, Limits
from grader.sandbox.processes import process_state
from grader.sandbox.protection import without
from grader.sandbox.session import Sandbox

MiB = 1 << 20
LIMITS = Limits(time_limit=2.0, import_time_limit=10.0, memory_bytes=1 << 30, output_bytes=1 << 20, processes=64)
needs_root = pytest.mark.root  # a uid of its own and a cgroup; conftest skips with the reason where it can't


def machine_cgroup() -> str | None:
    """Why this machine gives no memory cgroup, or None when it does (then the cgroup tests run)."""
    try:
        SubmissionCgroup(f"grader-probe-{os.getpid()}", 512 * MiB, 8).close()
    except CgroupUnavailable as err:
        return str(err)
    return None


def call(box: Sandbox, function: str, hidden: bool = False) -> CallOutcome:
    return box.call(function, [("a", np.ones(3))], (3,), hidden)


# -- the time budget and repeated deaths -----------------------------------------------


def test_the_budget_cuts_deadlines_and_says_why_a_case_was_not_run():
    now = [100.0]
    budget = Budget(5.0, clock=lambda: now[0])
    assert budget.deadline(102.0) == 102.0 and not budget.cut(102.0)
    assert budget.deadline(109.0) == 105.0 and budget.cut(105.0)
    assert budget.refusal("grad_X") is None
    now[0] = 105.0
    refused = budget.refusal("grad_X")
    assert (refused.status, refused.problem, refused.limit) == (CallStatus.NOT_RUN, "time_limit", 5.0)
    for hidden in (False, True):
        assert feedback.call_fault(refused, "grad_X", hidden) == (
            "not run: the submission used up its 5 s time limit (for every import and call together) before this case"
        )


def test_a_function_that_killed_its_process_the_same_way_twice_is_not_restarted_for_it():
    budget = Budget(60.0)
    exit_3 = CallOutcome(CallStatus.EXITED, exit_code=3)
    exit_4 = CallOutcome(CallStatus.EXITED, exit_code=4)
    caught = CallOutcome(CallStatus.EXITED)  # sys.exit caught by the child: it lives on
    bus = CallOutcome(CallStatus.CRASHED, error_type="SIGBUS")
    segv = CallOutcome(CallStatus.CRASHED, error_type="SIGSEGV")
    for outcome in (exit_3, bus, segv, caught, caught):
        budget.record("grad_X", outcome)
    assert budget.refusal("grad_X") is None, "an exit, two different signals and a caught sys.exit: no two the same"
    budget.record("grad_X", exit_4)
    budget.answered("grad_W")  # another function's answer doesn't reset grad_X's count
    refused = budget.refusal("grad_X")
    assert (refused.status, refused.problem) == (CallStatus.NOT_RUN, "same_deaths"), "any exit code is an exit"
    assert feedback.call_fault(refused, "grad_X", True) == (
        "not run: grad_X ended its process the same way 2 times in a row, so it was not started again for the "
        "remaining cases"
    )
    assert budget.refusal("grad_W") is None, "the other functions still get a child"
    again = Budget(60.0)
    for outcome in (exit_3, None, exit_3, None, exit_3):
        again.answered("grad_X") if outcome is None else again.record("grad_X", outcome)
    assert again.refusal("grad_X") is None, "deaths between answered calls are not a child that keeps dying"


SLOW_AND_DYING = b"""
import os
import time

time.sleep(0.6)


def dies(a):
    os._exit(3)


def fine(a):
    return 2 * a
"""


@pytest.mark.slow
def test_a_child_that_dies_on_every_call_is_restarted_twice_then_its_cases_are_not_run(host):
    with Sandbox(SLOW_AND_DYING, "probe.py", LIMITS, expected_calls=6, host=host) as box:
        started = time.monotonic()
        outcomes = [call(box, "dies") for _ in range(4)]
        assert [o.status for o in outcomes] == [CallStatus.EXITED] * 2 + [CallStatus.NOT_RUN] * 2
        assert outcomes[2].problem == "same_deaths"
        assert time.monotonic() - started < 4 * 0.6, "the refused calls cost no re-import"
        assert call(box, "fine").status == CallStatus.OK, "the other functions are graded as before"
        assert box.starts == 3


@pytest.mark.slow
def test_a_submission_that_re_imports_slowly_and_dies_stays_within_its_time_limit(tmp_path):
    """The issue's case: a slow import and os._exit on every call. 40 calls used to cost 40 imports."""
    source = tmp_path / "quiz4.py"
    functions = "".join(f"\n\ndef {name}(*args):\n    os._exit(3)\n" for name in ("grad_X", "grad_S", "grad_W2"))
    source.write_text(f"import os\nimport time\n\ntime.sleep(1.0)\n{functions}")
    rubric = load_rubric(write_rubric_copy(tmp_path, submission_time_limit=4.0, import_time_limit=3.0))
    started = time.monotonic()
    _, document = grade(source, rubric)
    assert time.monotonic() - started < 4.0 + 3.0, "the budget plus at most one import limit"
    messages = [case["message"] for eq in document["equations"] for case in eq["cases"]]
    budget_words = "not run: the submission used up its 4 s time limit (for every import and call together)"
    assert any(budget_words in m for m in messages), messages
    assert all(case["status"] in ("error", "skipped") for eq in document["equations"] for case in eq["cases"])


def test_the_time_limit_is_a_rubric_setting_with_a_safe_default(tmp_path):
    rubric = load_rubric(write_rubric_copy(tmp_path))
    assert rubric.settings.submission_time_limit == 60.0 and rubric.settings.submission_memory_mb == 2048


# -- memory as a whole ----------------------------------------------------------------

FORKS_HOLDING_MEMORY = b"""
import os
import time

import numpy as np


def hold(a):
    children = []
    for _ in range(4):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            block = np.ones(150 * 1024 * 1024 // 8)  # touched: 150 MiB resident in each
            time.sleep(0.5)
            os._exit(0 if block[-1] == 1.0 else 1)
        children.append(pid)
    held = sum(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0 for pid in children)
    return np.array([float(len(children)), float(held), 0.0])
"""
SMALL = Limits(
    time_limit=30.0,  # first touches of fresh memory are slow on a busy VM
    import_time_limit=10.0,
    memory_bytes=512 * MiB,
    output_bytes=1 << 20,
    processes=64,
    submission_memory_bytes=350 * MiB,
)


@pytest.mark.slow
@needs_root
def test_as_root_a_cgroup_bounds_the_memory_of_all_the_processes_together(host):
    reason = machine_cgroup()
    if reason is not None:
        pytest.skip(f"no memory cgroup here: {reason}")
    with Sandbox(FORKS_HOLDING_MEMORY, "probe.py", SMALL, host=host) as box:
        outcome = call(box, "hold")
        bound = box.protections.memory_bound
        folders = list(box.cgroup.folders)
        assert bound.mechanism.startswith("cgroup v") and bound.total_bytes == 350 * MiB and bound.reason == ""
        assert outcome.status == CallStatus.OK, outcome.message
        forked, held = outcome.value[:2]
        assert forked == 4, "a fork is allowed: the memory is what is bounded"
        assert held <= 2, f"{held:g} children held 150 MiB each at once under a 350 MiB bound"
    assert all(not Path(folder).exists() for folder in folders), "the sandbox's cgroup is removed at close"


@needs_root
def test_without_a_cgroup_a_process_limit_makes_the_product_bounded_and_the_report_says_why(host):
    host.remember_failure("memory_cgroup", "no cgroup v1 memory hierarchy")  # as on a machine without one
    with Sandbox(FORKS_HOLDING_MEMORY, "probe.py", SMALL, host=host) as box:
        outcome = call(box, "hold")
        bound = box.protections.memory_bound
        assert (bound.mechanism, bound.processes, bound.total_bytes) == ("process limit", 1, 512 * MiB)
        assert bound.reason == "no cgroup v1 memory hierarchy"
        assert box.cgroup is None
        assert outcome.status == CallStatus.OK and outcome.value[0] == 0, "RLIMIT_NPROC 1: no fork succeeds"
        document = box.protections.as_dict()["memory_bound"]
        assert document == {
            "mechanism": "process limit",
            "total_mb": 512,
            "processes": 1,
            "reason": "no cgroup v1 memory hierarchy",
        }


@needs_root
@pytest.mark.parametrize("start", ["zygote", "direct"])
def test_a_cgroup_the_child_cannot_join_falls_back_to_the_process_limit_and_says_why(host, monkeypatch, start):
    reason = machine_cgroup()
    if reason is not None:
        pytest.skip(f"no memory cgroup here: {reason}")
    host.use_zygote = start == "zygote"
    monkeypatch.setattr(SubmissionCgroup, "procs_files", property(lambda self: ("/nonexistent/cgroup.procs",)))
    with Sandbox(FORKS_HOLDING_MEMORY, "probe.py", SMALL, host=host) as box:
        assert box.cgroup is not None
        outcome = call(box, "hold")
        bound = box.protections.memory_bound
        assert outcome.status == CallStatus.OK and box.cgroup is None
        assert bound.mechanism == "process limit" and bound.reason.startswith("cannot join it: No such file")
        assert box.protections.notes == (), "a bound is still in force: not weaker isolation"
    assert host.failed_mechanisms["memory_cgroup"].startswith("No such file")


def test_without_root_the_report_says_only_each_process_is_bounded(host, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with Sandbox(b"", "probe.py", LIMITS, host=host) as box:
        bound = box.protections.memory_bound
    assert bound.mechanism == "per process" and bound.total_bytes is None and bound.processes is None
    assert bound.reason.startswith("not running as root")


# -- a uid per submission; nothing left behind counts against the next -------------------

ZOMBIES = b"""
import ctypes
import os

import numpy as np

CLONE_PARENT, SIGCHLD = 0x8000, 17


def leave_zombies(a):
    libc = ctypes.CDLL(None, use_errno=True)
    made = 0
    for _ in range(63):
        pid = libc.syscall(56, CLONE_PARENT | SIGCHLD, 0, 0, 0, 0)  # clone: a sibling, the zygote's child
        if pid == 0:
            os._exit(0)
        made += pid > 0
    return np.array([float(made), 0.0, 0.0])
"""
FORKS = b"""
import os

import numpy as np


def fork_many(a):
    children = []
    for _ in range(60):
        try:
            pid = os.fork()
        except OSError:
            break
        if pid == 0:
            os._exit(0)
        children.append(pid)
    for pid in children:
        os.waitpid(pid, 0)
    return np.array([float(len(children)), 0.0, 0.0])
"""


@needs_root
@pytest.mark.parametrize("filtered", [True, False], ids=["filter", "no-filter"])
def test_zombies_one_submission_leaves_never_cost_the_next_one_its_processes(host, filtered):
    """63 clone(CLONE_PARENT) zombies used to exhaust the next student's process limit in a batch worker."""
    with Sandbox(ZOMBIES, "a.py", LIMITS, host=host) as first:
        if not filtered:
            first.protections = without(first.protections, "syscall_filter", "test", [])
        made = call(first, "leave_zombies")
        assert made.status == CallStatus.OK
        assert made.value[0] == (0 if filtered else 63), "the filter refuses CLONE_PARENT"
        first_uid = first.uid
    with Sandbox(FORKS, "b.py", LIMITS, host=host) as second:
        assert second.uid != first_uid, "each submission has a uid of its own"
        outcome = call(second, "fork_many")
        assert outcome.status == CallStatus.OK and outcome.value[0] == 60
    zombies = [pid for pid in child_states(host.zygote.pid) if pid[1] == "Z"]
    assert zombies == [], "the zygote reaps what it did not fork"


def child_states(parent: int) -> list[tuple[int, str | None]]:
    with open(f"/proc/{parent}/task/{parent}/children") as listed:
        return [(int(pid), process_state(int(pid))) for pid in listed.read().split()]


# -- which cgroup: the v2 and v1 layouts, read from /proc -------------------------------


def fake_hierarchy(tmp_path: Path, monkeypatch, version: int, controllers: str = "memory pids") -> Path:
    """A cgroup tree in a folder, as /proc/self/mountinfo and /proc/self/cgroup would describe it."""
    import grader.sandbox.cgroup as cgroup

    own = tmp_path / ("unified" if version == 2 else "memory") / "grader.scope"
    own.mkdir(parents=True)
    if version == 2:
        (own / "cgroup.controllers").write_text(controllers + "\n")
        (own / "cgroup.subtree_control").write_text("")
        mounts = [(str(tmp_path / "unified"), "/", "cgroup2", {"rw"})]
        paths = {"": "/grader.scope"}
    else:
        mounts = [(str(tmp_path / "memory"), "/", "cgroup", {"rw", "memory"})]
        paths = {"memory": "/grader.scope", "": "/"}
    monkeypatch.setattr(cgroup, "_mounts", lambda: mounts)
    monkeypatch.setattr(cgroup, "_own_paths", lambda: paths)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    return own


def test_a_cgroup_v2_group_gets_its_memory_swap_and_process_limits_and_is_removed(tmp_path, monkeypatch):
    own = fake_hierarchy(tmp_path, monkeypatch, 2)
    group = SubmissionCgroup("grader-5a", 700 * MiB, 64)
    folder = own / "grader-5a"
    assert group.version == 2 and group.procs_files == (str(folder / "cgroup.procs"),)
    assert (own / "cgroup.subtree_control").read_text() == "+memory +pids", "the controllers are enabled for it"
    assert (folder / "memory.max").read_text() == str(700 * MiB) and (folder / "pids.max").read_text() == "64"
    for name in os.listdir(folder):  # a real cgroup folder's files vanish with it; here rmdir needs it empty
        (folder / name).unlink()
    group.close()
    assert not folder.exists()


def test_a_cgroup_v2_without_the_memory_controller_falls_back_and_says_why(tmp_path, monkeypatch):
    fake_hierarchy(tmp_path, monkeypatch, 2, controllers="cpu hugetlb")
    with pytest.raises(CgroupUnavailable, match="has no memory controller; no cgroup v1 memory hierarchy"):
        SubmissionCgroup("grader-5a", 700 * MiB, 64)


def test_a_cgroup_v1_memory_group_gets_its_memory_and_swap_limits(tmp_path, monkeypatch):
    own = fake_hierarchy(tmp_path, monkeypatch, 1)
    (own / "grader-5a").mkdir()  # left by a killed grader with this pid: made again
    for stale in ("grader-999999999-3", f"grader-{os.getpid()}-4", "grader-1-5", "other-group"):
        (own / stale).mkdir()
    group = SubmissionCgroup("grader-5a", 700 * MiB, 64)
    left = {p.name for p in own.iterdir() if p.is_dir()}
    assert left == {"grader-1-5", f"grader-{os.getpid()}-4", "grader-5a", "other-group"}, "only a dead grader's go"
    assert group.version == 1 and group.processes is None, "no v1 pids hierarchy here: RLIMIT_NPROC counts them"
    assert (own / "grader-5a" / "memory.limit_in_bytes").read_text() == str(700 * MiB)
