"""The sandbox's seccomp filter: a classic-BPF program that refuses what could reach outside.

On Linux x86-64 and arm64 the child builds it for its own pid and installs it on itself
as the last step before any of the submission runs (``confine.confine``); it works as
any user, so even on a student's laptop the submission has no network, cannot leave
its process group and cannot signal any process but its own.

This module starts no process and imports only the standard library: the zygote
(``zygote.py``) runs its code without importing the grader package.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
NAMESPACE_FLAGS = 0x7E020000  # every CLONE_NEW* flag: mount, cgroup, uts, ipc, user, pid, net
CLONE_PARENT = 0x00008000  # the new process would be the caller's parent's child (the zygote's, the grader's)
# Commands that make the kernel signal a process of the caller's choosing later (SIGIO, or
# any signal with F_SETSIG, when an O_ASYNC descriptor becomes ready): fcntl's and ioctl's.
F_SETOWN, F_SETSIG, F_SETOWN_EX = 8, 10, 15
FIOSETOWN, SIOCSPGRP = 0x8901, 0x8902

# Syscall numbers of what the filter refuses, per architecture.
SECCOMP_ARCHES = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
SYSCALLS = {
    "x86_64": {
        "socket": 41,
        "kill": 62,
        "tgkill": 234,
        "fcntl": 72,
        "ioctl": 16,
        "clone": 56,
        "clone3": 435,
        "setsid": 112,
        "setpgid": 109,
        "tkill": 200,
        "rt_sigqueueinfo": 129,
        "rt_tgsigqueueinfo": 297,
        "ptrace": 101,
        "process_vm_readv": 310,
        "process_vm_writev": 311,
        "unshare": 272,
        "setns": 308,
        "keyctl": 250,
        "add_key": 248,
        "request_key": 249,
        "perf_event_open": 298,
        "bpf": 321,
        "userfaultfd": 323,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "pidfd_getfd": 438,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "shmget": 29,
        "semget": 64,
        "msgget": 68,
    },  # fmt: skip
    "aarch64": {
        "socket": 198,
        "kill": 129,
        "tgkill": 131,
        "fcntl": 25,
        "ioctl": 29,
        "clone": 220,
        "clone3": 435,
        "setsid": 157,
        "setpgid": 154,
        "tkill": 130,
        "rt_sigqueueinfo": 138,
        "rt_tgsigqueueinfo": 240,
        "ptrace": 117,
        "process_vm_readv": 270,
        "process_vm_writev": 271,
        "unshare": 97,
        "setns": 268,
        "keyctl": 219,
        "add_key": 217,
        "request_key": 218,
        "perf_event_open": 241,
        "bpf": 280,
        "userfaultfd": 282,
        "pidfd_open": 434,
        "pidfd_send_signal": 424,
        "pidfd_getfd": 438,
        "io_uring_setup": 425,
        "io_uring_enter": 426,
        "io_uring_register": 427,
        "shmget": 194,
        "semget": 190,
        "msgget": 186,
    },  # fmt: skip
}
_LD, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ|K …, BPF_RET|K
_ALLOW, _ERRNO = 0x7FFF0000, 0x00050000


def seccomp_supported() -> bool:
    return sys.platform.startswith("linux") and os.uname().machine in SECCOMP_ARCHES


def seccomp_program(own_pid: int) -> bytes:
    """A classic-BPF seccomp filter for the sandbox's leader ``own_pid``: refuse what could reach outside.

    Signals go only to the sandbox itself: ``kill`` to 0 (its group), ``own_pid`` or
    its group (``-own_pid``; the leader made its own session), ``tgkill`` to a thread
    of ``own_pid``. So no process of the grader (a batch's main process, its
    forkserver, any worker, the zygote) nor of the user can be signalled, whatever
    their pids; as root the uid drop refuses the same on its own. Refused likewise:
    asking for asynchronous signals to another process (``fcntl`` F_SETOWN,
    F_SETOWN_EX, F_SETSIG; ``ioctl`` FIOSETOWN, SIOCSPGRP), ``tkill``, sigqueue and
    pidfd signals, leaving the process group or session (so ``killpg`` reaches every
    process), ``clone`` with CLONE_PARENT (a child the zygote or the grader would have
    to reap), tracing, new namespaces, keyrings and System V IPC objects (both
    outlive the process: a later run could find them), io_uring (which could open
    sockets behind the filter's back), perf and bpf. All with EPERM; ``socket`` gets
    EACCES (no network, no D-Bus asking systemd to start a process for it),
    ``clone3`` ENOSYS (its flags can't be inspected; libc falls back to ``clone``).
    Any other architecture's syscalls get EPERM.
    """
    machine = os.uname().machine
    nr = SYSCALLS[machine]
    special = ("socket", "kill", "tgkill", "clone", "clone3", "fcntl", "ioctl")
    items: list[tuple] = [("stmt", _LD, 4), ("jump", _JEQ, SECCOMP_ARCHES[machine], None, "deny"), ("stmt", _LD, 0)]
    if machine == "x86_64":
        items.append(("jump", _JGE, 0x40000000, "deny", None))  # the x32 ABI
    items += [("jump", _JEQ, number, "deny", None) for name, number in nr.items() if name not in special]
    items += [
        ("jump", _JEQ, nr["socket"], "refuse", None),
        ("jump", _JEQ, nr["clone3"], "nosys", None),
        ("jump", _JEQ, nr["kill"], "kill", None),
        ("jump", _JEQ, nr["tgkill"], "tgkill", None),
        ("jump", _JEQ, nr["clone"], "clone", None),
        ("jump", _JEQ, nr["fcntl"], "fcntl", None),
        ("jump", _JEQ, nr["ioctl"], "ioctl", None),
        ("stmt", _RET, _ALLOW),
        ("label", "kill"),
        ("stmt", _LD, 16),  # the low 32 bits of the first argument (little-endian)
        ("jump", _JEQ, 0, "allow", None),
        ("jump", _JEQ, own_pid, "allow", None),
        ("jump", _JEQ, -own_pid & 0xFFFFFFFF, "allow", "deny"),
        ("label", "tgkill"),
        ("stmt", _LD, 16),
        ("jump", _JEQ, own_pid, "allow", "deny"),
        ("label", "clone"),
        ("stmt", _LD, 16),
        ("jump", _JSET, NAMESPACE_FLAGS | CLONE_PARENT, "deny", "allow"),
        ("label", "fcntl"),
        ("stmt", _LD, 24),  # the low 32 bits of the second argument: the command
        *(("jump", _JEQ, command, "deny", None) for command in (F_SETOWN, F_SETSIG, F_SETOWN_EX)),
        ("stmt", _RET, _ALLOW),
        ("label", "ioctl"),
        ("stmt", _LD, 24),
        *(("jump", _JEQ, command, "deny", None) for command in (FIOSETOWN, SIOCSPGRP)),
        ("label", "allow"),
        ("stmt", _RET, _ALLOW),
        ("label", "refuse"),
        ("stmt", _RET, _ERRNO | errno.EACCES),
        ("label", "nosys"),
        ("stmt", _RET, _ERRNO | errno.ENOSYS),
        ("label", "deny"),
        ("stmt", _RET, _ERRNO | errno.EPERM),
    ]
    return _assemble(items)


def _assemble(items: list[tuple]) -> bytes:
    """BPF instructions from ("stmt", code, k), ("jump", code, k, true_label, false_label), ("label", name)."""
    labels, position = {}, 0
    for item in items:
        if item[0] == "label":
            labels[item[1]] = position
        else:
            position += 1
    out, position = [], 0
    for item in items:
        if item[0] == "label":
            continue
        position += 1
        if item[0] == "stmt":
            out.append(struct.pack("=HBBI", item[1], 0, 0, item[2]))
            continue
        offsets = [0 if label is None else labels[label] - position for label in item[3:5]]
        assert all(0 <= o < 256 for o in offsets), "a BPF jump is out of range"
        out.append(struct.pack("=HBBI", item[1], offsets[0], offsets[1], item[2]))
    return b"".join(out)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter(lib: ctypes.CDLL, program: bytes) -> None:
    """Install ``program`` on the calling thread (no_new_privs must already be set).

    The kernel copies the program, so the buffer need only live for the call.
    """
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.addressof(buffer))
    if lib.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"seccomp: {os.strerror(code)}")
