"""\
A declared shape the parent must not build: grad_Z returns an empty array of shape
(2**31 - 1, 0), which holds no element, so it passes every size check, yet nesting it into
lists (numpy's tolist, for the report's JSON) would make 2**31 of them.
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
    return dS.sum(axis=0, keepdims=True)


def grad_H(dS, W2):
    return dS @ W2.T


def grad_Z(dH, Z):
    return np.empty((2**31 - 1, 0))


def grad_W1(X, dZ):
    return X.T @ dZ


def grad_b1(dZ):
    return dZ.sum(axis=0, keepdims=True)
