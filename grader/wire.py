"""The parent's side of the child protocol: framing, and a strict reader for returned arrays.

Everything read here comes from an untrusted process, so every length is bounded
before anything is allocated, arrays are accepted only as little-endian float64 in
C order, and array data is read into memory only when its size equals the expected
output's size (a wrong-size answer is recorded by shape alone and its bytes skipped).
The frame layout is documented in ``grader/child.py``.
"""

from __future__ import annotations

import ast
import io
import json
import os
import re
import select
import struct
import time
from dataclasses import dataclass

import numpy as np

from grader.errors import ProtocolError

MAGIC = b"GRDR"
MAX_JSON = 64 * 1024
NPY_MAGIC = b"\x93NUMPY\x01\x00"
MAX_NPY_HEADER = 256
_NPY_HEADER = re.compile(r"^\{'descr': '<f8', 'fortran_order': False, 'shape': (\((?:\d+, ?)*\d*\)), \} *\n$")
MAX_DIMS = 8


class Timeout(Exception):
    """The child did not answer before the deadline (internal to the sandbox)."""


def encode_frame(header: dict, *payloads: bytes) -> bytes:
    body = json.dumps(header).encode()
    return MAGIC + struct.pack(">I", len(body)) + body + b"".join(payloads)


def encode_array(arr: np.ndarray) -> bytes:
    """An .npy image of a trusted input array (the child reads it with allow_pickle=False)."""
    buffer = io.BytesIO()
    np.save(buffer, arr, allow_pickle=False)
    return buffer.getvalue()


@dataclass
class FrameReader:
    """Reads frames from a child's reply pipe, never blocking past a deadline."""

    fd: int

    def read_exact(self, n: int, deadline: float) -> bytes:
        chunks: list[bytes] = []
        remaining = n
        while remaining:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise Timeout
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                raise Timeout
            chunk = os.read(self.fd, min(remaining, 1 << 16))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def skip(self, n: int, deadline: float) -> None:
        """Discard n bytes without holding more than one chunk."""
        while n:
            n -= len(self.read_exact(min(n, 1 << 16), deadline))

    def read_header(self, deadline: float) -> dict:
        prefix = self.read_exact(8, deadline)
        if prefix[:4] != MAGIC:
            raise ProtocolError("the reply did not start with the frame marker")
        (length,) = struct.unpack(">I", prefix[4:])
        if length > MAX_JSON:
            raise ProtocolError(f"a reply header of {length} bytes is over the {MAX_JSON}-byte limit")
        try:
            header = json.loads(self.read_exact(length, deadline))
        except (ValueError, UnicodeDecodeError) as err:
            raise ProtocolError("a reply header was not valid JSON") from err
        if not isinstance(header, dict):
            raise ProtocolError("a reply header was not a JSON object")
        return header

    def read_array(
        self, length: object, expected_size: int, deadline: float, max_skip: int
    ) -> tuple[tuple[int, ...], np.ndarray | None]:
        """Read one .npy payload of ``length`` bytes strictly.

        Returns the declared shape and, when it holds at most ``expected_size``
        elements, the data as float64; otherwise the data is skipped (None).
        """
        if not isinstance(length, int) or length < len(NPY_MAGIC) + 2:
            raise ProtocolError("an array payload had no valid length")
        if length > max_skip + MAX_NPY_HEADER + 10:
            raise ProtocolError(f"the returned array is {length} bytes, over the {max_skip}-byte limit")
        prelude = self.read_exact(len(NPY_MAGIC) + 2, deadline)
        if prelude[:8] != NPY_MAGIC:
            raise ProtocolError("the array payload is not a version-1.0 .npy image")
        (header_len,) = struct.unpack("<H", prelude[8:])
        if header_len > MAX_NPY_HEADER or 10 + header_len > length:
            raise ProtocolError("the array header is too long")
        shape = parse_npy_header(self.read_exact(header_len, deadline))
        data_len = length - 10 - header_len
        count = 1
        for dim in shape:
            count *= dim
        if data_len != 8 * count:
            raise ProtocolError(f"the array declares shape {shape} but carries {data_len} bytes")
        if count > expected_size:  # smaller answers are read too: they help name the mistake
            self.skip(data_len, deadline)
            return shape, None
        data = self.read_exact(data_len, deadline)
        return shape, np.frombuffer(data, dtype="<f8").reshape(shape).astype(np.float64)


def parse_npy_header(raw: bytes) -> tuple[int, ...]:
    """The shape from a .npy header, accepting only '<f8' in C order."""
    try:
        text = raw.decode("latin1")
    except UnicodeDecodeError as err:  # pragma: no cover - latin1 decodes every byte
        raise ProtocolError("the array header is not text") from err
    match = _NPY_HEADER.match(text)
    if not match:
        raise ProtocolError("the array is not little-endian float64 in C order")
    shape = ast.literal_eval(match.group(1))
    shape = shape if isinstance(shape, tuple) else (shape,)
    if len(shape) > MAX_DIMS or not all(isinstance(d, int) and 0 <= d < 1 << 31 for d in shape):
        raise ProtocolError(f"the array shape {shape} is not plausible")
    return tuple(shape)
