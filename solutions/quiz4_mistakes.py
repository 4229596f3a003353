"""Known wrong answers for quiz 4 (trusted: runs only in the grader's parent process).

Each function imitates one typical student mistake.  It has exactly the
signature of the student function it imitates (``grad_X(dY, W)`` ...), never
raises for valid inputs of the documented shapes, never mutates its inputs,
and returns what the student's wrong code would return.

Naming: ``<student function>_<mistake id>``, e.g. ``grad_S_averaged_batch``.
The rubric (``rubrics/quiz4.yaml``) references these functions by name under
each equation's ``mistakes:`` list.  Each docstring is the student-facing hint
and is repeated verbatim as that entry's ``hint`` in the rubric.

A product without its transpose (``dY @ W``, ``H @ dS`` ...) crashes on the
regular cases, whose dimensions are pairwise distinct, and a crash is reported
as a crash; the ``*_missing_transpose`` entries name it where it does not crash,
on the square probe case (every dimension equal), and raise elsewhere.

Mistakes that can coincide with the reference on some inputs (expected):

* ``*_averaged_batch`` when N = 1;
* ``grad_S_argmax_labels`` when argmax(P) equals y in every row;
* ``grad_S_labels_as_column`` when all labels in y are equal (always when N = 1);
* ``grad_Z_mask_ge_zero`` when Z has no exact zeros;
* ``grad_Z_relu_of_upstream`` when dH >= 0 wherever Z > 0;
* ``grad_Z_mask_from_dH`` when (dH > 0) agrees with (Z > 0) wherever dH != 0.
"""

import numpy as np

SCALE = 2.0  # the stray constant factor of the ``scaled`` mistakes


def _batch(A):
    """N, the number of rows (examples) of a batch array."""
    return np.asarray(A).shape[0]


def _onehot(y, C):
    y = np.asarray(y).astype(np.int64).reshape(-1)
    out = np.zeros((y.shape[0], C))
    out[np.arange(y.shape[0]), y] = 1.0
    return out


# --- eq. (1)-(2): grad_X(dY, W) = dY @ W.T ------------------------------------


def grad_X_transpose(dY, W):
    """Your result is transposed: eq. (2) is ∇L_y Wᵀ, which must have the shape of X (N×D)."""
    return (dY @ W.T).T


def grad_X_missing_transpose(dY, W):
    """You multiplied by W itself: eq. (2) is ∇L_y Wᵀ; with other shapes numpy refuses dY @ W, so write down each factor's shape and check which one needs a transpose."""
    return dY @ W


def grad_X_sign(dY, W):
    """Your sign is flipped: eq. (2) is +∇L_y Wᵀ, so check for a stray minus sign."""
    return -(dY @ W.T)


def grad_X_scaled(dY, W):
    """Your result is off by a constant factor: eq. (2) is exactly ∇L_y Wᵀ with no extra multiplier."""
    return SCALE * (dY @ W.T)


def grad_X_averaged_batch(dY, W):
    """You divided by the batch size N; eq. (2) is ∇L_y Wᵀ with no 1/N."""
    return (dY @ W.T) / _batch(dY)


# --- eq. (9): grad_S(P, y) = P - onehot(y) -------------------------------------


def grad_S_averaged_batch(P, y):
    """You averaged over the batch; eq. (9) uses the sum over examples (no 1/N)."""
    return (P - _onehot(y, P.shape[1])) / _batch(P)


def grad_S_missing_minus_one(P, y):
    """You returned P unchanged; eq. (9) subtracts 1 at each row's true class j = y_i."""
    return P.copy()


def grad_S_minus_one_everywhere(P, y):
    """You subtracted 1 from every entry; eq. (9) subtracts 1 only at j = y_i and keeps P_{i,j} elsewhere."""
    return P - 1.0


def grad_S_argmax_labels(P, y):
    """You used the predicted class (the argmax of P) as the label; eq. (9) subtracts 1 at the true label y_i."""
    return P - _onehot(np.argmax(P, axis=1), P.shape[1])


def grad_S_labels_as_column(P, y):
    """Your label index broadcast as a column, so 1 was subtracted in every row at every label in y; eq. (9) subtracts 1 only at (i, y_i)."""
    # Student code: dS = P.copy(); dS[np.arange(N), y[:, None]] -= 1
    # arange(N) has shape (N,) and y[:, None] shape (N, 1): they broadcast to
    # (N, N) index arrays selecting (b, y[a]) for all a, b, i.e. every row at
    # every class occurring in y.  Fancy-index `-=` is buffered, so repeated
    # (row, class) pairs are decremented only once.  This never raises for
    # labels in [0, C); we reproduce it literally.
    y = np.asarray(y).astype(np.int64).reshape(-1)
    dS = np.array(P, dtype=float, copy=True)
    dS[np.arange(dS.shape[0]), y[:, None]] -= 1.0
    return dS


