"""Forged frames: grad_b1 writes a well-formed reply for its own call (zeros) before the real
one, then one for the next call, hoping to answer someone else's case.
"""

import sys

import numpy as np

CALLS = [7]  # grad_b1's visible case is the 8th call


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
    child = sys.modules["__main__"]
    zeros = np.zeros((1, dZ.shape[1]))
    for call_id in (CALLS[0] + 1, CALLS[0] + 2):
        payload = child.encode_float64(zeros)
        child.write_frame(
            child.OUT_FD, {"id": call_id, "status": "ok", "shape": [1, dZ.shape[1]], "len": len(payload)}, payload
        )
    CALLS[0] += 1
    return dZ.sum(axis=0, keepdims=True)
