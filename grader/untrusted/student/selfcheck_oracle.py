"""The self-check's judging half: the expected gradient by finite differences, and the verdict on a value.

Shipped in the student bundle beside ``selfcheck.py`` (which loads it), so the standard
library and numpy only. The expected gradient is the central finite difference of
``sum(upstream * forward(inputs))``, as in the grader's oracle, one-sided at an exact
kink on the side the assignment's convention picks. A verdict uses the grader's words
and order (None -> type -> shape -> finite -> values); ``tests/test_feedback_parity.py``
holds the words to ``grader/grading/feedback_verdicts.py``'s.
"""

from __future__ import annotations

import numpy as np


def decode_array(spec: dict) -> np.ndarray:
    """An input array from its JSON form (dtype, shape and nested lists), bit for bit."""
    return np.array(spec["data"], dtype=spec["dtype"]).reshape(spec["shape"])


def encode_array(value: np.ndarray) -> dict:
    """The JSON form of an input array; float64 survives JSON exactly (shortest round-trip repr)."""
    value = np.asarray(value)
    dtype = "int64" if value.dtype.kind in "iu" else "float64"
    return {"dtype": dtype, "shape": list(value.shape), "data": value.astype(dtype).tolist()}


def finite_difference(forward, fd: dict, inputs: dict, step: float, side: str | None) -> tuple[np.ndarray, np.ndarray]:
    """The gradient of sum(upstream * forward(args)) (or the scalar forward) wrt ``fd["wrt"]``, and a mask.

    Central differences, as the grader's oracle. Within ``step`` of a kink a central
    difference straddles it and measures neither slope, so there a one-sided difference
    is taken away from the kink, and exactly at it on ``side`` ("left" or "right", the
    assignment's convention). With no known side those entries are masked out.
    """
    point = np.array(inputs[fd["wrt"]], dtype=np.float64)
    upstream = None if fd.get("upstream") is None else inputs[fd["upstream"]]

    def objective() -> float:
        values = [point if name == fd["wrt"] else inputs[name] for name in fd["args"]]
        out = forward(*values)
        return float(np.sum(upstream * out)) if upstream is not None else float(out)

    kink = fd.get("kink")
    near = np.zeros(point.shape, dtype=bool)
    offset = np.zeros(point.shape)
    if kink is not None:
        offset = np.asarray(inputs[kink["input"]], dtype=np.float64) - kink["at"]
        if offset.shape == point.shape:
            near = np.abs(offset) <= step
    grad = np.zeros_like(point)
    mask = np.ones(point.shape, dtype=bool)
    for index in np.ndindex(point.shape):
        original = point[index]
        if near[index]:
            towards = "right" if offset[index] > 0 else "left" if offset[index] < 0 else side
            if towards is None:
                mask[index] = False
                continue
            sign = 1.0 if towards == "right" else -1.0
            at = objective()
            point[index] = original + sign * step
            moved = objective()
            point[index] = original
            grad[index] = sign * (moved - at) / step + 0.0  # + 0.0: no -0 in a message
            continue
        point[index] = original + step
        plus = objective()
        point[index] = original - step
        minus = objective()
        point[index] = original
        grad[index] = (plus - minus) / (2 * step)
    if kink is not None and offset.shape != point.shape:
        mask = np.abs(offset) > step  # a kink in another input: leave its entries out, as the grader does
    return grad, mask


def to_float64(value):
    """A returned value as a float64 array, or in words why it can't be graded (the grader's child rules)."""
    if value is None:
        return None, "returned None; expected a numpy array (did you forget `return`?)"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            what = "complex numbers" if value.dtype.kind == "c" else f"dtype {value.dtype}"
            return None, f"returned an array of {what}; expected an array of real numbers"
        return np.array(value, dtype="<f8", order="C", subok=False), None
    if isinstance(value, (list, tuple, int, float, np.generic)) and not isinstance(value, (bool, complex)):
        try:
            arr = np.array(value, dtype="<f8")
        except (TypeError, ValueError, OverflowError):
            return None, f"returned a {type(value).__name__} that is not a rectangular array of real numbers"
        return np.array(arr, order="C"), None  # as the child: ascontiguousarray turns 0-d into 1-d
    return None, f"returned {type(value).__name__}; expected a numpy array"


def squeeze_shape(shape) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1)


def wrong_entries(got, expected, tol: dict, scale: float | None = None):
    """The grader's measure: |got - expected| > atol + rtol * scale (NaN is wrong).

    The scale is the case's magnitude where the bundle ships it (an item judged by its
    expected value), else max|expected|, as the grader's finite-difference comparison.
    """
    if scale is None:
        scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return ~(np.abs(got - expected) <= tol["atol"] + tol["rtol"] * scale)


def within(got, expected, tol: dict, mask=None, scale: float | None = None) -> bool:
    wrong = wrong_entries(got, expected, tol, scale)
    return not bool(np.any(wrong if mask is None else wrong[mask]))


def first_differences(got, expected, tol: dict, mask, limit: int = 3, scale: float | None = None) -> list[dict]:
    wrong = np.argwhere(wrong_entries(got, expected, tol, scale) & mask)
    return [
        {"index": [int(i) for i in idx], "expected": float(expected[tuple(idx)]), "got": float(got[tuple(idx)])}
        for idx in wrong[:limit]
    ]


def judge(function: str, value, expected: np.ndarray, mask: np.ndarray, settings: dict) -> dict:
    """The verdict on one returned value, in the grader's order: None -> type -> shape -> finite -> values."""
    tol = settings["fd_tolerance"]
    scale = settings.get("scale")
    want = expected.shape
    arr, problem = to_float64(value)
    if problem is not None:
        return {"status": "bad_return", "message": f"{function} {problem}"}
    got_shape = tuple(arr.shape)
    if arr.size != expected.size:
        hint = ""
        if squeeze_shape(got_shape) == squeeze_shape(want):
            hint = ": check which axes have size 1"
        elif len(got_shape) != len(want):
            hint = f": expected a {len(want)}-d array"
        return {"status": "wrong_shape", "message": f"{function} returned shape {got_shape}, expected {want}{hint}"}
    if not np.all(np.isfinite(arr)):
        return {"status": "not_finite", "message": f"{function} returned NaN or infinite entries"}
    status, note = "passed", ""
    if got_shape != want:
        squeezable = squeeze_shape(got_shape) == squeeze_shape(want)
        if not squeezable or not within(arr.reshape(want), expected, tol, mask, scale):
            transposed = len(got_shape) == 2 and got_shape == want[::-1] and within(arr.T, expected, tol, mask, scale)
            lead = ": the values are right but transposed" if transposed else ""
            if squeezable:
                lead = ": the shape differs only in axes of size 1, but the values are wrong too"
            return {"status": "wrong_shape", "message": f"{function} returned shape {got_shape}, expected {want}{lead}"}
        arr = arr.reshape(want)
        status = "shape_credit"
        if settings.get("gradient", True):
            why = "the gradient has the shape of the parameter"
        elif want == ():
            why = "a scalar is a single number, not an array"
        else:
            why = "the value has exactly the shape the assignment states"
        note = f"{function} returned shape {got_shape}, expected {want}: {why} (the shape convention)"
    if within(arr, expected, tol, mask, scale):
        return {"status": status, "message": note}
    return {
        "status": "wrong_values",
        "message": f"{function} returned wrong values",
        "diff": first_differences(arr, expected, tol, mask, scale=scale),
    }
