"""Reference solution for quiz 4 (trusted: runs only in the grader's parent process).

Two kinds of functions live here:

* ``grad_*``: the answers, one per equation, with exactly the student API.
* forward functions (``matmul``, ``add_row`` …) and input derivations (``softmax``):
  the finite-difference oracle differentiates ``sum(upstream * forward(...))``
  (or the scalar loss itself), so the rubric names them by string.

Conventions: the loss is the *sum* over the batch, L = sum_i -log P[i, y_i]
(eq. (9) has no 1/N), and eq. (13) is 0 wherever Z <= 0, Z == 0 included.
"""

import numpy as np

# --- answers -----------------------------------------------------------------


def grad_X(dY, W):
    """Eq. (2): dL/dX = dY W^T, shape (N, D)."""
    return dY @ W.T


def grad_S(P, y):
    """Eq. (9): dL/dS = P with 1 subtracted at each row's true class, shape (N, C)."""
    dS = P.copy()
    dS[np.arange(P.shape[0]), y] -= 1.0
    return dS


def grad_W2(H, dS):
    """Eq. (10): dL/dW2 = H^T dS, shape (H, C)."""
    return H.T @ dS


def grad_b2(dS):
    """Eq. (11): dL/db2 = 1^T dS, shape (1, C)."""
    return dS.sum(axis=0, keepdims=True)


def grad_H(dS, W2):
    """Eq. (12): dL/dH = dS W2^T, shape (N, H)."""
    return dS @ W2.T


def grad_Z(dH, Z):
    """Eq. (13): dL/dZ = dH where Z > 0, else 0, shape (N, H)."""
    return np.where(Z > 0, dH, 0.0)


def grad_W1(X, dZ):
    """Eq. (14): dL/dW1 = X^T dZ, shape (D, H)."""
    return X.T @ dZ


def grad_b1(dZ):
    """Eq. (15): dL/db1 = 1^T dZ, shape (1, H)."""
    return dZ.sum(axis=0, keepdims=True)


# --- forward pieces for the finite-difference oracle --------------------------


def matmul(A, B):
    """Y = A B (eqs. (1), (4), (6) without the bias)."""
    return A @ B


def add_row(M, b):
    """M + 1_N b: the bias broadcast over the batch (eqs. (4), (6))."""
    return M + b


def affine(X, W, b):
    """X W + 1_N b (eqs. (4) and (6))."""
    return X @ W + b


def relu(Z):
    """Eq. (5)."""
    return np.maximum(Z, 0.0)


def softmax(S):
    """Eq. (7), row-wise and shifted for stability."""
    E = np.exp(S - S.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def cross_entropy_of_scores(S, y):
    """Eq. (8) composed with (7): L = sum_i -log softmax(S)[i, y_i] (a sum, not a mean)."""
    shifted = S - S.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return -log_p[np.arange(S.shape[0]), y].sum()


def two_layer_loss(X, W1, b1, W2, b2, y):
    """Eqs. (3)-(8) end to end: the loss of the two-layer network, for the end-to-end check's differences.

    Any argument but y may carry a leading axis of copies (a stack of perturbed W1, say):
    the result then has one loss per copy, which is how the grader's differences call it.
    """
    S = affine(relu(affine(X, W1, b1)), W2, b2)
    shifted = S - S.max(axis=-1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return -log_p[..., np.arange(S.shape[-2]), y].sum(axis=-1)
