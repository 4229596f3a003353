"""Reference solution for the ``layers`` assignment (trusted: runs only in the grader's parent process).

The API is exactly Stanford CS231n's ``layers.py``: every ``*_forward`` returns
``(out, cache)`` and every ``*_backward`` takes ``(dout, cache)`` and returns the
gradients with respect to the forward's differentiable inputs, in the order of
the forward's arguments.  The grader never grades a cache; it hands the cache a
forward made to the matching backward.

Conventions (the student template states the same ones):

* shapes: affine takes x of any shape (N, d1, ..., dk) and flattens it to
  (N, D), D = d1 * ... * dk; batchnorm takes x of shape (N, D); convolution
  and pooling use NCHW; every gradient has the shape of what it is the
  gradient of (db is (M,), like b);
* ReLU's gradient is 0 wherever x <= 0, x == 0 included;
* ``softmax_loss`` is the MEAN over the batch, so dx = (softmax - onehot) / N;
* batchnorm train mode normalises with the batch mean and the biased variance
  (divided by N) and updates ``running_mean`` / ``running_var`` in ``bn_param``
  (created as zeros of shape (D,) when absent); test mode uses the running
  statistics; the backward is for a train-mode cache;
* dropout is inverted dropout with keep probability ``p``: in train mode,
  ``np.random.seed(seed)`` first when ``'seed'`` is given, then
  ``mask = (np.random.rand(*x.shape) < p) / p``; test mode returns x unchanged;
* convolution is cross-correlation (the kernel is not flipped) with zero
  padding; output sizes use floor division,
  H' = 1 + (H + 2 * pad - HH) // stride and W' = 1 + (W + 2 * pad - WW) // stride;
* max pooling sends each window's upstream gradient to the window's argmax
  (accumulated where windows overlap), H' = 1 + (H - pool_height) // stride.

Cache structures (the mistake catalog, ``layers_mistakes.py``, unpacks them):

* ``affine_forward``: ``(x, w, b)``
* ``relu_forward``: ``x``
* ``batchnorm_forward``: ``(x, x_hat, mu, var, gamma, beta, eps)``; in test mode
  mu and var are the running statistics used
* ``dropout_forward``: ``(dropout_param, mask)``; mask is None in test mode
* ``conv_forward_naive``: ``(x, w, b, conv_param)``
* ``max_pool_forward_naive``: ``(x, pool_param)``
"""

import numpy as np

# --- affine -------------------------------------------------------------------


def affine_forward(x, w, b):
    """Forward pass of an affine (fully connected) layer.

    Inputs:
    - x: array of shape (N, d_1, ..., d_k), a batch of N examples; each example
      is flattened to a vector of D = d_1 * ... * d_k numbers.
    - w: weights, shape (D, M).
    - b: biases, shape (M,).

    Returns a tuple (out, cache):
    - out: x reshaped to (N, D), times w, plus b; shape (N, M).
    - cache: whatever affine_backward needs.
    """
    out = x.reshape(x.shape[0], -1) @ w + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """Backward pass of an affine layer.

    Inputs:
    - dout: upstream gradient dL/dout, shape (N, M).
    - cache: the cache affine_forward returned.

    Returns a tuple (dx, dw, db):
    - dx: dL/dx, shape (N, d_1, ..., d_k), the shape of x.
    - dw: dL/dw, shape (D, M).
    - db: dL/db, shape (M,).
    """
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


# --- ReLU ---------------------------------------------------------------------


def relu_forward(x):
    """Forward pass of a rectified linear unit.

    Input:
    - x: array of any shape.

    Returns a tuple (out, cache):
    - out: max(x, 0), the shape of x.
    - cache: whatever relu_backward needs.
    """
    out = np.maximum(x, 0.0)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """Backward pass of a rectified linear unit.

    Inputs:
    - dout: upstream gradient, the shape of x.
    - cache: the cache relu_forward returned.

    Returns dx, dL/dx, the shape of x: dout where x > 0 and 0 where x <= 0
    (x == 0 included).
    """
    x = cache
    return np.where(x > 0, dout, 0.0)


# --- softmax loss -------------------------------------------------------------


