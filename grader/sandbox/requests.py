"""The parent's requests to the child: a call's header and its array payloads.

Arrays travel as ``.npy`` images (what ``np.save`` writes; the child loads them as
``np.load`` with ``allow_pickle=False`` does, ``untrusted/arrays.py``), hyperparameters (ints, floats, strings, dicts of them) in
the JSON header: both are the grader's own data, never the submission's. The frame
layout is ``grader/untrusted/protocol.py``'s.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from grader.untrusted.protocol import NPY_MAGIC

# numpy's .npy layout (``numpy.lib.format``): headers end on a multiple of this, and
# leave room for the first dimension to grow to this many digits.
NPY_ALIGN = 64
GROWTH_AXIS_MAX_DIGITS = 21

if TYPE_CHECKING:  # numpy is imported where arrays are made: `grade` imports this module before numpy
    import numpy as np


def call_request(
    call_id: int, function: str, args: Sequence[tuple[str, object]], plan: Mapping | None = None
) -> tuple[dict, list[bytes]]:
    """A call's header and payloads: arrays travel as .npy payloads, hyperparameters in the header.

    An array inside a dict hyperparameter travels as a payload named ``dict.key``; the
    child puts it back into that dict.

    ``plan`` holds the rest of the request (setup steps, the graded call's argument
    names, the slot or dict entry to send back: ``CallPlan.request``), all instructor
    data. A call of arrays alone with no plan is framed exactly as before plans existed.
    """
    import numpy as np

    arrays = [(name, value) for name, value in args if isinstance(value, np.ndarray)]
    values = {}
    for name, value in args:
        if isinstance(value, dict):  # an array in a dict (a given running statistic) travels as `name.key`
            arrays += [(f"{name}.{key}", entry) for key, entry in value.items() if isinstance(entry, np.ndarray)]
            value = {key: entry for key, entry in value.items() if not isinstance(entry, np.ndarray)}
        if not isinstance(value, np.ndarray):
            values[name] = value
    payloads = [encode_array(value) for _, value in arrays]
    header: dict = {
        "op": "call",
        "id": call_id,
        "function": function,
        "args": [{"name": name, "len": len(p)} for (name, _), p in zip(arrays, payloads)],
    }
    if values:
        header["values"] = values
    header.update(plan or {})
    return header, payloads


def encode_array(arr: np.ndarray) -> bytes:
    """An .npy image of a trusted input array, in C order (the child reads it with allow_pickle=False).

    The bytes ``np.save`` writes (its version 1.0 header, then the data), built
    directly for plain number dtypes (``plain_npy_header``), through numpy's header
    writer otherwise: ``np.save`` into a BytesIO copies the data through a buffered
    iterator, and numpy's header writer costs more than the rest of a call request.
    Object arrays, and headers too long for version 1.0, go through ``np.save`` itself
    (it refuses or chooses as it does).
    """
    import numpy as np

    arr = np.ascontiguousarray(arr)
    header = plain_npy_header(arr.dtype, arr.shape)
    if header is not None:
        return header + arr.tobytes()
    buffer = io.BytesIO()
    try:
        if arr.dtype.hasobject:
            raise ValueError("object arrays: np.save decides")
        np.lib.format.write_array_header_1_0(buffer, np.lib.format.header_data_from_array_1_0(arr))
        buffer.write(arr.tobytes())
    except ValueError:
        buffer = io.BytesIO()
        np.save(buffer, arr, allow_pickle=False)
    return buffer.getvalue()


def plain_npy_header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes | None:
    """The version-1.0 .npy header ``np.save`` writes for a C-ordered array of a plain number
    dtype (bool, integers, floats, complex), or None for any other dtype.

    numpy's layout: the header dict's keys sorted, room after the first dimension for
    ``GROWTH_AXIS_MAX_DIGITS`` digits, spaces and a newline up to a multiple of 64 bytes.
    """
    if dtype.kind not in "biufc" or dtype.names is not None or dtype.subdtype is not None or dtype.metadata:
        return None
    text = f"{{'descr': {dtype.str!r}, 'fortran_order': False, 'shape': {shape!r}, }}"
    if shape:
        text += " " * (GROWTH_AXIS_MAX_DIGITS - len(repr(shape[0])))
    size = len(text) + 1
    padding = NPY_ALIGN - (len(NPY_MAGIC) + 2 + size) % NPY_ALIGN
    return NPY_MAGIC + struct.pack("<H", size + padding) + text.encode("latin1") + b" " * padding + b"\n"
