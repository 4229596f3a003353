"""Isolation mechanisms one by one: the seccomp filter, fallbacks that say why, hidden-case text."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import grader.sandbox.protection as isolation_module
from grader.grading import feedback
from grader.sandbox.outcomes import CallStatus, Limits
from grader.sandbox.protection import plan_protections, root_layout, without
from grader.sandbox.session import Sandbox
from grader.untrusted.confine import PR_SET_NO_NEW_PRIVS, RootLayout, inside, libc
from grader.untrusted.seccomp import PR_SET_SECCOMP, SECCOMP_MODE_FILTER, SockFprog, seccomp_program, seccomp_supported

LIMITS = Limits(time_limit=2.0, import_time_limit=10.0, memory_bytes=1 << 30, output_bytes=1 << 20, processes=64)
GRAD_X = b"def grad_X(dY, W):\n    return dY @ W.T\n"
needs_root = pytest.mark.root  # namespaces, the minimal filesystem and the sandbox uid (conftest)
needs_seccomp = pytest.mark.skipif(not seccomp_supported(), reason="seccomp filters exist on Linux x86-64 and arm64")


def errno_of(action) -> int:
    try:
        action()
    except OSError as err:
        return err.errno
    return 0


def filtered(check) -> dict:
    """Fork, install the sandbox's seccomp filter in the child, run ``check`` there, return its answers."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the forked child
        try:
            os.close(read)
            lib = libc()
            lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            program = seccomp_program(os.getpid())
            buffer = ctypes.create_string_buffer(program, len(program))
            prog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
            if lib.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) == 0:
                os.write(write, json.dumps(check()).encode())
        finally:
            os._exit(0)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 65536):
        chunks.append(chunk)
    os.close(read)
    os.waitpid(pid, 0)
    assert chunks, "the filter could not be installed"
    return json.loads(b"".join(chunks))


@needs_seccomp
def test_the_filter_refuses_sockets_leaving_the_group_and_signalling_the_grader():
    parent = os.getpid()

    def check():
        lib = libc()

        def raw(result):
            if result != 0:
                raise OSError(ctypes.get_errno(), "")

        return {
            "inet": errno_of(lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM)),
            "unix": errno_of(lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)),
            "setsid": errno_of(os.setsid),
            "setpgid": errno_of(lambda: os.setpgid(0, 0)),
            "kill_all": errno_of(lambda: os.kill(-1, 0)),
            "kill_grader": errno_of(lambda: os.kill(parent, 0)),
            "kill_group": errno_of(lambda: os.killpg(os.getpgid(parent), 0)),
            "new_user_namespace": errno_of(lambda: raw(lib.unshare(0x10000000))),
            "sysv_shm": errno_of(lambda: raw(-1 if lib.shmget(0, 4096, 0o1600) < 0 else 0)),
        }

    answers = filtered(check)
    assert answers["inet"] == answers["unix"] == errno.EACCES
    assert answers["setsid"] == answers["setpgid"] == errno.EPERM
    assert answers["kill_all"] == answers["kill_grader"] == answers["kill_group"] == errno.EPERM
    assert answers["new_user_namespace"] == answers["sysv_shm"] == errno.EPERM


