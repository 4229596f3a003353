"""Starting one sandboxed child: its confinement as data, then a fork by the zygote or a direct spawn.

``plan_confinement`` turns the protection plan and the limits into the
``Confinement`` the child applies to itself (``grader/untrusted/confine.py``):
RLIMIT_NPROC first where the child has a uid of its own, RLIMIT_AS last.
``start_child`` starts the child (forked by the zygote when there is one, else
``python -I -c`` with the launcher's program) and waits for its "started" frame, so
anything that fails before the submission runs is the machine's fault: a mechanism
that failed names itself (``MechanismFailed``), and the session starts the child
again without it. Its two halves, ``launch_child`` and ``await_started``, let the
session queue the submission and do other work in between (``handoff.py``). The caller (``session.Sandbox``) owns what comes after: sweeping the
uid, restarting, calling.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from grader.errors import ProtocolError, SandboxError
from grader.sandbox import wire
from grader.sandbox.cgroup import process_cap
from grader.sandbox.outcomes import Limits, Protections
from grader.sandbox.processes import ChildProcess, ForkedChild, SpawnedChild, Transcript
from grader.sandbox.protection import MechanismFailed, confinement_for
from grader.sandbox.zygote_client import STARTUP_SECONDS, Zygote, ZygoteError, base_env, child_program
from grader.untrusted.confine import Confinement, confine
from grader.untrusted.seccomp import seccomp_supported


def child_env(workdir: str) -> dict[str, str]:
    """A child's whole environment: nothing of the grader's, its own folder as HOME and TMPDIR."""
    return {**base_env(), "HOME": workdir, "TMPDIR": workdir}


def plan_confinement(
    protections: Protections,
    limits: Limits,
    *,
    expected_calls: int,
    workdir: str,
    root: str,
    covers: Sequence[str],
    uid: int | None,
    cgroup,
    parent_pid: int,
) -> Confinement:
    """What the next child does to itself before the submission runs."""
    cpu = int(min(limits.import_time_limit + limits.time_limit * expected_calls, limits.submission_seconds)) + 2
    nproc = limits.processes if cgroup is not None else process_cap(limits)
    rlimits = [] if uid is None else [(resource.RLIMIT_NPROC, nproc, nproc)]
    rlimits += [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, limits.output_bytes, limits.output_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_AS, limits.memory_bytes, limits.memory_bytes),  # last: see confine.confine
    ]
    filtered = protections.syscall_filter and seccomp_supported()
    return confinement_for(
        replace(protections, syscall_filter=filtered),
        workdir=workdir,
        root=root,
        covers=covers,
        uid=uid,
        rlimits=rlimits,
        env=child_env(workdir),
        cgroup_procs=cgroup.procs_files if cgroup is not None else (),
        parent_pid=parent_pid,
    )


@dataclass(frozen=True)
class Launch:
    """A child that was forked or spawned but may not have said "started" yet (``launch_child``)."""

    proc: ChildProcess
    reader: wire.FrameReader
    writer_fd: int  # requests, non-blocking
    report_fd: int  # where a mechanism that failed names itself; closed by ``await_started``


def start_child(
    confinement: Confinement, zygote: Zygote | None, transcript: Transcript, protections: Protections
) -> tuple[ChildProcess, wire.FrameReader, int]:
    """Start a child and wait for its "started" frame: (process, reply reader, request descriptor).

    Raises ``MechanismFailed`` when an isolation mechanism broke the start (the caller
    retries without it) and ``SandboxError`` when Python itself can't start; either way
    the failed child is killed and its descriptors closed.
    """
    launch = launch_child(confinement, zygote, transcript, protections)
    await_started(launch, transcript, protections, time.monotonic() + STARTUP_SECONDS)
    return launch.proc, launch.reader, launch.writer_fd


def launch_child(
    confinement: Confinement, zygote: Zygote | None, transcript: Transcript, protections: Protections
) -> Launch:
    """Fork (or spawn) a child without waiting for it to confine itself and say "started".

    The child reads no request before its "started" frame, so one may be queued in its
    pipe meanwhile (``Sandbox.begin``). Raises as ``start_child`` does when the fork or
    spawn itself fails; a failure after it is ``await_started``'s to find.
    """
    req_read, req_write = os.pipe()
    rep_read, rep_write = os.pipe()
    report_read, report_write = os.pipe()
    capture = transcript.new_capture()
    proc: ChildProcess | None = None
    try:
        if zygote is not None:
            proc = fork_child(zygote, confinement, (req_read, rep_write, capture.fileno(), report_write))
        if proc is None:
            proc = SpawnedChild(
                subprocess.Popen(
                    [sys.executable, "-I", "-u", "-c", child_program(), str(req_read), str(rep_write)],
                    stdin=subprocess.DEVNULL,
                    stdout=capture,
                    stderr=capture,
                    pass_fds=(req_read, rep_write),
                    env=dict(confinement.env),
                    start_new_session=True,
                    preexec_fn=lambda: confine(confinement, report_write),
                )
            )
    except (OSError, subprocess.SubprocessError) as err:
        os.close(report_write)
        reason = os.read(report_read, 1000).decode(errors="replace")
        for fd in (req_read, req_write, rep_read, rep_write, report_read):
            os.close(fd)
        if "\t" in reason:
            raise MechanismFailed(*reason.split("\t", 1)) from err
        if isinstance(err, OSError) and protections.minimal_filesystem:  # exec failed inside the root
            raise MechanismFailed("minimal_filesystem", f"cannot run {sys.executable} in it: {err}") from err
        raise SandboxError(f"cannot start the sandboxed child: {err}") from err
    for fd in (req_read, rep_write, report_write):
        os.close(fd)
    os.set_blocking(req_write, False)
    return Launch(proc, wire.FrameReader(rep_read), req_write, report_read)


def await_started(
    launch: Launch, transcript: Transcript, protections: Protections, deadline: float, quote_output: bool = True
) -> None:
    """Wait until ``deadline`` for the child's "started" frame; on anything else, find why and clean up.

    Raises ``MechanismFailed`` or ``SandboxError`` as ``start_child`` does, the child
    killed and every descriptor of the launch closed. On success only ``report_fd`` is closed.
    The reason quotes the last line the child printed (the loader's words: no request is
    read before "started"), unless ``quote_output`` is False: a child with a request
    queued may have run the submission by then, and a reason is kept for every later one.
    """
    proc, reader = launch.proc, launch.reader
    try:
        hello = reader.read_header(deadline)
    except (wire.Timeout, EOFError, ProtocolError):
        hello = None
    if hello == {"status": "started"}:
        os.close(launch.report_fd)
        return
    code = proc.wait(1.0)
    mark = len(transcript.data)
    proc.kill()
    for fd in (launch.writer_fd, reader.fd):
        os.close(fd)
    transcript.close_capture()
    report_read = launch.report_fd
    os.set_blocking(report_read, False)  # every writer is gone by now; never wait on it regardless
    try:
        reason = os.read(report_read, 1000).decode(errors="replace")
    except BlockingIOError:
        reason = ""
    os.close(report_read)
    if "\t" in reason:  # a forked child names the mechanism that failed, as a preexec does
        raise MechanismFailed(*reason.split("\t", 1))
    printed = bytes(transcript.data[mark:][-300:]) if quote_output else b""
    del transcript.data[mark:]  # the machine's words, not the student's output
    tail = printed.decode(errors="replace").strip().splitlines()
    why = f"Python could not start in it (exit code {code}{': ' + tail[-1] if tail else ''})"
    for mechanism in ("minimal_filesystem", "syscall_filter", "namespaces"):
        if getattr(protections, mechanism):
            raise MechanismFailed(mechanism, why)
    raise SandboxError(f"the sandboxed Python did not start: {why}")


def fork_child(zygote: Zygote, confinement: Confinement, fds: tuple[int, int, int, int]) -> ForkedChild | None:
    """A child forked by the zygote, or None (the zygote failed: spawn this one directly)."""
    try:
        reply = zygote.request({"op": "spawn", "confinement": confinement.to_json()}, fds)
    except ZygoteError:
        return None
    return ForkedChild(zygote, reply["pid"])
