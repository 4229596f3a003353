"""The zygote: its children behave like spawned ones, can't reach it, and the sandbox does without it when it fails."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

import grader.sandbox.zygote_client as zygote_client
from grader.grading import feedback
from grader.sandbox.host import SandboxHost
from grader.sandbox.outcomes import CallStatus, Limits
from grader.sandbox.processes import ForkedChild, SpawnedChild
from grader.sandbox.session import Sandbox
from grader.untrusted.seccomp import seccomp_supported

LIMITS = Limits(time_limit=2.0, import_time_limit=10.0, memory_bytes=1 << 30, output_bytes=1 << 20, processes=64)
PROBE = b"""
import os
import signal


def descriptors(a):
    raise ValueError(" ".join(sorted(os.listdir("/proc/self/fd"), key=int)))


def attack(a):
    parent = os.getppid()
    for send in (
        lambda: os.kill(parent, signal.SIGKILL),
        lambda: os.killpg(os.getpgid(parent), signal.SIGKILL),
        lambda: os.kill(-1, signal.SIGKILL),
    ):
        try:
            send()
        except OSError:
            pass
    return a


def twice(a):
    return 2 * a


def crash(a):
    os.kill(os.getpid(), signal.SIGSEGV)
"""
needs_zygote = pytest.mark.skipif(not SandboxHost().use_zygote, reason="the zygote runs on Linux only")


def call(box: Sandbox, function: str):
    return box.call(function, [("a", np.ones(3))], (3,), False)


@needs_zygote
def test_children_are_forked_by_the_zygote_and_hold_only_their_own_descriptors(host):
    with Sandbox(PROBE, "probe.py", LIMITS, expected_calls=2, host=host) as box:
        outcome = call(box, "twice")
        assert outcome.status == CallStatus.OK and np.array_equal(outcome.value, 2 * np.ones(3))
        assert isinstance(box.proc, ForkedChild)
        listing = call(box, "descriptors").message  # 0 /dev/null, 1-2 output, 3-4 pipes, 5 the listing itself
    assert listing == "0 1 2 3 4 5", "the socket to the zygote or a grader descriptor reached the child"


RANDOM = b"""
import random

import numpy as np


def numpy_draw(a):
    return np.random.rand(3)


def python_draw(a):
    return np.array([random.random() for _ in range(3)])
"""


@needs_zygote
def test_children_of_one_zygote_draw_different_random_numbers(host):
    draws = []
    for _ in range(2):
        with Sandbox(RANDOM, "random_probe.py", LIMITS, expected_calls=2, host=host) as box:
            outcomes = [call(box, "numpy_draw"), call(box, "python_draw")]
            assert all(o.status == CallStatus.OK for o in outcomes) and isinstance(box.proc, ForkedChild)
            draws.append([tuple(o.value) for o in outcomes])
    (numpy_1, python_1), (numpy_2, python_2) = draws
    assert numpy_1 != numpy_2, "numpy's global generator starts alike in every child"
    assert python_1 != python_2, "random's generator starts alike in every child"


@needs_zygote
def test_a_crash_is_named_from_the_wait_status_the_zygote_reports_and_the_next_call_starts_afresh(host):
    with Sandbox(PROBE, "probe.py", LIMITS, expected_calls=2, host=host) as box:
        crashed = call(box, "crash")
        again = call(box, "twice")
    assert crashed.status == CallStatus.CRASHED and crashed.error_type == "SIGSEGV"
    assert "segmentation fault" in feedback.call_fault(crashed, "crash", hidden=False)  # the sandbox gives the signal
    assert again.status == CallStatus.OK and box.starts == 2


@needs_zygote
@pytest.mark.skipif(os.geteuid() != 0 and not seccomp_supported(), reason="needs the filter or the uid drop")
def test_a_child_can_signal_neither_the_zygote_nor_the_grader(host):
    with Sandbox(PROBE, "probe.py", LIMITS, host=host) as box:
        outcome = call(box, "attack")
        zygote = host.zygote
        assert outcome.status == CallStatus.OK
        assert zygote.proc.poll() is None and zygote.usable, "the child killed its zygote"


@needs_zygote
@pytest.mark.root  # the replacement starts for the sweep of the sandbox uid, when the child closes
def test_a_zygote_that_died_is_replaced_and_the_grade_is_unaffected(host):
    host.start_zygote()
    first = host.zygote
    first.proc.kill()
    first.proc.wait()
    with Sandbox(PROBE, "probe.py", LIMITS, host=host) as box:
        assert call(box, "twice").status == CallStatus.OK
    assert host.zygote is not first and host.zygote.usable


def test_a_zygote_that_never_boots_leaves_every_child_to_a_direct_spawn(host, monkeypatch):
    monkeypatch.setattr(zygote_client, "ZYGOTE_PROGRAM", "import sys; sys.exit(3)")
    for _ in range(zygote_client.ZYGOTE_RETRIES + 1):
        with Sandbox(PROBE, "probe.py", LIMITS, expected_calls=2, host=host) as box:
            assert call(box, "twice").status == CallStatus.OK
            assert isinstance(box.proc, SpawnedChild)
            crashed = call(box, "crash")
            assert crashed.status == CallStatus.CRASHED and crashed.error_type == "SIGSEGV"
    assert host.running_zygote() is None


def test_without_a_zygote_children_are_spawned_directly(host):
    host.use_zygote = False
    with Sandbox(PROBE, "probe.py", LIMITS, host=host) as box:
        outcome = call(box, "twice")
        assert outcome.status == CallStatus.OK and isinstance(box.proc, SpawnedChild)
        listing = call(box, "descriptors").message.split()
    assert listing[:3] == ["0", "1", "2"] and len(listing) == 6


@needs_zygote
@pytest.mark.root
def test_closing_a_sandbox_leaves_no_process_of_its_uid_even_after_the_zygote_died(host):
    daemon = (
        PROBE
        + b"""

