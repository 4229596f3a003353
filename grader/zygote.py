"""The zygote: a fork-server for sandboxed children, so none of them pays for Python and numpy again.

``grader/sandbox.py`` runs this file's *source* with ``python -I -u -c`` (like
``child.py``) and talks to it over a socket. Starting a fresh interpreter and importing
numpy costs ~70 ms of CPU per child; forking this process costs ~1 ms.

What it holds. It imports the standard library and numpy, then runs the code of
three grader files the grader sends it, compiled: ``child.py`` (the serve loop) and
``seccomp.py`` and ``isolation.py`` (how a child confines itself), the last two as
modules ``grader.seccomp`` and ``grader.isolation`` under an empty stand-in for the
package. Code only: it never imports the grader package, a rubric, a reference or a
case, so a child forked from it holds nothing secret but its own start-up request
(limits, its uid, the *names* of the folders it hides) and, later, its inputs.

What a child does. For each ``spawn`` it forks; the child starts its own session,
puts the descriptors it was sent in place (0 /dev/null, 1 and 2 the capture file,
3 requests, 4 replies, 5 the report pipe, nothing else: the socket to the zygote is
closed), runs ``isolation.confine`` (the same steps a directly spawned child runs
before exec: namespaces, minimal root, privilege drop, no_new_privs, limits with
RLIMIT_AS last, the seccomp filter), then ``child.run``. A mechanism that fails is
named on the report pipe, exactly as in a direct spawn, so the grader's fallback works
the same.

Accepted trade-offs: every child of one zygote shares its address-space layout (ASLR
is randomised once per zygote, not per child) and its hash seed. A submission's
randomness still differs between runs: ``random``'s and numpy's global generators are
reseeded in each child where the zygote has them loaded, and are otherwise seeded
afresh by the child's own first import of them (the zygote doesn't load
``numpy.random``: most submissions never use it, and it costs ~10 ms to load).

Who reaps. The zygote reaps a child only when the grader asks (``poll``, ``kill``):
until then a dead child stays a zombie, so its pid, which the grader uses as a
process-group id to kill, cannot be reused by an unrelated process. It is not a
subreaper: orphans of the submission go to init as before. It also kills every
process of a sandbox uid on request (``sweep``) from a tiny fork of itself, far
cheaper than a fork of the grader.

Protocol: a SOCK_SEQPACKET socket, one JSON object per message, descriptors as
SCM_RIGHTS. Every request gets one reply, ``{"ok": true, ...}`` or ``{"ok": false,
"error": ...}``.

    {"op": "boot", "code": {name: compiled code}}    -> {"pid", "pgid"}
    {"op": "spawn", "confinement": {...}} + 4 fds    -> {"pid"}
    {"op": "poll", "pid", "timeout"}                 -> {"status": wait status or null}
    {"op": "kill", "pid"}                            -> {"status": wait status}
    {"op": "sweep", "uid"}                           -> {}

End of file on the socket (the grader exited or closed it) ends the zygote; it also
asks the kernel for SIGKILL when the grader dies.
"""

import base64
import ctypes
import gc
import json
import marshal
import os
import signal
import socket
import sys
import time
import types
import zlib

import numpy as np

SOCKET_FD, GRADER_PID = int(sys.argv[1]), int(sys.argv[2])
PR_SET_PDEATHSIG = 1
MAX_MESSAGE = 1 << 20
CHILD_FDS = 6  # 0 stdin, 1-2 capture, 3 requests, 4 replies, 5 report


def load_modules(code):
    """Run the grader's code as modules: seccomp and isolation under a stand-in package, and the child.

    ``code`` maps each name to a code object the grader compiled: marshalled, zlib-compressed, base64.
    """
    package = types.ModuleType("grader")
    package.__path__ = []  # nothing else of the package can be found through it
    sys.modules["grader"] = package
    loaded = {}
    for name in ("grader.seccomp", "grader.isolation", "child"):
        module = types.ModuleType(name)
        sys.modules[name] = module  # dataclasses look their module up while the class is made
        exec(marshal.loads(zlib.decompress(base64.b64decode(code[name]))), module.__dict__)
        loaded[name] = module
    return loaded


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


