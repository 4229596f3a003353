"""The second oracle: finite differences of the reference forward, and the error measure's scale.

The gradient of sum(upstream * forward(args)[slot]) with respect to one argument,
entry by entry, in float64: each entry's perturbed copy evaluated on its own, or all
the copies stacked in one call where the forward broadcasts over them and that gives
the same bits. Central differences in general; where the rubric says the forward is
affine in that argument (a matrix product, a convolution, a seeded mask), one-sided
differences of step 1, which are exact there and take half the calls, so a
convolution case stays cheap. Entries within a step of a kink are left out of the
comparison, since there the one-sided slopes differ and differences measure neither.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from grader.assignment.items import FiniteDifference

STACK_BYTES = 4 << 20  # of ``wrt`` or of output per stacked call
MAX_COPIES = 512  # per stacked call, whatever the size: a forward may build more than its output
MIN_COPIES = 12  # fewer copies go entry by entry: the stacked call and its checks would cost what they save
COMPARED_VALUES = 32  # output values of the copies evaluated alone too, at least
# numpy's reduction buffer: a longer sum may be cut in pieces, which a row and a whole array could cut apart
LONGEST_ROW = 8192


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
        return grad, away_from_kinks(fd, inputs, point.shape, step)
    base = objective() if fd.linear else None
    shifts = (1.0,) if fd.linear else (step, -step)
    sides = None if copies else copies_at_once(forward, values, point, upstream, slot, shifts, out, evaluate)
    if sides is None:
        sides = entry_by_entry(objective, point, shifts)
    grad = sides[0] - base if fd.linear else (sides[0] - sides[1]) / (2 * step)
    return grad, away_from_kinks(fd, inputs, point.shape, step)


def away_from_kinks(fd: FiniteDifference, inputs: Mapping[str, Any], shape: tuple[int, ...], step: float) -> np.ndarray:
    """The entries to compare: all but those within a step of the rubric's kink."""
    if fd.kink_input is None:
        return np.ones(shape, dtype=bool)
    return np.abs(np.asarray(inputs[fd.kink_input], dtype=np.float64) - fd.kink_at) > step


def entry_by_entry(objective: Callable[[], float], point: np.ndarray, shifts: tuple[float, ...]) -> list[np.ndarray]:
    """The objective with each entry of ``point`` moved by each shift in turn (in place, then put back)."""
    sides = [np.zeros_like(point) for _ in shifts]
    for index in np.ndindex(point.shape):
        original = point[index]
        for side, shift in zip(sides, shifts):
            point[index] = original + shift
            side[index] = objective()
        point[index] = original
    return sides