def grad_S_off_by_one_labels(P, y):
    """You subtracted 1 at class y_i - 1 instead of y_i; eq. (9) uses the label itself, so check your class index."""
    # Student code: dS[np.arange(N), y - 1] -= 1.  Label 0 becomes index -1,
    # which numpy reads as the last class, so this equals (y - 1) mod C.  The
    # modulo form avoids any IndexError for unusual label dtypes.
    y = np.asarray(y).astype(np.int64).reshape(-1)
    return P - _onehot((y - 1) % P.shape[1], P.shape[1])


def grad_S_sign(P, y):
    """Your sign is flipped: eq. (9) is P_{i,j} - 1 at j = y_i and P_{i,j} elsewhere, not their negatives."""
    return -(P - _onehot(y, P.shape[1]))


# --- eq. (10): grad_W2(H, dS) = H.T @ dS ---------------------------------------


def grad_W2_transpose(H, dS):
    """Your result is transposed: eq. (10) is Hᵀ dL/dS, which must have the shape of W2 (H×C)."""
    return dS.T @ H


def grad_W2_missing_transpose(H, dS):
    """You multiplied H itself by dL/dS: eq. (10) is Hᵀ dL/dS; with other shapes numpy refuses H @ dS, so write down each factor's shape and check which one needs a transpose."""
    return H @ dS


def grad_W2_sign(H, dS):
    """Your sign is flipped: eq. (10) is +Hᵀ dL/dS, so check for a stray minus sign."""
    return -(H.T @ dS)


def grad_W2_scaled(H, dS):
    """Your result is off by a constant factor: eq. (10) is exactly Hᵀ dL/dS with no extra multiplier."""
    return SCALE * (H.T @ dS)


def grad_W2_averaged_batch(H, dS):
    """You divided by the batch size N; eq. (10) is Hᵀ dL/dS with no 1/N."""
    return (H.T @ dS) / _batch(H)


# --- eq. (11): grad_b2(dS) = 1_N^T dS ------------------------------------------


def grad_b2_bias_wrong_axis(dS):
    """You summed over the classes instead of the examples; eq. (11) is 1_Nᵀ dL/dS, a sum over the batch giving one entry per class (1×C)."""
    return dS.sum(axis=1, keepdims=True)


def grad_b2_bias_no_keepdims(dS):
    """Your values are right but your shape is not: eq. (11) gives a 1×C row like b2, so keep the summed axis."""
    return dS.sum(axis=0)


def grad_b2_bias_sum_all(dS):
    """You summed every entry into a scalar; eq. (11) is 1_Nᵀ dL/dS, which sums only over the examples and keeps one entry per class (1×C)."""
    return np.array(dS.sum())


def grad_b2_averaged_batch(dS):
    """You averaged over the batch; eq. (11) is 1_Nᵀ dL/dS, a sum over examples (no 1/N)."""
    return dS.mean(axis=0, keepdims=True)


def grad_b2_sign(dS):
    """Your sign is flipped: eq. (11) is +1_Nᵀ dL/dS, so check for a stray minus sign."""
    return -dS.sum(axis=0, keepdims=True)


# --- eq. (12): grad_H(dS, W2) = dS @ W2.T --------------------------------------


def grad_H_transpose(dS, W2):
    """Your result is transposed: eq. (12) is dL/dS W2ᵀ, which must have the shape of H (N×H)."""
    return W2 @ dS.T


def grad_H_missing_transpose(dS, W2):
    """You multiplied by W2 itself: eq. (12) is dL/dS W2ᵀ; with other shapes numpy refuses dS @ W2, so write down each factor's shape and check which one needs a transpose."""
    return dS @ W2


def grad_H_sign(dS, W2):
    """Your sign is flipped: eq. (12) is +dL/dS W2ᵀ, so check for a stray minus sign."""
    return -(dS @ W2.T)


def grad_H_scaled(dS, W2):
    """Your result is off by a constant factor: eq. (12) is exactly dL/dS W2ᵀ with no extra multiplier."""
    return SCALE * (dS @ W2.T)