def become_child(zygote, modules, confinement, received):  # never returns
    """In the forked child: session, descriptors, confinement, then the child's serve loop."""
    try:
        os.setsid()
        signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a fresh interpreter
        zygote.detach()  # its number is closed below; the object must never close a reused one
        place_fds(received)
        isolation = modules["grader.isolation"]
        plan = isolation.Confinement.from_json(confinement)
        os.environ.clear()
        os.environ.update(plan.env)
        isolation.confine(plan, 5)
        os.close(5)
        del plan, confinement, received
        for name in ("grader", "grader.seccomp", "grader.isolation", "child"):
            sys.modules.pop(name, None)  # `import grader` in the submission finds nothing, as before
        modules["child"].__name__ = "__main__"  # what the submission finds there, as in a fresh child
        sys.modules["__main__"] = modules["child"]
        sys.argv = ["-c", "3", "4"]
        if "numpy.random" in sys.modules:  # else the submission's first use seeds it afresh
            np.random.seed()
        if "random" in sys.modules:
            sys.modules["random"].seed()
        if "tempfile" in sys.modules:
            sys.modules["tempfile"].tempdir = None  # TMPDIR is the child's own now
        modules["child"].run(3, 4)  # ends with os._exit
    except BaseException:  # noqa: BLE001 - a mechanism names itself on fd 5; anything else is exit code 1
        pass
    os._exit(1)


def wait_for(pid, timeout):
    """The wait status of ``pid`` if it ends within ``timeout`` seconds, else None (it is then still ours)."""
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.002)


def kill(pid):
    """SIGKILL the child's group and the child itself (it may not have made its session yet), then reap it."""
    for send in (os.killpg, os.kill):
        try:
            send(pid, signal.SIGKILL)
        except OSError:
            pass
    return os.waitpid(pid, 0)[1]


def sweep(modules, uid):
    """Kill every process of ``uid`` from a tiny fork of this process that becomes ``uid``."""
    pid = os.fork()
    if pid == 0:
        try:
            modules["grader.isolation"].kill_all_as(uid)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)


def handle(zygote, modules, request, fds):
    op = request.get("op")
    if op == "spawn":
        pid = os.fork()
        if pid == 0:
            become_child(zygote, modules, request["confinement"], fds)
        return {"pid": pid}
    if op == "poll":
        return {"status": wait_for(request["pid"], request["timeout"])}
    if op == "kill":
        return {"status": kill(request["pid"])}
    if op == "sweep":
        sweep(modules, request["uid"])
        return {}
    raise ValueError(f"unknown request {op!r}")


def serve(zygote):
    modules = None
    while True:
        try:
            data, fds, _, _ = socket.recv_fds(zygote, MAX_MESSAGE, 8)
        except OSError:
            return
        if not data:
            return
        try:
            request = json.loads(data)
            if request.get("op") == "boot":
                modules = load_modules(request["code"])
                if not single_threaded():
                    raise RuntimeError("numpy started threads: forking would not be safe")
                gc.freeze()  # children don't copy the zygote's objects when their collector runs
                reply = {"pid": os.getpid(), "pgid": os.getpgrp()}
            elif modules is None:
                raise RuntimeError("not booted")
            else:
                reply = handle(zygote, modules, request, fds)
            reply["ok"] = True
        except Exception as err:  # noqa: BLE001 - one failed request must not end the zygote
            reply = {"ok": False, "error": f"{type(err).__name__}: {err}"}
        finally:
            for fd in fds:  # a spawned child has its own copies; the zygote keeps none
                os.close(fd)
        zygote.sendall(json.dumps(reply).encode())


def main():
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the grader to handle
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    if os.getppid() != GRADER_PID:  # the grader died before the line above
        os._exit(0)
    os.chdir("/")
    zygote = socket.socket(fileno=SOCKET_FD)
    serve(zygote)
    os._exit(0)


if __name__ == "__main__":
    main()