def copies_at_once(
    forward: Callable,
    values: list,
    point: np.ndarray,
    upstream: np.ndarray | None,
    slot: int | None,
    shifts: tuple[float, ...],
    out: np.ndarray,
    evaluate: Callable[[], Any],
) -> list[np.ndarray] | None:
    """What ``entry_by_entry`` gives, bit for bit, from a call on a stack of perturbed copies; None if not.

    Copy c of the stack is ``point`` with entry c % size moved by shift c // size. A forward
    that broadcasts over a new leading axis (a matrix product, a bias, a ReLU) computes each
    copy as it computes ``point`` alone: a stacked product is one gemm per copy and
    elementwise operations round the same. Each copy's sum(upstream * out), along one
    contiguous row, is then the pairwise sum that a C-ordered product of one copy gets.

    Whether the forward does so can't be read off the rubric, so copies spread over the
    stack (its first and last among them) are also evaluated alone, and their whole outputs
    (``COMPARED_VALUES`` values at least) and objectives must agree in every bit, as must
    every shape and layout; else, or if the stacked call fails, the caller goes entry by
    entry. A sample is evidence, not proof: a forward that sums in another order on a
    stack (two_layer_loss does, through a fancy-indexed intermediate laid out across the
    copies) differs only where the two orders round apart, in some copies and not others.
    One scalar per copy is too little to see that, so a scalar forward never gets here;
    across many output values, another order of operations shows in some of them.
    Dict arguments never get here either: they carry modes, seeds and running state. A
    stack holds at most ``STACK_BYTES`` of ``wrt`` or of output, so a large one takes
    several calls.
    """
    size, count = point.size, len(shifts) * point.size
    checks = max(3, -(-COMPARED_VALUES // max(out.size, 1)))
    if upstream is None or count < max(MIN_COPIES, 3 * checks) or out.size > LONGEST_ROW:
        return None  # one value per copy tells too little; the checks would cost what they save; see LONGEST_ROW
    if not (point.flags.c_contiguous and out.flags.c_contiguous and upstream.flags.c_contiguous):
        return None  # ``flat`` below would be a copy; or the lone product would be summed in another order
    position = next(i for i, v in enumerate(values) if v is point)
    flat = point.reshape(-1)  # a view, so moving an entry of ``flat`` moves it in ``point``
    moved = (flat + np.array(shifts)[:, None]).reshape(-1)  # copy c's moved entry
    picks = sorted({(count - 1) * i // (checks - 1) for i in range(checks)})
    objectives, outs = [], {}
    for start, n in spans(count, size, max(1, min(MAX_COPIES, STACK_BYTES // (8 * max(size, out.size))))):
        stack = np.empty((n, size))
        stack[:] = flat
        if n % size == 0:  # whole blocks of ``size`` copies: entry e moved in copy e of each
            stack.reshape(n // size, size * size)[:, :: size + 1] = moved[start : start + n].reshape(n // size, size)
        else:  # part of one block: copy r has entry start % size + r moved
            stack.reshape(-1)[start % size :: size + 1][:n] = moved[start : start + n]
        args = list(values)
        args[position] = stack.reshape(n, *point.shape)
        result = stacked_objectives(forward, args, upstream, slot, (n, *out.shape))
        if result is None:
            return None
        objectives.append(result[0])
        outs.update((c, result[1][c - start]) for c in picks if start <= c < start + n)
    stacked = np.concatenate(objectives) if len(objectives) > 1 else objectives[0]
    for c in picks:
        original = flat[c % size]
        flat[c % size] = original + shifts[c // size]
        alone = np.asarray(evaluate())  # compared before ``point`` is put back: the forward may return a view of it
        objective = np.float64(float((upstream * alone).sum()))  # as ``finite_difference``'s objective
        agree = same_bits(alone, outs[c]) and same_bits(objective, stacked[c])
        flat[c % size] = original
        if not agree:
            return None
    return list(stacked.reshape(len(shifts), *point.shape))


def spans(count: int, size: int, most: int) -> list[tuple[int, int]]:
    """(first copy, copies) of each stacked call: whole blocks of ``size`` copies (one per entry)
    up to ``most`` copies a call, or, where one block is more, pieces of one block."""
    if size <= most:
        per = most // size * size
        return [(start, min(per, count - start)) for start in range(0, count, per)]
    return [(block + e, min(most, size - e)) for block in range(0, count, size) for e in range(0, size, most)]


def stacked_objectives(
    forward: Callable, args: list, upstream: np.ndarray, slot: int | None, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray] | None:
    """Each copy's objective (in float64) and output from one call on a stack; None where the call
    fails or gives another shape, another layout or a value that is not real."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = forward(*args)
            out = np.asarray(out if slot is None else out[slot])
            if out.shape != shape or not out.flags.c_contiguous or out.dtype.kind != "f":
                return None
            product = upstream * out
            if not product.flags.c_contiguous or product.dtype.kind != "f":
                return None
            return product.reshape(shape[0], -1).sum(axis=1).astype(np.float64), out
    except Exception:  # noqa: BLE001 - a forward that doesn't broadcast may fail in any way
        return None


def same_bits(a: np.ndarray | np.generic, b: np.ndarray | np.generic) -> bool:
    """Whether two arrays hold the same values to the bit (NaN payloads and signed zeros included)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


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
