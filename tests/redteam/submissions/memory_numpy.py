"""Memory bomb: grad_S asks numpy for a 16 GiB array."""

import numpy as np


def grad_X(dY, W):
    return dY @ W.T


def grad_S(P, y):
    big = np.ones(1 << 31)
    return big


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