@needs_seccomp
def test_the_filter_lets_no_signal_reach_any_process_but_its_own_not_even_asynchronously():
    """Issue 16: not only the parent and its group: a sibling (any grader process), and no F_SETOWN/F_SETSIG."""
    sibling = subprocess.Popen(["sleep", "30"])  # stands for a batch's main process, forkserver or worker
    try:

        def check():
            lib = libc()

            def raw(result):
                if result < 0:
                    raise OSError(ctypes.get_errno(), "")

            read, write = os.pipe()
            pair = socket.socketpair()
            target = ctypes.c_int(os.getppid())
            answers = {
                "kill_sibling": errno_of(lambda: os.kill(sibling.pid, 0)),
                "tgkill_sibling": errno_of(lambda: raw(lib.syscall(234, sibling.pid, sibling.pid, 0))),
                "setown": errno_of(lambda: fcntl.fcntl(read, fcntl.F_SETOWN, os.getppid())),
                "setsig": errno_of(lambda: fcntl.fcntl(read, 10, signal.SIGKILL)),  # F_SETSIG
                "setown_ex": errno_of(
                    lambda: raw(lib.fcntl(read, 15, ctypes.byref((ctypes.c_int * 2)(1, os.getppid()))))
                ),
                "fiosetown": errno_of(lambda: raw(lib.ioctl(read, 0x8901, ctypes.byref(target)))),
                "siocspgrp": errno_of(lambda: raw(lib.ioctl(pair[0].fileno(), 0x8902, ctypes.byref(target)))),
                "clone_parent": errno_of(lambda: raw(lib.syscall(56, 0x8000 | signal.SIGCHLD, 0, 0, 0, 0))),
                "async_still_works": errno_of(lambda: fcntl.fcntl(read, fcntl.F_SETFL, os.O_ASYNC)),
                "getown": fcntl.fcntl(read, fcntl.F_GETOWN),
            }
            os.write(write, b"x")  # ready now: with no owner, nobody is signalled
            return answers

        answers = filtered(check)
        assert sibling.poll() is None, "the sibling is alive"
    finally:
        sibling.kill()
        sibling.wait()
    refused = {k: v for k, v in answers.items() if k not in ("async_still_works", "getown")}
    assert refused == dict.fromkeys(refused, errno.EPERM), answers
    assert answers["async_still_works"] == 0 and answers["getown"] == 0


@needs_seccomp
def test_the_filter_leaves_what_homework_needs_forks_threads_pipes_and_signals_to_itself():
    def check():
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        _, status = os.waitpid(pid, 0)
        seen = []
        thread = threading.Thread(target=lambda: seen.append(np.ones(3).sum()))
        thread.start()
        thread.join()
        read, write = os.pipe()
        os.write(write, b"ok")
        return {
            "fork": os.waitstatus_to_exitcode(status),
            "thread": seen,
            "pipe": os.read(read, 2).decode(),
            "self": errno_of(lambda: os.kill(os.getpid(), 0)),
            "pair": errno_of(lambda: socket.socketpair()[0].close()),
        }

    assert filtered(check) == {"fork": 7, "thread": [3.0], "pipe": "ok", "self": 0, "pair": 0}


def test_without_root_the_plan_says_so_and_relies_on_the_filter(monkeypatch):
    monkeypatch.setattr(isolation_module, "is_root", lambda: False)
    plan = plan_protections([Path("/somewhere/rubrics")], {})
    assert not plan.privilege_drop and not plan.reference_hidden and not plan.minimal_filesystem
    assert plan.notes[0].startswith("not running as root: the submission runs as your own user")
    assert plan.weaker_than_possible
    assert plan.syscall_filter == plan.network_cut == plan.kill_all_processes == seccomp_supported()


def test_a_failed_filter_is_reported_with_what_it_costs(monkeypatch):
    monkeypatch.setattr(isolation_module, "is_root", lambda: False)
    plan = without(plan_protections([], {}), "syscall_filter", "seccomp: Invalid argument", [])
    assert not plan.syscall_filter and not plan.network_cut and not plan.kill_all_processes
    assert any("no syscall filter (seccomp: Invalid argument): the submission has the network" in n for n in plan.notes)


@pytest.fixture(params=["zygote", "direct"])
def start(request, host):
    """Each fallback is checked for a child forked by the zygote and for one spawned directly."""
    if request.param == "direct":
        host.use_zygote = False
    return request.param


def call_grad_x(box: Sandbox, hidden: bool = False):
    dY, W = np.arange(6.0).reshape(2, 3), np.arange(12.0).reshape(4, 3)
    return box.call("grad_X", [("dY", dY), ("W", W)], (2, 4), hidden), dY @ W.T


@needs_root
def test_as_root_the_child_gets_everything_and_the_report_says_so_without_notes(monkeypatch, start, host):
    with Sandbox(GRAD_X, "quiz4.py", LIMITS, host=host) as box:
        outcome, want = call_grad_x(box)
        assert outcome.status == CallStatus.OK and np.array_equal(outcome.value, want)
        p = box.protections
        assert p.privilege_drop and p.namespaces and p.minimal_filesystem and p.network_cut and p.kill_all_processes
        assert p.syscall_filter == seccomp_supported() and p.notes == ()


