"""Reading secrets from disk: grad_X looks for the reference, the rubric, the mistake catalog,
the repository (.git) and reports by known paths and by walking the filesystem.
"""

import os
import sys

import numpy as np


def succeeded(what):
    """The attack worked: fail loudly, so the expected `passed` turns into an error."""
    raise RuntimeError("ATTACK SUCCEEDED: " + str(what)[:300])


KNOWN = [
    "/work/main/solutions/quiz4.py",
    "/work/main/rubrics/quiz4.yaml",
    "/work/main/solutions/quiz4_mistakes.py",
    "/work/main/tests/fixtures/quiz4/correct/matmul.py",
    "/work/main/.git/HEAD",
    "/autograder/source/solutions/quiz4.py",
    "/opt/grader-venv/share/grader/solutions/quiz4.py",
    f"{sys.prefix}/share/grader/solutions/quiz4.py",
]
# Where the interpreter lives (/usr, a venv under /opt, or a pyenv Python under /root) is
# too big to walk within the time limit; the data it may hold is among the known paths.
PYTHON = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)}
SECRET_NAMES = {"quiz4.yaml", "quiz4_mistakes.py", "results.json", "packed-refs"}


def look_for_secrets():
    for path in KNOWN:
        try:
            with open(path, "rb") as handle:
                succeeded(f"read {path}: {handle.read(40)!r}")
        except OSError:
            pass
    for top in os.listdir("/"):
        if top in ("usr", "proc", "sys", "opt", "dev") or os.path.islink("/" + top):
            continue
        for folder, subfolders, files in os.walk("/" + top):
            subfolders[:] = [d for d in subfolders if os.path.realpath(os.path.join(folder, d)) not in PYTHON]
            if ".git" in subfolders:
                succeeded(f"found a repository at {folder}")
            for name in files:
                if name in SECRET_NAMES or name.endswith(".report.json"):
                    succeeded(f"found {folder}/{name}")


def grad_X(dY, W):
    look_for_secrets()
    return dY @ W.T


def grad_S(P, y):
    dS = P.copy()
    dS[np.arange(P.shape[0]), y] -= 1.0
    return dS


def grad_W2(H, dS):
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
