"""A child started ahead of its first call (``Sandbox.begin``): the same verdicts, limits and output as one
started at the call, with the parent's own time counted against none of them."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import pytest

from grader.sandbox.cgroup import SubmissionCgroup
from grader.sandbox.host import SandboxHost
from grader.sandbox.outcomes import CallStatus, Limits
from grader.sandbox.processes import process_state
from grader.sandbox.session import Sandbox

LIMITS = Limits(time_limit=2.0, import_time_limit=1.0, memory_bytes=1 << 30, output_bytes=1 << 20, processes=64)
BUDGETED = dataclasses.replace(LIMITS, submission_seconds=1.0)  # a budget the parent alone could spend
needs_zygote = pytest.mark.skipif(not SandboxHost().use_zygote, reason="the zygote runs on Linux only")

FAST = b"""
print("imported")


def twice(a):
    return 2 * a
"""
SLOW = b"""
import time

time.sleep(3)


def twice(a):
    return 2 * a
"""
BROKEN = b"""
def twice(a):
    return 2 * a

raise ValueError("broken at import")
"""


def call(box: Sandbox, hidden: bool = False):
    return box.call("twice", [("a", np.ones(3))], (3,), hidden)


@pytest.fixture
def booted(host):
    """A host whose zygote has answered its boot (``begin`` does nothing while it boots)."""
    zygote = host.running_zygote()
    if zygote is not None:
        deadline = time.monotonic() + 30
        while not zygote.booted() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert zygote.booted(), "the zygote did not boot"
    return host


def test_a_begun_child_answers_the_first_call_as_one_started_by_it(booted):
    with Sandbox(FAST, "fast.py", LIMITS, host=booted) as box:
        assert box.begin()
        assert not box.begin(), "a second begin starts a second child"
        outcome = call(box)
        assert outcome.status == CallStatus.OK and np.array_equal(outcome.value, 2 * np.ones(3))
        assert box.starts == 1 and box.shown_output(1000) == "imported\n"


@pytest.mark.slow
def test_the_parents_work_after_begin_does_not_turn_a_fast_import_into_a_timeout(booted):
    """The parent comes back after more than the import's limit: the import is timed again, from its own request."""
    with Sandbox(FAST, "fast.py", LIMITS, host=booted) as box:
        assert box.begin()
        time.sleep(LIMITS.import_time_limit + 0.5)
        outcome = call(box)
        assert outcome.status == CallStatus.OK, outcome
        assert box.starts == 1
        assert box.shown_output(1000) == "imported\n", "the first child's output is shown along with the second's"


@pytest.mark.slow
def test_the_parents_work_after_begin_is_not_counted_against_the_submissions_budget(booted):
    with Sandbox(FAST, "fast.py", BUDGETED, host=booted) as box:
        assert box.begin()
        time.sleep(1.5)
        assert call(box).status == CallStatus.OK


@pytest.mark.slow
def test_an_import_slower_than_its_limit_is_a_timeout_after_begin_too(booted):
    with Sandbox(SLOW, "slow.py", LIMITS, host=booted) as box:
        assert box.begin()
        started = time.monotonic()
        outcome = call(box)
        waited = time.monotonic() - started
    assert outcome.status == CallStatus.TIMEOUT and outcome.phase == "import"
    assert waited < LIMITS.import_time_limit + 1.0, "the timeout came late"


def test_an_import_that_fails_gives_the_same_outcome_begun_or_not(booted):
    outcomes = []
    for begin in (True, False):
        with Sandbox(BROKEN, "broken.py", LIMITS, host=booted) as box:
            if begin:
                assert box.begin()
            outcomes.append(call(box))
    assert outcomes[0] == outcomes[1]
    assert outcomes[0].status == CallStatus.IMPORT_ERROR and outcomes[0].message == "broken at import"


def test_closing_before_the_first_call_kills_the_begun_child(booted):
    with Sandbox(SLOW, "slow.py", LIMITS, host=booted) as box:
        assert box.begin()
        pid = box.proc.pid
    assert process_state(pid) in (None, "Z") and box.proc is None and box.handoff is None


@needs_zygote
def test_begin_does_nothing_while_the_zygote_boots(host):
    host.start_zygote()
    with Sandbox(FAST, "fast.py", LIMITS, host=host) as box:
        assert not box.begin(), "begin waited for the zygote's boot"
        assert box.proc is None
        assert call(box).status == CallStatus.OK and box.starts == 1


def test_without_a_zygote_begin_spawns_the_child_directly(host):
    host.use_zygote = False
    with Sandbox(FAST, "fast.py", LIMITS, host=host) as box:
        assert box.begin()
        assert call(box).status == CallStatus.OK and box.starts == 1


@pytest.mark.root
@pytest.mark.parametrize("start", ["zygote", "direct"])
def test_a_mechanism_that_fails_a_begun_child_is_done_without_as_at_a_call(booted, monkeypatch, start):
    booted.use_zygote = start == "zygote"
    with Sandbox(FAST, "fast.py", LIMITS, host=booted) as box:
        if box.cgroup is None:
            pytest.skip("no memory cgroup here")
        monkeypatch.setattr(SubmissionCgroup, "procs_files", property(lambda self: ("/nonexistent/cgroup.procs",)))
        assert box.begin() == (start == "zygote"), "a direct spawn fails in begin, a forked child after it"
        outcome = call(box)
        assert outcome.status == CallStatus.OK and box.cgroup is None and box.starts == 1
        assert box.protections.memory_bound.reason.startswith("cannot join it: No such file")
        assert box.shown_output(1000) == "imported\n"


def test_a_caller_away_longer_than_the_start_up_limit_takes_the_child_over_with_every_protection(booted, monkeypatch):
    """A child that said "started" long ago is no failed start: no mechanism is dropped, no output quoted."""
    import grader.sandbox.startup as startup

    source = b'print("message from the student")\n\ndef twice(a):\n    return 2 * a\n'
    with Sandbox(source, "loud.py", LIMITS, host=booted) as box:
        before = box.protections
        assert box.begin()
        monkeypatch.setattr(startup, "STARTUP_SECONDS", 0.2)
        time.sleep(0.6)
        assert call(box).status == CallStatus.OK
        assert box.protections == before and box.starts == 1
    assert not booted.failed_mechanisms
    with Sandbox(FAST, "fast.py", LIMITS, host=booted) as after:
        assert after.protections == before, "the next submission lost a protection"
        assert not any("student" in note for note in after.protections.notes)


def test_a_hidden_first_call_shows_none_of_a_begun_childs_import_output(booted):
    """As when the hidden call starts the child itself: the import ran after the last thing students may see."""
    shown = []
    for begin in (True, False):
        with Sandbox(FAST, "fast.py", LIMITS, host=booted) as box:
            if begin:
                assert box.begin()
                time.sleep(0.3)  # the import has printed by now
            assert call(box, hidden=True).status == CallStatus.OK
            shown.append(box.shown_output(1000))
    assert shown == ["", ""]


@pytest.mark.slow
def test_the_callers_work_before_the_first_call_is_not_counted_against_the_budget_without_begin(booted):
    with Sandbox(FAST, "fast.py", BUDGETED, host=booted) as box:
        time.sleep(1.5)  # building the cases, say, without a child begun
        assert call(box).status == CallStatus.OK
