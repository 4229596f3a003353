"""The zygote: a fork-server for sandboxed children, so none of them pays for Python and numpy again.

The grader starts it through ``launch.py`` (``run_zygote``) and talks to it over a
socket (``grader/sandbox/zygote_client.py``). Starting a fresh interpreter and importing
numpy costs far more CPU per child than forking this process (``bench/bench_batch.py``
prints what the zygote saves).

What it holds. It imports the standard library and numpy, then the modules of the
untrusted folder, which the grader sends it compiled in its boot message (``child``,
the serve loop; ``confine`` and ``seccomp``, how a child confines itself). Code only: it never imports the grader package, a rubric, a reference or a
case, so a child forked from it holds nothing secret but its own start-up request
(limits, its uid, the *names* of the folders it hides) and, later, its inputs.

What a child does. For each ``spawn`` it forks; the child starts its own session,
puts the descriptors it was sent in place (0 /dev/null, 1 and 2 the capture file,
3 requests, 4 replies, 5 the report pipe, nothing else: the socket to the zygote is
closed), runs ``confine.confine`` (the same steps a directly spawned child runs
before exec: namespaces, minimal root, privilege drop, no_new_privs, limits with
RLIMIT_AS last, the seccomp filter), then ``child.run``. A mechanism that fails is
named on the report pipe, exactly as in a direct spawn, so the grader's fallback works
the same.

Accepted trade-offs: every child of one zygote shares its address-space layout (ASLR
is randomised once per zygote, not per child) and its hash seed. A submission's
randomness still differs between runs: ``random``'s and numpy's global generators are
reseeded in each child where the zygote has them loaded, and are otherwise seeded
afresh by the child's own first import of them (the zygote doesn't load
``numpy.random``: most submissions never use it, and its load is not free;
``bench/bench_grade.py`` prints it).

Who reaps. The zygote is a child subreaper: the orphans of every submission (a
daemon whose parent exited) become its children, and so would the siblings a
``clone(CLONE_PARENT)`` makes (the seccomp filter refuses that flag). It reaps every
process that is not a child it forked, before each request, so no zombie of one
submission lingers to count against a process limit. A child it forked is reaped
only when the grader asks (``poll``, ``kill``): until then its pid, which the
grader uses as a process-group id to kill, cannot be reused by an unrelated process. It also kills
every process of a sandbox uid on request (``sweep``) from a tiny fork of itself,
far cheaper than a fork of the grader.

Protocol: a SOCK_SEQPACKET socket, one JSON object per message, descriptors as
SCM_RIGHTS. Every request gets one reply, ``{"ok": true, ...}`` or ``{"ok": false,
"error": ...}``.

    {"op": "boot", "code": {name: compiled code}}    -> {"pid", "pgid"}
    {"op": "spawn", "confinement": {...}} + 4 fds    -> {"pid"}
    {"op": "poll", "pid", "timeout"}                 -> {"status": wait status or null}
    {"op": "kill", "pid"}                            -> {"status": wait status}
    {"op": "sweep", "uid"}                           -> {}

End of file on the socket (the grader exited or closed it) ends the zygote; it also
asks the kernel for SIGKILL when the grader dies, and each child it forks asks for
SIGKILL when the zygote dies (``confine.confine``), so no child outlives the grader.
"""

import ctypes
import gc
import json
import os
import signal
import socket
import sys
import time

import numpy as np

from . import child, confine

MAX_MESSAGE = 1 << 20
CHILD_FDS = 6  # 0 stdin, 1-2 capture, 3 requests, 4 replies, 5 report
PR_SET_CHILD_SUBREAPER = 36


class Children:
    """The children this zygote forked: reaped only when the grader asks, so their pids stay theirs."""

    def __init__(self):
        self.forked = set()

    def reap_others(self):
        """Reap every child that is not one it forked: orphans the subreaper inherited, strays."""
        for pid in child_pids() - self.forked:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass

    def wait(self, pid, timeout):
        """The wait status of ``pid`` if it ends within ``timeout`` seconds, else None (it is then still ours)."""
        deadline = time.monotonic() + timeout
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.forked.discard(pid)
                return status
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.002)

    def kill(self, pid):
        """SIGKILL the child's group and the child itself (it may not have made its session yet), then reap it."""
        for send in (os.killpg, os.kill):
            try:
                send(pid, signal.SIGKILL)
            except OSError:
                pass
        self.forked.discard(pid)
        return os.waitpid(pid, 0)[1]