def spawn_daemon(a):
    if os.fork() == 0:
        try:
            os.setsid()
        except OSError:
            pass
        while True:
            pass
    return a
"""
    )
    with Sandbox(daemon, "probe.py", LIMITS, host=host) as box:
        assert call(box, "spawn_daemon").status == CallStatus.OK
        host.zygote.proc.send_signal(signal.SIGKILL)
        host.zygote.proc.wait()
        uid = box.uid
    alive = [pid for pid in os.listdir("/proc") if pid.isdigit() and owner_of(pid) == uid]
    assert alive == []


def owner_of(pid: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return None
    if fields.get("State", "").split()[:1] == ["Z"]:
        return None
    return int(fields["Uid"].split()[0])


@needs_zygote
def test_a_request_interrupted_before_its_reply_closes_the_zygote_so_no_reply_is_misread(host, monkeypatch):
    host.start_zygote()
    zygote = host.zygote
    real = zygote_client.Zygote._reply

    def interrupted(self, timeout):
        monkeypatch.setattr(zygote_client.Zygote, "_reply", real)
        raise KeyboardInterrupt

    monkeypatch.setattr(zygote_client.Zygote, "_reply", interrupted)
    with pytest.raises(KeyboardInterrupt):
        zygote.request({"op": "sweep", "uid": 12345})
    assert not zygote.usable and zygote.proc.poll() is not None
    with Sandbox(PROBE, "probe.py", LIMITS, host=host) as box:
        assert call(box, "twice").status == CallStatus.OK


@pytest.mark.root
def test_a_uid_is_swept_once_per_child_and_once_before_its_first_child_in_a_process(host, monkeypatch):
    swept = []
    real = host.sweep_uid
    monkeypatch.setattr(
        host, "sweep_uid", lambda uid: (swept.append(uid), real(uid))
    )  # a fresh host: as in a fresh process
    with Sandbox(PROBE, "probe.py", LIMITS, expected_calls=2, host=host) as box:
        call(box, "twice")
        call(box, "crash")  # a second child: its predecessor's uid is swept when it is replaced
        call(box, "twice")
    assert len(swept) == 3, "before the first child, after the crashed one, at close"
    with Sandbox(PROBE, "probe.py", LIMITS, host=host) as box:
        call(box, "twice")
    assert len(set(swept)) == 2, "the next submission has a uid of its own (issue 16)"
    assert len(swept) == 5, "its uid, new to this process, is swept before its first child and at close"


def test_the_zygote_boot_request_fits_well_inside_one_socket_message():
    """One SOCK_SEQPACKET message must fit the send buffer (~208 KiB by default); keep a wide margin."""
    message = json.dumps({"op": "boot", "code": zygote_client.untrusted_code()}).encode()
    assert len(message) < 100_000


WHERE = b"""
import sys


def where(a):
    main = sys.modules["__main__"]
    names = {f.__code__.co_filename for f in vars(main).values() if hasattr(f, "__code__")}
    raise ValueError(" ".join(sorted(names)) + " " + str(getattr(main, "__file__", "")))
"""


@needs_zygote
def test_the_child_program_does_not_tell_a_submission_where_the_grader_lives(host):
    with Sandbox(WHERE, "where.py", LIMITS, host=host) as box:
        outcome = call(box, "where")
        assert isinstance(box.proc, ForkedChild)
    assert outcome.status == CallStatus.EXCEPTION and "<child>" in outcome.message
    assert str(Path(zygote_client.__file__).parent) not in outcome.message
