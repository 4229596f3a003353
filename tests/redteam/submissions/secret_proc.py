"""Reading secrets through /proc: grad_W2 reads the grader's command line (which may hold
--seed), environment, memory map and memory, and looks at every other process.
"""

import os

import numpy as np


def succeeded(what):
    """The attack worked: fail loudly, so the expected `passed` turns into an error."""
    raise RuntimeError("ATTACK SUCCEEDED: " + str(what)[:300])


def through_proc():
    parent = os.getppid()
    for leaf in ("cmdline", "environ", "maps", "mem", "cwd", "root/etc/hostname", "fd/0"):
        path = f"/proc/{parent}/{leaf}"
        try:
            if leaf in ("cwd",):
                os.listdir(path)
                succeeded(f"listed {path}")
            with open(path, "rb") as handle:
                data = handle.read(200)
            succeeded(f"read {path}: {data!r}")
        except OSError:
            pass
    mine = {os.getpid(), os.getppid()}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit() and int(entry) not in mine:
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    data = handle.read(200)
            except OSError:
                continue
            if b"grade" in data or b"pytest" in data or b"--seed" in data:
                succeeded(f"saw process {entry}: {data!r}")


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    dS = P.copy()
    dS[np.arange(P.shape[0]), y] -= 1.0
    return dS


def grad_W2(H, dS):
    through_proc()
    return H.T @ dS


def grad_b2(dS):
    return dS.sum(axis=0, keepdims=True)


def grad_H(dS, W2):
    return dS @ W2.T


def grad_Z(dH, Z):
    return np.where(Z > 0, dH, 0.0)


def grad_W1(X, dZ):
    return X.T @ dZ


def grad_b1(dZ):
    return dZ.sum(axis=0, keepdims=True)
