"""The second oracle: finite differences of the reference forward, and the error measure's scale.

The gradient of sum(upstream * forward(args)[slot]) with respect to one argument,
entry by entry, in float64. Central differences in general; where the rubric says
the forward is affine in that argument (a matrix product, a convolution, a seeded mask),
one-sided differences of step 1, which are exact there and take half the calls, so
a convolution case stays cheap. Entries within a step of a kink are left out of the
comparison, since there the one-sided slopes differ and differences measure neither.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from grader.assignment.items import FiniteDifference


def finite_difference(
    forward: Callable,
    fd: FiniteDifference,
    inputs: Mapping[str, Any],
    step: float,
    slot: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The gradient with respect to ``fd.wrt`` and a mask of the entries to compare.

    ``slot`` picks one value of a forward that returns a tuple. Dict arguments are
    copied for every evaluation, so a forward that writes into one (a batch
    running statistics) evaluates the same function each time.
    """
    if inputs[fd.wrt].dtype.kind != "f":
        raise ValueError(f"finite_difference.wrt {fd.wrt!r} is not a real-valued input (dtype {inputs[fd.wrt].dtype})")
    point = np.array(inputs[fd.wrt], dtype=np.float64)
    upstream = None if fd.upstream is None else inputs[fd.upstream]
    values = [point if name == fd.wrt else inputs[name] for name in fd.args]  # `point` is perturbed in place
    copies = any(isinstance(v, dict) for v in values)

    def evaluate():
        out = (
            forward(*((copy.deepcopy(v) if isinstance(v, dict) else v) for v in values)) if copies else forward(*values)
        )
        return out if slot is None else out[slot]

    out = np.asarray(evaluate())
    if upstream is not None and upstream.shape != out.shape:
        raise ValueError(f"upstream {fd.upstream!r} has shape {upstream.shape} but {fd.forward}(...) has {out.shape}")
    if upstream is None and out.shape != ():
        raise ValueError(f"{fd.forward}(...) returns shape {out.shape}: without `upstream` it must return a scalar")
    if fd.kink_input is not None and inputs[fd.kink_input].shape != point.shape:
        raise ValueError(f"kinks.input {fd.kink_input!r} must have the shape of {fd.wrt!r}, {point.shape}")

    def objective() -> float:
        out = evaluate()
        return float((upstream * out).sum()) if upstream is not None else float(out)

    if fd.stacked and upstream is None and not copies:
        position = next(i for i, v in enumerate(values) if v is point)
        return stacked_differences(forward, values, position, point, step), np.ones(point.shape, bool)
    if fd.batched and point.ndim > fd.batch_axis and upstream is not None:
        grad = batched_differences(evaluate, values, fd, point, upstream, 1.0 if fd.linear else step)
        mask = np.ones(point.shape, dtype=bool)
        if fd.kink_input is not None:
            mask = np.abs(np.asarray(inputs[fd.kink_input], dtype=np.float64) - fd.kink_at) > step
        return grad, mask
    grad = np.zeros_like(point)
    if fd.linear:
        base = objective()
        for index in np.ndindex(point.shape):
            original = point[index]
            point[index] = original + 1.0
            grad[index] = objective() - base
            point[index] = original
    else:
        for index in np.ndindex(point.shape):
            original = point[index]
            point[index] = original + step
            plus = objective()
            point[index] = original - step
            minus = objective()
            point[index] = original
            grad[index] = (plus - minus) / (2 * step)
    mask = np.ones(point.shape, dtype=bool)
    if fd.kink_input is not None:
        mask = np.abs(np.asarray(inputs[fd.kink_input], dtype=np.float64) - fd.kink_at) > step
    return grad, mask