def softmax_loss(x, y):
    """Softmax cross-entropy loss, averaged over the batch, and its gradient.

    Inputs:
    - x: scores, shape (N, C); x[i, j] is the score of class j for example i.
    - y: labels, shape (N,); y[i] is the class of example i, 0 <= y[i] < C.

    Returns a tuple (loss, dx):
    - loss: the scalar L = (1/N) * sum_i -log softmax(x[i])[y[i]].
    - dx: dL/dx, shape (N, C): (softmax(x) - onehot(y)) / N.
    """
    N = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(N), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(N), y] -= 1.0
    dx /= N
    return float(loss), dx


# --- batch normalization ------------------------------------------------------


def batchnorm_forward(x, gamma, beta, bn_param):
    """Forward pass of batch normalization.

    Inputs:
    - x: data, shape (N, D).
    - gamma: scale, shape (D,).
    - beta: shift, shape (D,).
    - bn_param: dict with the keys
      - 'mode': 'train' or 'test' (required);
      - 'eps': added to the variance before the square root (default 1e-5);
      - 'momentum': of the running averages (default 0.9);
      - 'running_mean', 'running_var': arrays of shape (D,) (zeros when absent).

    In train mode, x is normalised with the batch mean and the biased batch
    variance (divided by N, not N - 1), and the running statistics are updated
    in bn_param:
        running_mean = momentum * running_mean + (1 - momentum) * batch mean
        running_var = momentum * running_var + (1 - momentum) * batch variance
    In test mode, x is normalised with running_mean and running_var instead.
    Either way out = gamma * x_hat + beta, with
        x_hat = (x - mean) / sqrt(var + eps).

    Returns a tuple (out, cache):
    - out: shape (N, D).
    - cache: whatever batchnorm_backward needs (for a train-mode call).
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    D = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        running_mean = momentum * running_mean + (1 - momentum) * mu
        running_var = momentum * running_var + (1 - momentum) * var
    elif mode == "test":
        mu, var = running_mean, running_var
    else:
        raise ValueError(f"Invalid forward batchnorm mode {mode!r}")

    x_hat = (x - mu) / np.sqrt(var + eps)
    out = gamma * x_hat + beta
    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    cache = (x, x_hat, mu, var, gamma, beta, eps)
    return out, cache


def batchnorm_backward(dout, cache):
    """Backward pass of batch normalization (for a train-mode forward).

    Inputs:
    - dout: upstream gradient, shape (N, D).
    - cache: the cache batchnorm_forward returned in train mode.

    Returns a tuple (dx, dgamma, dbeta):
    - dx: dL/dx, shape (N, D); the batch mean and variance depend on x too.
    - dgamma: dL/dgamma, shape (D,).
    - dbeta: dL/dbeta, shape (D,).
    """
    x, x_hat, mu, var, gamma, beta, eps = cache
    N = x.shape[0]
    inv_std = 1.0 / np.sqrt(var + eps)
    dx_hat = dout * gamma
    dx = (inv_std / N) * (N * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    return dx, dgamma, dbeta


# --- dropout ------------------------------------------------------------------


def dropout_forward(x, dropout_param):
    """Forward pass of inverted dropout.

    Inputs:
    - x: data, of any shape.
    - dropout_param: dict with the keys
      - 'p': the probability of KEEPING each unit;
      - 'mode': 'train' or 'test';
      - 'seed' (optional): when present, call np.random.seed(seed) first, so
        the mask is reproducible.

    In train mode, mask = (np.random.rand(*x.shape) < p) / p and
    out = x * mask (the kept units are scaled by 1/p, so test mode needs no
    scaling).  In test mode, out = x.

    Returns a tuple (out, cache):
    - out: the shape of x.
    - cache: whatever dropout_backward needs.
    """
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask
    elif mode == "test":
        mask = None
        out = x
    else:
        raise ValueError(f"Invalid forward dropout mode {mode!r}")

    cache = (dropout_param, mask)
    return out.astype(x.dtype, copy=False), cache


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout.

    Inputs:
    - dout: upstream gradient, the shape of x.
    - cache: the cache dropout_forward returned (train or test mode).

    Returns dx, dL/dx, the shape of x: dout * mask in train mode, dout in
    test mode.
    """
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return dout * mask
    return dout


