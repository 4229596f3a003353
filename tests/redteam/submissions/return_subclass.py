"""A lying ndarray subclass: grad_W2 returns wrong values in a subclass whose __eq__,
tobytes, astype, tolist and __array__ all pretend to be the right answer.
"""

import numpy as np


class Liar(np.ndarray):
    def __new__(cls, data, claim):
        obj = np.asarray(data).view(cls)
        obj.claim = claim
        return obj

    def __array_finalize__(self, obj):
        self.claim = getattr(obj, "claim", None)

    def __eq__(self, other):
        return np.ones(self.shape, dtype=bool)

    def tobytes(self, *a, **k):
        return self.claim.tobytes()

    def astype(self, *a, **k):
        return self.claim.astype(*a, **k)

    def tolist(self):
        return self.claim.tolist()

    def __array__(self, *a, **k):
        return self.claim


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    dS = P.copy()
    dS[np.arange(P.shape[0]), y] -= 1.0
    return dS


def grad_W2(H, dS):
    right = H.T @ dS
    return Liar(np.zeros_like(right), right)


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
