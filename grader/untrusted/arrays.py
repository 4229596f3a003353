"""The child's side of the arrays a call takes: reading the parent's, and seeing whether the call changed them.

Imported by ``child.py`` inside the sandbox, so standard library, numpy and this folder only.
"""

import io
import math

import numpy as np

from .protocol import plain_npy_layout


def load_array(payload):
    """An argument's array, as ``np.load(..., allow_pickle=False)`` gives it (a writable copy).

    The headers the parent writes are read directly (``protocol.plain_npy_layout``):
    ``np.load`` parses each one with ``ast.literal_eval``, which costs more than the call
    itself. Any other image, or one whose data is not exactly its shape's, goes to ``np.load``.
    """
    layout = plain_npy_layout(payload)
    if layout is not None:
        descr, shape, offset = layout
        try:
            dtype = np.dtype(descr)
            count = math.prod(shape)
            if len(payload) - offset == count * dtype.itemsize:
                return np.frombuffer(payload, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
        except (TypeError, ValueError):
            pass
    return np.load(io.BytesIO(payload), allow_pickle=False)


def unchanged(after, before):
    """Whether a call left an argument's values as they were (NaN counts as equal to NaN).

    The same dtype, shape and bytes mean equal values, and seeing that is cheap, so
    ``np.array_equal`` is asked only when the bytes differ (``-0.0`` equals ``0.0``).
    """
    if after.shape != before.shape:
        return False
    if after.dtype == before.dtype and after.tobytes() == before.tobytes():
        return True
    return np.array_equal(after, before, equal_nan=True)