# --- convolution --------------------------------------------------------------


def conv_forward_naive(x, w, b, conv_param):
    """Naive forward pass of a convolutional layer (cross-correlation, NCHW).

    Inputs:
    - x: data, shape (N, C, H, W).
    - w: filters, shape (F, C, HH, WW).
    - b: biases, shape (F,).
    - conv_param: dict with the keys
      - 'stride': pixels between neighbouring receptive fields, both directions;
      - 'pad': zeros added on every side of x's height and width.

    out[n, f, i, j] = b[f] + sum over c, a, e of
        x_padded[n, c, i * stride + a, j * stride + e] * w[f, c, a, e]
    (the kernel is not flipped).

    Returns a tuple (out, cache):
    - out: shape (N, F, H', W') with H' = 1 + (H + 2 * pad - HH) // stride and
      W' = 1 + (W + 2 * pad - WW) // stride.
    - cache: whatever conv_backward_naive needs.
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    out = np.zeros((N, F, H_out, W_out), dtype=np.result_type(x, w, b))
    for i in range(H_out):
        for j in range(W_out):
            window = x_pad[:, :, i * stride : i * stride + HH, j * stride : j * stride + WW]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """Naive backward pass of a convolutional layer.

    Inputs:
    - dout: upstream gradient, shape (N, F, H', W').
    - cache: the cache conv_forward_naive returned.

    Returns a tuple (dx, dw, db):
    - dx: dL/dx, shape (N, C, H, W) (the padding is cut off again).
    - dw: dL/dw, shape (F, C, HH, WW).
    - db: dL/db, shape (F,).
    """
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, H, W = x.shape
    _, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    dx_pad = np.zeros_like(x_pad, dtype=np.result_type(x, dout))
    dw = np.zeros_like(w, dtype=np.result_type(w, dout))
    for i in range(H_out):
        for j in range(W_out):
            rows = slice(i * stride, i * stride + HH)
            cols = slice(j * stride, j * stride + WW)
            g = dout[:, :, i, j]  # (N, F)
            dw += np.tensordot(g, x_pad[:, :, rows, cols], axes=([0], [0]))
            dx_pad[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
    dx = dx_pad[:, :, pad : pad + H, pad : pad + W]
    db = dout.sum(axis=(0, 2, 3))
    return dx, dw, db


# --- max pooling --------------------------------------------------------------


def max_pool_forward_naive(x, pool_param):
    """Naive forward pass of a max-pooling layer (NCHW).

    Inputs:
    - x: data, shape (N, C, H, W).
    - pool_param: dict with the keys 'pool_height', 'pool_width' and 'stride'
      (the same stride in both directions; no padding).

    out[n, c, i, j] is the largest x[n, c, i * stride + a, j * stride + e] with
    0 <= a < pool_height and 0 <= e < pool_width.

    Returns a tuple (out, cache):
    - out: shape (N, C, H', W') with H' = 1 + (H - pool_height) // stride and
      W' = 1 + (W - pool_width) // stride.
    - cache: whatever max_pool_backward_naive needs.
    """
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, H, W = x.shape
    H_out = 1 + (H - ph) // stride
    W_out = 1 + (W - pw) // stride
    out = np.zeros((N, C, H_out, W_out), dtype=x.dtype)
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw]
            out[:, :, i, j] = window.max(axis=(2, 3))
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """Naive backward pass of a max-pooling layer.

    Inputs:
    - dout: upstream gradient, shape (N, C, H', W').
    - cache: the cache max_pool_forward_naive returned.

    Returns dx, dL/dx, shape (N, C, H, W): each window's upstream gradient goes
    to the position of that window's maximum (and nowhere else); where windows
    overlap, the contributions add up.
    """
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    N, C, _, _ = x.shape
    _, _, H_out, W_out = dout.shape
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(H_out):
        for j in range(W_out):
            window = x[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw]
            flat = window.reshape(N, C, -1).argmax(axis=2)
            a, e = np.unravel_index(flat, (ph, pw))
            dx[n_idx, c_idx, i * stride + a, j * stride + e] += dout[:, :, i, j]
    return dx
