"""Known wrong answers for the ``layers`` assignment (trusted: runs only in the grader's parent process).

Each function imitates one typical student mistake in one WHOLE student function:
it has exactly that function's signature and returns the same tuple, so every
graded slot can be compared with a submission's.

* A forward mistake returns ``(out, None)``: caches are never graded.  The
  ``batchnorm_forward_*`` mistakes write into ``bn_param`` exactly as the
  student's code would (the running statistics it leaves there are graded).
* A backward mistake receives the REFERENCE's cache (it unpacks the structures
  that ``layers.py`` documents: ``(x, w, b)``, ``x``, ``(x, x_hat, mu, var,
  gamma, beta, eps)``, ``(dropout_param, mask)``, ``(x, w, b, conv_param)``,
  ``(x, pool_param)``) and returns what the student's backward would return for
  the same forward inputs.
* No mistake function mutates an input array.  Some raise where the student's
  code raises (``affine_forward_no_reshape`` on x with 3 or more dimensions,
  ``max_pool_*_steps_by_pool_size`` when a window would start past the edge);
  they are named only where they run.

Naming: ``<student function>_<mistake id>``, e.g. ``affine_backward_db_keepdims``.
The rubric (``rubrics/layers.yaml``) lists them under each item's ``mistakes:``;
each docstring is the student-facing hint and is repeated verbatim there.

Not catalogued, because no function can reproduce them: dropout with the seed
ignored (the mask is whatever the global generator holds) and any mistake whose
output depends on state left by earlier calls.  The grader reports them by
their values alone (for the seed: a train-mode mask that differs from the
seeded one, while test mode is right).

Mistakes that can coincide with the reference on some inputs (expected):

* ``affine_forward_no_reshape``, ``affine_backward_dx_not_reshaped`` and
  ``affine_backward_dw_no_reshape`` when x is 2-d (N, D);
* ``affine_forward_forgot_bias`` when b is 0;
* ``affine_backward_db_mean`` and ``softmax_loss_sum_not_mean`` when N = 1;
* ``softmax_loss_dx_not_averaged`` on the loss slot always, on dx when N = 1;
* ``relu_backward_mask_ge_zero`` when x has no exact zeros;
* ``relu_backward_times_activation`` when every x > 0 is exactly 1 (never, in practice);
* ``batchnorm_forward_running_stats_not_updated``, ``_momentum_swapped`` on
  ``out`` always (they differ only in the running statistics), and
  ``_momentum_swapped`` also when momentum = 0.5;
* ``batchnorm_forward_test_mode_uses_batch_stats`` in train mode;
* ``batchnorm_forward_eps_outside_sqrt`` and ``batchnorm_backward_eps_forgotten``
  up to about eps / var relative error: within rtol 1e-5 unless the variance is
  small or eps large (the rubric's low-variance / large-eps case);
* ``batchnorm_forward_ddof1_variance`` never for N >= 2 (for N = 1 it is nan);
* the dropout mistakes in test mode, except ``_non_inverted`` and
  ``_test_mode_dropout``, which are right in train mode instead (and
  ``_p_as_drop_probability`` when p = 0.5); ``dropout_backward_*`` in test mode;
* ``conv_*_stride_ignored`` and ``conv_forward_naive_window_not_strided`` when
  stride = 1; ``conv_forward_naive_padding_ignored`` and
  ``conv_backward_naive_dx_padding_not_removed`` when pad = 0;
  ``conv_*_flipped_kernel`` when HH = WW = 1 or the kernel is symmetric;
  ``conv_forward_naive_forgot_bias`` when b is 0;
* ``max_pool_*_steps_by_pool_size`` when stride = pool_height = pool_width;
  ``max_pool_forward_naive_square_pool`` when pool_height = pool_width;
  ``max_pool_backward_naive_overlap_overwrites`` when windows do not overlap
  (stride >= pool sizes) or no entry is the maximum of two windows;
  ``max_pool_backward_naive_spread_over_window`` and ``_whole_window`` when the
  pool is 1 x 1.
"""

