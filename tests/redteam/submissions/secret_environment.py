"""Reading secrets from the environment and argv: grad_b1 looks for anything in os.environ,
sys.argv or /proc/self that is not the child's own plumbing.
"""

import os
import sys

import numpy as np


def succeeded(what):
    """The attack worked: fail loudly, so the expected `passed` turns into an error."""
    raise RuntimeError("ATTACK SUCCEEDED: " + str(what)[:300])


ALLOWED = {
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "LC_CTYPE",
}


def in_my_environment():
    extra = set(os.environ) - ALLOWED
    if extra:
        succeeded(f"environment holds {sorted(extra)}")
    for word in ("seed", "rubric", "solutions", "quiz4.yaml", "reference"):
        if any(word in arg for arg in sys.argv[1:] + list(os.environ.values())):
            succeeded(f"argv or environment mentions {word}")


def grad_X(dY, W):
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
    in_my_environment()
    return dZ.sum(axis=0, keepdims=True)