@needs_root
def test_a_minimal_filesystem_that_cannot_be_built_falls_back_and_says_why(monkeypatch, start, host):
    real = root_layout()
    broken = RootLayout(
        dirs=(*real.dirs, "/nonexistent-grader-test"), links=real.links, files=real.files, devices=real.devices
    )
    monkeypatch.setattr(isolation_module, "root_layout", lambda: broken)
    with Sandbox(GRAD_X, "quiz4.py", LIMITS, host=host) as box:
        outcome, want = call_grad_x(box)
        assert outcome.status == CallStatus.OK and np.array_equal(outcome.value, want)
        assert not box.protections.minimal_filesystem and box.protections.namespaces
        assert box.protections.notes[0].startswith("no minimal filesystem (mount /")
    assert "minimal_filesystem" in host.failed_mechanisms


@needs_root
def test_a_python_that_cannot_run_in_the_minimal_filesystem_falls_back_and_says_why(monkeypatch, start, host):
    real = root_layout()
    python = [os.path.realpath(p) for p in (sys.executable, os.__file__)]  # a pyenv Python runs without /usr
    kept = tuple(d for d in real.dirs if d != "/usr" and not any(inside(p, d) for p in python))
    without_usr = RootLayout(dirs=kept, links=(), files=(), devices=real.devices)
    monkeypatch.setattr(isolation_module, "root_layout", lambda: without_usr)
    with Sandbox(GRAD_X, "quiz4.py", LIMITS, host=host) as box:
        outcome, _ = call_grad_x(box)
        assert outcome.status == CallStatus.OK and not box.protections.minimal_filesystem
        assert "no minimal filesystem" in box.protections.notes[0]
        assert box.shown_output(4000) == "", "the failed start's words are not the student's"


@pytest.mark.root(readable_on_host=True)  # no minimal root: the host's modes decide the uid drop
def test_namespaces_that_cannot_be_made_fall_back_to_the_uid_drop_and_say_why(monkeypatch, start, host):
    monkeypatch.setattr(isolation_module, "CLONE_NEWIPC", 0x1)  # not a namespace flag: unshare fails with EINVAL
    with Sandbox(GRAD_X, "quiz4.py", LIMITS, hidden_paths=[Path("/work")], host=host) as box:
        outcome, _ = call_grad_x(box)
        assert outcome.status == CallStatus.OK
        p = box.protections
        assert not p.namespaces and not p.minimal_filesystem and not p.reference_hidden and p.privilege_drop
        assert p.notes[0].startswith("no private namespaces (unshare: Invalid argument)")
        assert p.weaker_than_possible


HOSTILE = b"""
class Secret_12_34(Exception):
    pass


class Leaky(list):
    pass


def grad_X(dY, W):
    raise Secret_12_34("dY starts with " + str(dY[0, 0]))


def grad_S(P, y):
    return Leaky([[object()]])
"""


def test_on_a_hidden_case_nothing_the_submission_names_is_repeated(host):
    """The sandbox reports the facts for either case; feedback repeats them only for a visible one."""
    P = np.full((2, 3), 1 / 3)
    with Sandbox(HOSTILE, "quiz4.py", LIMITS, expected_calls=4, host=host) as box:
        visible, _ = call_grad_x(box, hidden=False)
        returned = box.call("grad_S", [("P", P), ("y", np.zeros(2))], (2, 3), False)
        hidden, _ = call_grad_x(box, hidden=True)
        hidden_return = box.call("grad_S", [("P", P), ("y", np.zeros(2))], (2, 3), True)
    assert visible.error_type == hidden.error_type == "Secret_12_34" and "dY starts with" in visible.message
    assert visible.where == {"lineno": 11, "line": 'raise Secret_12_34("dY starts with " + str(dY[0, 0]))'}
    said = feedback.call_fault(visible, "grad_X", hidden=False)
    assert "Secret_12_34" in said and "dY starts with" in said and "line 11" in said
    assert feedback.call_fault(hidden, "grad_X", hidden=True) == "grad_X raised an exception"
    assert returned.status == hidden_return.status == CallStatus.BAD_RETURN
    assert "Leaky" in feedback.call_fault(returned, "grad_S", hidden=False)
    assert "Leaky" not in feedback.call_fault(hidden_return, "grad_S", hidden=True)
