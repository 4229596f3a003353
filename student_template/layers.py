"""Layers: forward and backward passes of a small neural-network library, CS231n style.

Fill in each function with numpy (no automatic differentiation: torch, jax, autograd
and tensorflow are not allowed). Keep the names and arguments exactly as they are.

Every *_forward returns a tuple (out, cache). The cache is yours: any object (a tuple,
a dict, a class...) holding what the matching *_backward needs. The grader never looks
inside it; it passes the cache YOUR forward made to YOUR backward, so a backward can
only be right once its forward runs (and a forward that crashes is reported first).
Every *_backward takes (dout, cache), dout being the upstream gradient dL/dout, and
returns the gradients with respect to the forward's inputs, in the order of the
forward's arguments.

Shape convention: every gradient has the shape of the thing it is the gradient of.
db has the shape of b, (M,): a (1, M) answer has the right values in the wrong shape
and earns only the shape credit.

Shapes used below:
    N examples in a batch. affine: x (N, d_1, ..., d_k) flattened to (N, D), w (D, M),
    b (M,). batchnorm: x (N, D), gamma and beta (D,). softmax_loss: scores x (N, C),
    int labels y (N,), each in 0 .. C-1. Convolution and pooling: NCHW, x (N, C, H, W),
    filters w (F, C, HH, WW), b (F,).

Conventions the grader checks:
- ReLU's gradient is 0 wherever x <= 0, including where x is exactly 0.
- softmax_loss is the MEAN over the batch (dx carries the 1/N). The scores are drawn
  at a moderate scale, so an unshifted softmax is still right (shifting by the row
  max is the habit to keep). The loss may be any real scalar type (float, np.float64,
  a 0-d array).
- batchnorm: train mode uses the batch mean and the biased variance (divide by N,
  not N - 1) and updates bn_param['running_mean'] and bn_param['running_var'] in the
  dict, creating them as zeros of shape (D,) when they are absent; what a train call
  leaves there is graded, as is a test-mode call that uses them. The backward is
  graded on train-mode caches.
- dropout: p is the probability of KEEPING a unit (inverted dropout). Every train
  case carries a seed and is compared exactly, so call np.random.seed(seed) first and
  draw the mask with np.random.rand(*x.shape) < p (np.random.uniform and
  np.random.random_sample give the same numbers and are right; a generator from
  np.random.default_rng draws different numbers and is not). Test mode returns x.
  The backward is graded on caches from both modes.
- Output sizes use floor division: H' = 1 + (H + 2 * pad - HH) // stride for the
  convolution and H' = 1 + (H - pool_height) // stride for pooling (widths alike).
  The convolution does not flip the kernel (cross-correlation) and pads with zeros.
- Max-pooling inputs have no ties within a window.
- The grader passes each call writable copies of the inputs, so editing an input in
  place is not penalised here (work on a copy anyway: it is the better habit).

Check your work with the self-check in the folder your course hands out with this
file: `python selfcheck.py layers.py` runs each function on its visible case and says
what to fix (it needs numpy). Then upload layers.py as your course says.
"""

import numpy as np  # noqa: F401


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
    raise NotImplementedError


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
    raise NotImplementedError


def relu_forward(x):
    """Forward pass of a rectified linear unit.

    Input:
    - x: array of any shape.

    Returns a tuple (out, cache):
    - out: max(x, 0), the shape of x.
    - cache: whatever relu_backward needs.
    """
    raise NotImplementedError


def relu_backward(dout, cache):
    """Backward pass of a rectified linear unit.

    Inputs:
    - dout: upstream gradient, the shape of x.
    - cache: the cache relu_forward returned.

    Returns dx, dL/dx, the shape of x: dout where x > 0 and 0 where x <= 0
    (x == 0 included).
    """
    raise NotImplementedError


def softmax_loss(x, y):
    """Softmax cross-entropy loss, averaged over the batch, and its gradient.

    Inputs:
    - x: scores, shape (N, C); x[i, j] is the score of class j for example i.
    - y: labels, shape (N,); y[i] is the class of example i, 0 <= y[i] < C.

    Returns a tuple (loss, dx):
    - loss: the scalar L = (1/N) * sum_i -log softmax(x[i])[y[i]].
    - dx: dL/dx, shape (N, C): (softmax(x) - onehot(y)) / N.
    """
    raise NotImplementedError


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
    raise NotImplementedError


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
    raise NotImplementedError


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
    raise NotImplementedError


def dropout_backward(dout, cache):
    """Backward pass of inverted dropout.

    Inputs:
    - dout: upstream gradient, the shape of x.
    - cache: the cache dropout_forward returned (train or test mode).

    Returns dx, dL/dx, the shape of x: dout * mask in train mode, dout in
    test mode.
    """
    raise NotImplementedError


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
    raise NotImplementedError


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
    raise NotImplementedError


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
    raise NotImplementedError


def max_pool_backward_naive(dout, cache):
    """Naive backward pass of a max-pooling layer.

    Inputs:
    - dout: upstream gradient, shape (N, C, H', W').
    - cache: the cache max_pool_forward_naive returned.

    Returns dx, dL/dx, shape (N, C, H, W): each window's upstream gradient goes
    to the position of that window's maximum (and nowhere else); where windows
    overlap, the contributions add up.
    """
    raise NotImplementedError