def batched_differences(
    evaluate: Callable,
    values: list,
    fd: FiniteDifference,
    point: np.ndarray,
    upstream: np.ndarray,
    step: float,
) -> np.ndarray:
    """Every perturbation of one slice's coordinate in one call, stacked along the batch axis.

    For a forward that computes each slice along ``fd.batch_axis`` of ``wrt`` into the
    same slice along ``fd.batch_out_axis`` of its output on its own (each example of a
    layer's input; each filter of a convolution's weights, with its bias), copy k of the
    stack has coordinate k of every slice moved; each slice's own objective,
    sum(upstream * out) over that output slice, then changes only by that partial
    derivative. Arguments sliced the same way (``fd.batch_tile``: the bias beside the
    filters) are repeated along their axis. Two calls (one for an affine forward, plus
    the base) instead of two per entry.
    """
    position = next(i for i, v in enumerate(values) if v is point)
    stacked_point = np.moveaxis(point, fd.batch_axis, 0)
    n = stacked_point.shape[0]
    per_slice = int(np.prod(stacked_point.shape[1:]))
    offsets = np.zeros((per_slice, *stacked_point.shape))
    for k in range(per_slice):
        offsets[k].reshape(n, per_slice)[:, k] = step
    up = np.moveaxis(upstream, fd.batch_out_axis, 0).reshape(1, n, -1)
    tiles = dict(fd.batch_tile)
    repeated = {
        i: np.concatenate([values[i]] * per_slice, axis=tiles[name]) for i, name in enumerate(fd.args) if name in tiles
    }
    originals = list(values)

    def objectives(shift: np.ndarray) -> np.ndarray:
        batch = (stacked_point[None] + shift).reshape(per_slice * n, *stacked_point.shape[1:])
        values[position] = np.moveaxis(batch, 0, fd.batch_axis)
        for i, value in repeated.items():
            values[i] = value
        try:
            out = np.asarray(evaluate(), dtype=np.float64)
        finally:
            values[:] = originals
        out = np.moveaxis(out, fd.batch_out_axis, 0).reshape(per_slice, n, -1)
        return (out * up).sum(axis=2)

    if fd.linear:
        change = objectives(offsets) - objectives(np.zeros_like(offsets))
    else:
        change = (objectives(offsets) - objectives(-offsets)) / (2 * step)
    gradient = np.ascontiguousarray(change.T).reshape(stacked_point.shape)
    return np.ascontiguousarray(np.moveaxis(gradient, 0, fd.batch_axis))


def stacked_differences(forward: Callable, values: list, position: int, point: np.ndarray, step: float) -> np.ndarray:
    """Central differences of a scalar forward in two calls: every entry's perturbation is one copy of
    ``wrt`` in a stack along a new axis 0, which the forward broadcasts over (one value per copy)."""
    size = point.size
    offsets = (np.eye(size) * step).reshape(size, *point.shape)

    def values_at(shift: np.ndarray) -> np.ndarray:
        args = list(values)
        args[position] = point[None] + shift
        return np.asarray(forward(*args), dtype=np.float64).reshape(size)

    return ((values_at(offsets) - values_at(-offsets)) / (2 * step)).reshape(point.shape)


def agreeing_entries(reference: np.ndarray, differences: np.ndarray, tol, scale: float) -> np.ndarray:
    """Where finite differences agree with the reference's own answer (``tol``: the rubric's
    finite-difference tolerance, relative to ``scale``): elsewhere a step crossed a kink."""
    return np.abs(reference - differences) <= tol.atol + tol.rtol * scale


def magnitude(expected: np.ndarray, args: list) -> float:
    """The scale of the error measure: the largest entry of the answer or of a real-valued argument.

    Rounding follows what a computation went through, not only where it ended: eq. (9)
    on a confident row subtracts 1 from P = 0.9997, and the answer's largest entry
    (3e-4) is far below the size of the numbers float32 rounded (1). Arguments that are
    not arrays (hyperparameters, a cache) don't count.
    """
    arrays = [a for a in (expected, *args) if isinstance(a, np.ndarray)]
    sizes = [float(np.max(np.abs(a))) for a in arrays if a.size and a.dtype.kind == "f"]
    return max(sizes, default=0.0)
