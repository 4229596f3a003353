"""An example student submission for quiz 4, with three typical mistakes left in.

Grade it with `grade examples/quiz4_submission.py` to see what students see:
eq. (9) averages over the batch, eq. (13) lets the gradient through where Z == 0,
and eq. (15) drops the size-1 axis of the bias gradient. The rest is right.
"""

import numpy as np


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    N = P.shape[0]
    dS = P.copy()
    dS[np.arange(N), y] -= 1
    return dS / N  # mistake: eq. (9) is a sum over the batch, not a mean


def grad_W2(H, dS):
    return H.T @ dS


def grad_b2(dS):
    return np.sum(dS, axis=0, keepdims=True)


def grad_H(dS, W2):
    return dS @ W2.T


def grad_Z(dH, Z):
    return dH * (Z >= 0)  # mistake: eq. (13) gives 0 where Z <= 0, including Z == 0


def grad_W1(X, dZ):
    return X.T @ dZ


def grad_b1(dZ):
    return np.sum(dZ, axis=0)  # mistake: shape (H,), but b1 is 1 x H
