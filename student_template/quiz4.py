"""Quiz 4: gradients of a two-layer ReLU network with softmax cross-entropy.

Fill in each function with numpy (no automatic differentiation: torch, jax, autograd
and tensorflow are not allowed). Keep the names and arguments exactly as they are.

Shape convention: every gradient has the shape of the thing it is the gradient of,
e.g. dL/db2 has the shape of b2, which is 1 x C (a 2-d array of shape (1, C)).

Shapes used below:
    N examples in a batch, D input features, H hidden units, C classes.
    X (N, D)   W (D, H)   dY (N, H)          Problem 1: Y = X W
    W1 (D, H)  b1 (1, H)  Z, H, dH, dZ (N, H)
    W2 (H, C)  b2 (1, C)  S, P, dS (N, C)
    y: int64 labels of shape (N,), each in 0 .. C-1

The loss is the SUM over the batch, L = sum_i -log P[i, y_i], as eq. (9) implies
(there is no 1/N). Inputs are float64 numpy arrays; return a float64 numpy array
and do not modify the inputs in place (work on a copy if you need to).

Check your work with the self-check in the folder your course hands out with this
file: `python selfcheck.py quiz4.py` runs each function on its visible case and says
what to fix (it needs numpy). Then upload quiz4.py as your course says.
"""

import numpy as np  # noqa: F401


def grad_X(dY, W):
    """Problem 1, eqs. (1)-(2): dL/dX given dY = dL/dY (N, H) and W (D, H). Returns (N, D)."""
    raise NotImplementedError


def grad_S(P, y):
    """Eq. (9): dL/dS given P = softmax(S) (N, C) and labels y (N,). Returns (N, C).

    L is the sum over the batch (no 1/N).
    """
    raise NotImplementedError


def grad_W2(H, dS):
    """Eq. (10): dL/dW2 given H (N, H) and dS = dL/dS (N, C). Returns (H, C)."""
    raise NotImplementedError


def grad_b2(dS):
    """Eq. (11): dL/db2 given dS = dL/dS (N, C). Returns (1, C), the shape of b2."""
    raise NotImplementedError


def grad_H(dS, W2):
    """Eq. (12): dL/dH given dS = dL/dS (N, C) and W2 (H, C). Returns (N, H)."""
    raise NotImplementedError


def grad_Z(dH, Z):
    """Eq. (13): dL/dZ given dH = dL/dH (N, H) and Z (N, H), with H = ReLU(Z). Returns (N, H).

    The gradient is 0 wherever Z <= 0, including where Z is exactly 0.
    """
    raise NotImplementedError


def grad_W1(X, dZ):
    """Eq. (14): dL/dW1 given X (N, D) and dZ = dL/dZ (N, H). Returns (D, H)."""
    raise NotImplementedError


def grad_b1(dZ):
    """Eq. (15): dL/db1 given dZ = dL/dZ (N, H). Returns (1, H), the shape of b1."""
    raise NotImplementedError