def grad_H_averaged_batch(dS, W2):
    """You divided by the batch size N; eq. (12) is dL/dS W2ᵀ with no 1/N."""
    return (dS @ W2.T) / _batch(dS)


# --- eq. (13): grad_Z(dH, Z) = dH where Z > 0 else 0 ---------------------------


def grad_Z_mask_from_dH(dH, Z):
    """You built the mask from dL/dH; eq. (13) keeps [dL/dH]_{i,j} wherever Z_{i,j} > 0, so the mask must come from Z."""
    return dH * (dH > 0)


def grad_Z_mask_ge_zero(dH, Z):
    """Your mask lets the gradient through where Z_{i,j} = 0; eq. (13) passes it only where Z_{i,j} > 0 (strictly) and gives 0 otherwise."""
    return dH * (Z >= 0)


def grad_Z_mask_inverted(dH, Z):
    """Your mask is inverted: eq. (13) keeps [dL/dH]_{i,j} where Z_{i,j} > 0 and gives 0 otherwise."""
    return dH * (Z <= 0)


def grad_Z_mask_missing(dH, Z):
    """You passed dL/dH through unchanged; eq. (13) gives 0 wherever Z_{i,j} is not positive (the ReLU mask)."""
    return np.array(dH, dtype=float, copy=True)


def grad_Z_relu_of_upstream(dH, Z):
    """You applied ReLU to the upstream gradient; eq. (13) keeps [dL/dH]_{i,j} as it is, negative values included, wherever Z_{i,j} > 0."""
    return np.where(Z > 0, np.maximum(dH, 0.0), 0.0)


def grad_Z_times_relu(dH, Z):
    """You multiplied dL/dH by ReLU(Z) itself; eq. (13) multiplies by ReLU's derivative, the 0/1 mask of Z_{i,j} > 0."""
    return dH * np.maximum(Z, 0.0)


def grad_Z_sign(dH, Z):
    """Your sign is flipped: eq. (13) keeps +[dL/dH]_{i,j} where Z_{i,j} > 0, so check for a stray minus sign."""
    return -np.where(Z > 0, dH, 0.0)


# --- eq. (14): grad_W1(X, dZ) = X.T @ dZ ---------------------------------------


def grad_W1_transpose(X, dZ):
    """Your result is transposed: eq. (14) is Xᵀ dL/dZ, which must have the shape of W1 (D×H)."""
    return dZ.T @ X


def grad_W1_missing_transpose(X, dZ):
    """You multiplied X itself by dL/dZ: eq. (14) is Xᵀ dL/dZ; with other shapes numpy refuses X @ dZ, so write down each factor's shape and check which one needs a transpose."""
    return X @ dZ


def grad_W1_sign(X, dZ):
    """Your sign is flipped: eq. (14) is +Xᵀ dL/dZ, so check for a stray minus sign."""
    return -(X.T @ dZ)


def grad_W1_scaled(X, dZ):
    """Your result is off by a constant factor: eq. (14) is exactly Xᵀ dL/dZ with no extra multiplier."""
    return SCALE * (X.T @ dZ)


def grad_W1_averaged_batch(X, dZ):
    """You divided by the batch size N; eq. (14) is Xᵀ dL/dZ with no 1/N."""
    return (X.T @ dZ) / _batch(X)


# --- eq. (15): grad_b1(dZ) = 1_N^T dZ ------------------------------------------


def grad_b1_bias_wrong_axis(dZ):
    """You summed over the hidden units instead of the examples; eq. (15) is 1_Nᵀ dL/dZ, a sum over the batch giving one entry per hidden unit (1×H)."""
    return dZ.sum(axis=1, keepdims=True)


def grad_b1_bias_no_keepdims(dZ):
    """Your values are right but your shape is not: eq. (15) gives a 1×H row like b1, so keep the summed axis."""
    return dZ.sum(axis=0)


def grad_b1_bias_sum_all(dZ):
    """You summed every entry into a scalar; eq. (15) is 1_Nᵀ dL/dZ, which sums only over the examples and keeps one entry per hidden unit (1×H)."""
    return np.array(dZ.sum())


def grad_b1_averaged_batch(dZ):
    """You averaged over the batch; eq. (15) is 1_Nᵀ dL/dZ, a sum over examples (no 1/N)."""
    return dZ.mean(axis=0, keepdims=True)


def grad_b1_sign(dZ):
    """Your sign is flipped: eq. (15) is +1_Nᵀ dL/dZ, so check for a stray minus sign."""
    return -dZ.sum(axis=0, keepdims=True)
