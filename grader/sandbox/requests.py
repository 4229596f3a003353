"""The parent's requests to the child: a call's header and its array payloads.

Arrays travel as ``.npy`` images (``np.save`` with ``allow_pickle=False``; the child
loads them the same way), hyperparameters (ints, floats, strings, dicts of them) in
the JSON header: both are the grader's own data, never the submission's. The frame
layout is ``grader/untrusted/protocol.py``'s.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

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

    The bytes ``np.save`` writes, built directly (its version 1.0 header, then the
    data): ``np.save`` into a BytesIO copies the data through a buffered iterator, which
    costs more than the rest of a call request. Object arrays, and headers too long
    for version 1.0, go through ``np.save`` itself (it refuses or chooses as it does).
    """
    import numpy as np

    arr = np.ascontiguousarray(arr)
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
