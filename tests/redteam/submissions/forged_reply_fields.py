"""\
Malformed reply fields: grad_S makes the child send its reply with fields of the wrong
type (a number for the mutated-argument list, a string for the fault location).
"""

import sys

import numpy as np


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    child = sys.modules["__main__"]
    original = child.write_frame

    def broken(fd, reply, *payloads):
        child.write_frame = original
        return original(fd, dict(reply, mutated=5, where="line 1"), *payloads)

    child.write_frame = broken
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
