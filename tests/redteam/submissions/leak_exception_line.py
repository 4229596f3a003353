"""\
Leaking a hidden input through the line of an exception: on its hidden cases grad_S raises
from one of four lines picked by the input, hoping the feedback quotes the line number
and its text.
"""

import numpy as np

CALLS = []


def hidden():
    """True from this function's fourth call on: the first three are visible (its case, the repeat call, the end-to-end check)."""
    CALLS.append(1)
    return len(CALLS) > 3


def spell(x, n):
    """A number in [0, n) spelled from the hidden input."""
    return int(abs(float(np.ravel(x)[0])) * 1e6) % n


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    if hidden():
        pick = spell(P, 4)
        if pick == 0:
            raise ValueError("x")  # LEAKLINE 0
        if pick == 1:
            raise ValueError("x")  # LEAKLINE 1
        if pick == 2:
            raise ValueError("x")  # LEAKLINE 2
        raise ValueError("x")  # LEAKLINE 3
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