def child_pids():
    """Every child of this process, zombies included: from /proc, the kernel's list if it keeps one."""
    me = os.getpid()
    try:
        with open(f"/proc/{me}/task/{me}/children") as listed:
            return {int(pid) for pid in listed.read().split()}
    except OSError:
        pass
    found = set()
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                data = stat.read()
            if int(data[data.rindex(b")") + 2 :].split()[1]) == me:
                found.add(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def single_threaded():
    """Forking is only safe without other threads (a BLAS pool would deadlock the children)."""
    try:
        with open("/proc/self/status") as status:
            return any(line.split() == ["Threads:", "1"] for line in status)
    except OSError:
        return True


def place_fds(received):
    """Make the received descriptors 0-5 of this process and close every other one."""
    devnull = os.open("/dev/null", os.O_RDWR)
    request, reply, capture, report = received
    sources = [devnull, capture, capture, request, reply, report]
    high = [os.dup2(fd, 100 + i) for i, fd in enumerate(sources)]  # out of the way of 0-5 first
    for target, fd in enumerate(high):
        os.dup2(fd, target)
    os.closerange(CHILD_FDS, 1 << 16)


def become_child(zygote, confinement, received, forget, as_main):  # never returns
    """In the forked child: session, descriptors, confinement, then the child's serve loop."""
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        zygote.detach()  # its number is closed below; the object must never close a reused one
        place_fds(received)
        plan = confine.Confinement.from_json(confinement)
        os.environ.clear()
        os.environ.update(plan.env)
        confine.confine(plan, 5)
        os.close(5)
        del plan, confinement, received
        forget()  # `import untrusted` or `import grader` in the submission finds nothing
        as_main(child)  # what the submission finds as __main__, as in a fresh child
        sys.argv = ["-c", "3", "4"]
        if "numpy.random" in sys.modules:  # else the submission's first use seeds it afresh
            np.random.seed()
        if "random" in sys.modules:
            sys.modules["random"].seed()
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None  # TMPDIR is the child's own now
        child.run(3, 4)  # ends with os._exit
    except BaseException:  # noqa: BLE001 - a mechanism names itself on fd 5; anything else is exit code 1
        pass
    os._exit(1)


def sweep(uid):
    """Kill every process of ``uid`` from a tiny fork of this process that becomes ``uid``."""
    pid = os.fork()
    if pid == 0:
        try:
            confine.kill_all_as(uid)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def handle(zygote, children, request, fds, forget, as_main):
    op = request.get("op")
    children.reap_others()
    if op == "spawn":
        pid = os.fork()
        if pid == 0:
            become_child(zygote, request["confinement"], fds, forget, as_main)
        children.forked.add(pid)
        return {"pid": pid}
    if op == "poll":
        return {"status": children.wait(request["pid"], request["timeout"])}
    if op == "kill":
        return {"status": children.kill(request["pid"])}
    if op == "sweep":
        sweep(request["uid"])
        children.reap_others()  # what the sweep killed, if it was ours
        return {}
    raise ValueError(f"unknown request {op!r}")


def serve(zygote, forget, as_main):
    """Answer the boot message, then one request at a time until the grader closes the socket.

    ``forget`` and ``as_main`` are ``launch.py``'s: what a forked child does to the
    module table before the submission runs.
    """
    if single_threaded():
        gc.freeze()  # children don't copy the zygote's objects when their collector runs
        reply = {"ok": True, "pid": os.getpid(), "pgid": os.getpgrp()}
    else:
        reply = {"ok": False, "error": "numpy started threads: forking would not be safe"}
    zygote.sendall(json.dumps(reply).encode())
    if not reply["ok"]:
        return
    try:  # orphans of the submissions become ours to reap, not init's (which may not reap them)
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    children = Children()
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(zygote, MAX_MESSAGE, 8)
        except OSError:
            return
        if not data:
            return
        try:
            reply = handle(zygote, children, json.loads(data), fds, forget, as_main)
            reply["ok"] = True
        except Exception as err:  # noqa: BLE001 - one failed request must not end the zygote
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        finally:
            for fd in fds:  # a spawned child has its own copies; the zygote keeps none
                os.close(fd)
        zygote.sendall(json.dumps(reply).encode())
