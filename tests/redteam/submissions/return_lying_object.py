"""Lying object: grad_X returns an object whose __eq__ always says True and whose __array__
returns the right answer, but which is not an array.
"""

import numpy as np


class Liar:
    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return True

    def __array__(self, *a, **k):
        return self.value

    shape = property(lambda self: self.value.shape)


def grad_X(dY, W):
    return Liar(dY @ W.T)


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
