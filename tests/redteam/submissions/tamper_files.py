"""Writing outside: grad_W2 tries to change the grader's files, the virtual environment's
numpy and site-packages, system Python, and to plant numpy.py / sitecustomize.py in
every temporary folder for later runs; any write outside a temporary folder is reported.
"""

import glob
import os
import sys

import numpy as np


def succeeded(what):
    """The attack worked: fail loudly, so the expected `passed` turns into an error."""
    raise RuntimeError("ATTACK SUCCEEDED: " + str(what)[:300])


OUTSIDE = [
    "/work/main/grader/checks.py",
    "/work/main/grader/sitecustomize.py",
    "/work/main/solutions/quiz4.py",
    "/work/main/rubrics/quiz4.yaml",
    os.path.join(os.path.dirname(np.__file__), "__init__.py"),
    os.path.join(os.path.dirname(np.__file__), "planted.py"),
    os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "sitecustomize.py"),
    os.path.join(os.path.dirname(os.path.dirname(np.__file__)), "zz_planted.pth"),
    os.path.join(sys.prefix, "pyvenv.cfg"),
    os.path.join(os.path.dirname(os.__file__), "sitecustomize.py"),
    "/etc/ld.so.preload",
]
TEMPORARY = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock"]


def plant():
    for path in OUTSIDE + glob.glob("/work/main/grader/*.py"):
        try:
            with open(path, "a") as handle:
                handle.write("\n# planted\n")
        except OSError:
            continue
        succeeded(f"appended to {path}")
    for folder in TEMPORARY:
        for name in ("numpy.py", "sitecustomize.py", "usercustomize.py"):
            try:
                with open(os.path.join(folder, name), "w") as handle:
                    handle.write("raise SystemExit('planted by an earlier submission')\n")
            except OSError:
                pass


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    dS = P.copy()
    dS[np.arange(P.shape[0]), y] -= 1.0
    return dS


def grad_W2(H, dS):
    plant()
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