import importlib.util
import warnings
from pathlib import Path

import numpy as np


def _load_reference():
    """The reference module beside this file, under a private name (it is loaded by path, not as a package)."""
    path = Path(__file__).with_name("layers.py")
    spec = importlib.util.spec_from_file_location("_layers_reference_for_mistakes", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = _load_reference()


def _with(params, **changes):
    """A copy of a parameter dict with some entries replaced (the caller's dict is never touched)."""
    return {**params, **changes}


# --- affine_forward(x, w, b) -> (out, cache) ----------------------------------


def affine_forward_no_reshape(x, w, b):
    """You multiplied x by w without flattening it: reshape x to (N, D) first, x.reshape(x.shape[0], -1) @ w + b."""
    return x @ w + b, None


def affine_forward_forgot_bias(x, w, b):
    """You left out the bias: out = x.reshape(N, D) @ w + b."""
    return x.reshape(x.shape[0], -1) @ w, None


# --- affine_backward(dout, cache) -> (dx, dw, db) -----------------------------


def affine_backward_dx_not_reshaped(dout, cache):
    """Your dx has the shape of the flattened x, (N, D): reshape dout @ w.T back to x's shape, (N, d_1, ..., d_k)."""
    x, w, b = cache
    dx, dw, db = REF.affine_backward(dout, cache)
    return dout @ w.T, dw, db


def affine_backward_dw_no_reshape(dout, cache):
    """You used x without flattening it for dw: dw = x.reshape(N, D).T @ dout, shape (D, M)."""
    x, w, b = cache
    dx, dw, db = REF.affine_backward(dout, cache)
    return dx, x.T @ dout, db


def affine_backward_dw_transposed(dout, cache):
    """Your dw is transposed: dw = x.reshape(N, D).T @ dout has the shape of w, (D, M)."""
    dx, dw, db = REF.affine_backward(dout, cache)
    return dx, dw.T, db


def affine_backward_db_keepdims(dout, cache):
    """You summed db with keepdims=True: db has the shape of b, (M,), so sum dout over axis 0 without keepdims."""
    dx, dw, db = REF.affine_backward(dout, cache)
    return dx, dw, dout.sum(axis=0, keepdims=True)


def affine_backward_db_mean(dout, cache):
    """You averaged dout over the batch for db: db = dout.sum(axis=0), with no 1/N (any 1/N is already in dout)."""
    dx, dw, db = REF.affine_backward(dout, cache)
    return dx, dw, dout.mean(axis=0)


# --- relu_forward(x) -> (out, cache) / relu_backward(dout, cache) -> dx --------


def relu_forward_returns_mask(x):
    """You returned the mask x > 0 instead of the activation: out = max(x, 0) = x where x > 0, else 0."""
    return (x > 0).astype(float), None


def relu_backward_mask_ge_zero(dout, cache):
    """You passed dout through where x >= 0: ReLU's gradient is 0 wherever x <= 0, x == 0 included, so use x > 0."""
    x = cache
    return np.where(x >= 0, dout, 0.0)


def relu_backward_mask_missing(dout, cache):
    """You returned dout unmasked: dx = dout where x > 0 and 0 where x <= 0."""
    return np.array(dout, dtype=float, copy=True)


def relu_backward_mask_inverted(dout, cache):
    """Your mask is inverted: dx keeps dout where x > 0 and is 0 where x <= 0."""
    x = cache
    return np.where(x > 0, 0.0, dout)


def relu_backward_times_activation(dout, cache):
    """You multiplied dout by max(x, 0), the activation: the derivative of ReLU is 1 where x > 0 (and 0 elsewhere), so dx = dout * (x > 0)."""
    x = cache
    return dout * np.maximum(x, 0.0)


# --- softmax_loss(x, y) -> (loss, dx) -----------------------------------------


def softmax_loss_sum_not_mean(x, y):
    """You summed over the batch: the loss is the mean over the N examples, and dx = (softmax(x) - onehot(y)) / N."""
    loss, dx = REF.softmax_loss(x, y)
    N = x.shape[0]
    return loss * N, dx * N


def softmax_loss_dx_not_averaged(x, y):
    """Your dx is missing the 1/N of the mean: dx = (softmax(x) - onehot(y)) / N."""
    loss, dx = REF.softmax_loss(x, y)
    return loss, dx * x.shape[0]


def softmax_loss_loss_sign(x, y):
    """Your loss is negative: it is the mean of -log softmax(x)[i, y_i], which is >= 0."""
    loss, dx = REF.softmax_loss(x, y)
    return -loss, dx


def softmax_loss_dx_missing_minus_one(x, y):
    """Your dx is softmax(x) / N without the onehot: subtract 1 at each row's true class y_i before dividing by N."""
    loss, dx = REF.softmax_loss(x, y)
    N = x.shape[0]
    dx = dx.copy()
    dx[np.arange(N), y] += 1.0 / N
    return loss, dx


# --- batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache) -------------


def _running(x, bn_param):
    """The running statistics a student's code starts from: the dict's, or zeros of (D,)."""
    D = x.shape[1]
    return bn_param.get("running_mean", np.zeros(D)), bn_param.get("running_var", np.zeros(D))


def batchnorm_forward_ddof1_variance(x, gamma, beta, bn_param):
    """You used the unbiased variance (ddof=1, divided by N - 1): batchnorm normalises with the biased batch variance, x.var(axis=0), divided by N (and keeps that one in running_var)."""
    mode, eps, momentum = bn_param["mode"], bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
    running_mean, running_var = _running(x, bn_param)
    if mode == "train":
        with warnings.catch_warnings(), np.errstate(all="ignore"):  # N = 1: the student's code gets nan too
            warnings.simplefilter("ignore", RuntimeWarning)
            mu, var = x.mean(axis=0), x.var(axis=0, ddof=1)
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mu
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
    else:
        mu, var = running_mean, running_var
        bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return gamma * (x - mu) / np.sqrt(var + eps) + beta, None


def batchnorm_forward_running_stats_not_updated(x, gamma, beta, bn_param):
    """Your running statistics were not updated: in train mode, running_mean = momentum * running_mean + (1 - momentum) * batch mean (running_var alike), stored back in bn_param."""
    running_mean, running_var = _running(x, bn_param)
    out, _ = REF.batchnorm_forward(x, gamma, beta, _with(bn_param))
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return out, None


def batchnorm_forward_momentum_swapped(x, gamma, beta, bn_param):
    """Your running averages weight the batch by momentum: running_mean = momentum * running_mean + (1 - momentum) * batch mean (running_var alike)."""
    if bn_param["mode"] != "train":
        return REF.batchnorm_forward(x, gamma, beta, bn_param)[0], None
    scratch = _with(bn_param, momentum=1 - bn_param.get("momentum", 0.9))
    out, _ = REF.batchnorm_forward(x, gamma, beta, scratch)
    bn_param["running_mean"], bn_param["running_var"] = scratch["running_mean"], scratch["running_var"]
    return out, None


def batchnorm_forward_test_mode_uses_batch_stats(x, gamma, beta, bn_param):
    """In test mode you normalised with the batch's own mean and variance: test mode uses running_mean and running_var."""
    if bn_param["mode"] != "test":
        return REF.batchnorm_forward(x, gamma, beta, bn_param)[0], None
    running_mean, running_var = _running(x, bn_param)
    out, _ = REF.batchnorm_forward(x, gamma, beta, _with(bn_param, mode="train"))
    bn_param["running_mean"], bn_param["running_var"] = running_mean, running_var
    return out, None


def batchnorm_forward_eps_outside_sqrt(x, gamma, beta, bn_param):
    """You added eps after the square root: x_hat = (x - mean) / sqrt(var + eps)."""
    eps = bn_param.get("eps", 1e-5)
    scratch = _with(bn_param)
    REF.batchnorm_forward(x, gamma, beta, scratch)
    if bn_param["mode"] == "train":
        mu, var = x.mean(axis=0), x.var(axis=0)
    else:
        mu, var = _running(x, bn_param)
    bn_param["running_mean"], bn_param["running_var"] = scratch["running_mean"], scratch["running_var"]
    return gamma * (x - mu) / (np.sqrt(var) + eps) + beta, None


# --- batchnorm_backward(dout, cache) -> (dx, dgamma, dbeta) -------------------


def batchnorm_backward_eps_forgotten(dout, cache):
    """You left eps out of the backward: the forward divided by sqrt(var + eps), so dx has the same 1 / sqrt(var + eps)."""
    # The usual student code backpropagates step by step through (x - mean) and sqrt(var),
    # so its dx is the gradient of an eps-free batchnorm; dgamma still uses the cached x_hat.
    x, x_hat, mu, var, gamma, beta, eps = cache
    with np.errstate(all="ignore"):  # var = 0 (a constant column): the student's code divides by 0 too
        dx, _, _ = REF.batchnorm_backward(dout, (x, (x - mu) / np.sqrt(var), mu, var, gamma, beta, 0.0))
    _, dgamma, dbeta = REF.batchnorm_backward(dout, cache)
    return dx, dgamma, dbeta


def batchnorm_backward_dgamma_dbeta_swapped(dout, cache):
    """Your dgamma and dbeta are swapped: return (dx, dgamma, dbeta) with dgamma = sum(dout * x_hat) and dbeta = sum(dout), over axis 0."""
    dx, dgamma, dbeta = REF.batchnorm_backward(dout, cache)
    return dx, dbeta, dgamma


def batchnorm_backward_dx_ignores_batch_stats(dout, cache):
    """Your dx treats the batch mean and variance as constants: in train mode they depend on x, so dx = (1/N) / sqrt(var + eps) * (N * dx_hat - sum(dx_hat) - x_hat * sum(dx_hat * x_hat)), with dx_hat = dout * gamma."""
    x, x_hat, mu, var, gamma, beta, eps = cache
    dx, dgamma, dbeta = REF.batchnorm_backward(dout, cache)
    return dout * gamma / np.sqrt(var + eps), dgamma, dbeta


def batchnorm_backward_dgamma_uses_x(dout, cache):
    """Your dgamma multiplies dout by x: gamma scales the normalised x_hat, so dgamma = sum(dout * x_hat, axis=0)."""
    x = cache[0]
    dx, dgamma, dbeta = REF.batchnorm_backward(dout, cache)
    return dx, (dout * x).sum(axis=0), dbeta


# --- dropout_forward(x, dropout_param) -> (out, cache) ------------------------


def _keep(x, dropout_param, keep):
    """The boolean mask rand < keep after the optional seed, as the student's code draws it."""
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    return np.random.rand(*x.shape) < keep


def dropout_forward_non_inverted(x, dropout_param):
    """You used plain dropout, scaling by p at test time: this is inverted dropout, mask = (rand < p) / p in train mode and out = x in test mode."""
    p = dropout_param["p"]
    if dropout_param["mode"] == "train":
        return x * _keep(x, dropout_param, p), None
    return x * p, None


def dropout_forward_mask_not_scaled(x, dropout_param):
    """You did not divide the kept units by p: inverted dropout uses mask = (np.random.rand(*x.shape) < p) / p."""
    if dropout_param["mode"] == "train":
        return x * _keep(x, dropout_param, dropout_param["p"]), None
    return x, None


def dropout_forward_p_as_drop_probability(x, dropout_param):
    """You took p as the probability of dropping a unit: p is the probability of KEEPING it, mask = (np.random.rand(*x.shape) < p) / p."""
    if dropout_param["mode"] == "train":
        q = 1 - dropout_param["p"]
        return x * _keep(x, dropout_param, q) / q, None
    return x, None


def dropout_forward_test_mode_dropout(x, dropout_param):
    """You applied the mask in test mode too: in test mode dropout does nothing, out = x."""
    p = dropout_param["p"]
    return x * _keep(x, dropout_param, p) / p, None


def dropout_forward_default_rng(x, dropout_param):
    """You drew the mask from np.random.default_rng(seed), which gives other numbers: call np.random.seed(seed), then mask = (np.random.rand(*x.shape) < p) / p."""
    if dropout_param["mode"] != "train":
        return x, None
    p = dropout_param["p"]
    rng = np.random.default_rng(dropout_param.get("seed"))
    return x * (rng.random(x.shape) < p) / p, None


# --- dropout_backward(dout, cache) -> dx --------------------------------------


def dropout_backward_mask_missing(dout, cache):
    """You returned dout unchanged in train mode: dx = dout * mask, with the same scaled mask as the forward."""
    return np.array(dout, dtype=float, copy=True)


def dropout_backward_scaled_twice(dout, cache):
    """You divided by p again: the mask already holds the 1/p, so dx = dout * mask."""
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return dout * mask / dropout_param["p"]
    return np.array(dout, dtype=float, copy=True)


def dropout_backward_mask_not_scaled(dout, cache):
    """Your dx is missing the 1/p: the forward scaled the kept units by 1/p, so dx = dout * (rand < p) / p."""
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return dout * (mask != 0)
    return np.array(dout, dtype=float, copy=True)


# --- conv_forward_naive(x, w, b, conv_param) -> (out, cache) ------------------


def conv_forward_naive_stride_ignored(x, w, b, conv_param):
    """You ignored the stride: the windows start every `stride` pixels and H' = 1 + (H + 2 * pad - HH) // stride."""
    return REF.conv_forward_naive(x, w, b, _with(conv_param, stride=1))[0], None


def conv_forward_naive_window_not_strided(x, w, b, conv_param):
    """Your output has the right size but its windows move one pixel at a time: window (i, j) starts at row i * stride and column j * stride."""
    stride = conv_param["stride"]
    full = REF.conv_forward_naive(x, w, b, _with(conv_param, stride=1))[0]
    H_out = 1 + (x.shape[2] + 2 * conv_param["pad"] - w.shape[2]) // stride
    W_out = 1 + (x.shape[3] + 2 * conv_param["pad"] - w.shape[3]) // stride
    return full[:, :, :H_out, :W_out], None


def conv_forward_naive_padding_ignored(x, w, b, conv_param):
    """You ignored the padding: pad x with `pad` zeros on every side of its height and width, so H' = 1 + (H + 2 * pad - HH) // stride."""
    return REF.conv_forward_naive(x, w, b, _with(conv_param, pad=0))[0], None


def conv_forward_naive_flipped_kernel(x, w, b, conv_param):
    """You flipped the kernel (a true convolution): this layer is a cross-correlation, out = b[f] + sum(x_window * w[f]) with w as given."""
    return REF.conv_forward_naive(x, w[:, :, ::-1, ::-1], b, conv_param)[0], None


def conv_forward_naive_forgot_bias(x, w, b, conv_param):
    """You left out the bias: add b[f] to every output position of filter f."""
    return REF.conv_forward_naive(x, w, np.zeros_like(b), conv_param)[0], None


# --- conv_backward_naive(dout, cache) -> (dx, dw, db) -------------------------


def conv_backward_naive_stride_ignored(dout, cache):
    """Your backward moves the windows one pixel at a time: output (i, j) came from the window starting at row i * stride, column j * stride."""
    x, w, b, conv_param = cache
    # the student loops over dout's (H', W') positions with step 1: those windows always fit in the padded x
    return REF.conv_backward_naive(dout, (x, w, b, _with(conv_param, stride=1)))


def conv_backward_naive_dx_padding_not_removed(dout, cache):
    """Your dx still has the padding: cut it off, dx = dx_padded[:, :, pad:pad + H, pad:pad + W], the shape of x."""
    x, w, b, conv_param = cache
    pad = conv_param["pad"]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return REF.conv_backward_naive(dout, (x_pad, w, b, _with(conv_param, pad=0)))


def conv_backward_naive_flipped_kernel(dout, cache):
    """You flipped the kernel (a true convolution): this layer is a cross-correlation, so dx uses w as given and dw[f] = sum of dout * the windows of x, unflipped."""
    x, w, b, conv_param = cache
    dx, dw, db = REF.conv_backward_naive(dout, (x, w[:, :, ::-1, ::-1], b, conv_param))
    return dx, dw[:, :, ::-1, ::-1], db


def conv_backward_naive_db_wrong_axes(dout, cache):
    """Your db is not summed over the batch: db = dout.sum(axis=(0, 2, 3)), one entry per filter, shape (F,)."""
    dx, dw, db = REF.conv_backward_naive(dout, cache)
    return dx, dw, dout.sum(axis=(2, 3))


# --- max_pool_forward_naive(x, pool_param) -> (out, cache) --------------------


def _windows(x, pool_param, step_h, step_w, ph, pw):
    """Max over the windows (i * step_h, j * step_w) of size ph x pw, for the reference's output size."""
    N, C, H, W = x.shape
    stride = pool_param["stride"]
    H_out = 1 + (H - pool_param["pool_height"]) // stride
    W_out = 1 + (W - pool_param["pool_width"]) // stride
    out = np.zeros((N, C, H_out, W_out))
    for i in range(H_out):
        for j in range(W_out):
            out[:, :, i, j] = x[:, :, i * step_h : i * step_h + ph, j * step_w : j * step_w + pw].max(axis=(2, 3))
    return out


def max_pool_forward_naive_steps_by_pool_size(x, pool_param):
    """Your windows move by the pool size, not by the stride: window (i, j) starts at row i * stride and column j * stride."""
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    return _windows(x, pool_param, ph, pw, ph, pw), None


def max_pool_forward_naive_square_pool(x, pool_param):
    """You used pool_height for both sides: the window is pool_height rows by pool_width columns."""
    ph = pool_param["pool_height"]
    s = pool_param["stride"]
    return _windows(x, _with(pool_param, pool_width=ph), s, s, ph, ph), None


# --- max_pool_backward_naive(dout, cache) -> dx -------------------------------


def max_pool_backward_naive_spread_over_window(dout, cache):
    """You spread each window's gradient over the whole window (that is average pooling): max pooling sends all of it to the window's maximum."""
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros(x.shape)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            g = dout[:, :, i, j][:, :, None, None] / (ph * pw)
            dx[:, :, i * stride : i * stride + ph, j * stride : j * stride + pw] += g
    return dx


def max_pool_backward_naive_whole_window(dout, cache):
    """You sent each window's gradient to every entry of the window: only the window's maximum gets it, dx = 0 elsewhere."""
    x, pool_param = cache
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    return max_pool_backward_naive_spread_over_window(dout, cache) * (ph * pw)


def _to_argmax(dout, x, pool_param, step_h, step_w, add):
    """Each window's upstream gradient routed to the window's maximum, windows stepped by (step_h, step_w)."""
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    dx = np.zeros(x.shape)
    for n, c, i, j in np.ndindex(*dout.shape):
        window = x[n, c, i * step_h : i * step_h + ph, j * step_w : j * step_w + pw]
        a, e = np.unravel_index(np.argmax(window), window.shape)
        target = (n, c, i * step_h + a, j * step_w + e)
        dx[target] = dx[target] + dout[n, c, i, j] if add else dout[n, c, i, j]
    return dx


def max_pool_backward_naive_overlap_overwrites(dout, cache):
    """Where windows overlap you overwrote the gradient: an entry that is the maximum of several windows gets the sum of their gradients (use +=)."""
    x, pool_param = cache
    return _to_argmax(dout, x, pool_param, pool_param["stride"], pool_param["stride"], add=False)


def max_pool_backward_naive_steps_by_pool_size(dout, cache):
    """Your backward moves the windows by the pool size, not by the stride: output (i, j) came from the window starting at row i * stride, column j * stride."""
    x, pool_param = cache
    return _to_argmax(dout, x, pool_param, pool_param["pool_height"], pool_param["pool_width"], add=True)
