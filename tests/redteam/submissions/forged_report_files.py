"""Forged report files: at import the file tries to write results.json into the report folder
(made world-writable by the test), /autograder/results, and next to every report it can find.
"""

import glob
import os

import numpy as np


def succeeded(what):
    """The attack worked: fail loudly, so the expected `passed` turns into an error."""
    raise RuntimeError("ATTACK SUCCEEDED: " + str(what)[:300])


def forge():
    targets = glob.glob("/tmp/grader-redteam*/*/results/") + ["/autograder/results/"]
    for folder in targets:
        for name in ("results.json", "forged.json"):
            try:
                with open(os.path.join(folder, name), "w") as handle:
                    handle.write('{"score": 11}')
            except OSError:
                continue
            succeeded("wrote " + os.path.join(folder, name))


forge()


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
    return dZ.sum(axis=0, keepdims=True)
