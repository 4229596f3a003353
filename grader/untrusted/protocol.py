"""The frame layout and status vocabulary that the child and the parent's reader share.

Every message is a frame: ``MAGIC``, a 4-byte big-endian length, a JSON object of that
length, then the payloads whose byte lengths the JSON declares. Arrays travel as
``.npy`` images, never pickle: the parent's arguments as ``np.save`` writes them (any plain
number dtype, C order), the child's answers as little-endian float64 in C order. The parent's strict
reader (``grader/sandbox/wire.py``) imports the constants below, so the two sides
can't drift apart; this module imports only the standard library, because the child
runs it inside the sandbox.

The conversation:

0. child  -> ``{"status": "started"}`` once Python and numpy are loaded, before any of
   the submission runs: anything that goes wrong earlier is the machine's fault.
1. parent -> ``{"op": "load", "filename", "source_len", "forbidden"}`` + source bytes
   child  -> ``{"status": "ready", "names": [...]}`` or ``{"status": "import_error", ...}``
2. parent -> ``{"op": "call", "id", "function", "args": [{"name", "len"}]}`` + one
   ``.npy`` payload per argument (the child is never told whether a case is hidden)
   child  -> ``{"id", "status": "ok", "shape", "returned", "mutated", "len"}`` + a
   ``.npy`` payload, or ``{"id", "status": <one of REPLY_STATUSES>, ...}``; a
   ``bad_return`` carries a ``problem`` from ``BAD_RETURN_PROBLEMS`` and a ``detail``
   (a dtype, a type name), which the parent words itself; an ``exit`` carries
   sys.exit's argument as its ``message``.

   A call may carry more (all instructor data; quiz 4's calls carry none of it):
   ``values`` (hyperparameters by name: ints, floats, strings, dicts of them), ``setup``
   (steps before the graded call: ``{"function", "args", "as"}`` or ``{"update",
   "with"}``; results stay in the child), ``call`` (the graded call's argument names),
   ``slots``/``slot`` (the function returns a tuple of that many; send that one) and
   ``argument``/``key`` (send what the call left under ``key`` in its dict argument at
   that position). A reply to a call whose setup step failed carries ``"setup": index``.
   ``outputs`` (names: setup results, or ``as``, the graded call's own result) asks for
   several values: the ``ok`` reply's one payload is all of them flattened and joined,
   its ``shape`` their total size and ``parts`` each one's shape; a ``bad_return``
   names the output it is about by position (``"output": index``).
"""

import json
import os
import re
import struct

MAGIC = b"GRDR"
NPY_MAGIC = b"\x93NUMPY\x01\x00"
REPLY_STATUSES = frozenset(
    {"ok", "exception", "not_implemented", "memory", "exit", "recursion", "bad_return", "missing"}
)
# Why a return value can't be graded: ``none`` (None), ``complex``, ``dtype`` (not a
# real number type), ``not_rectangular`` (a ragged sequence), ``unconvertible`` (its
# conversion raised), ``type`` (anything else); for a tuple return, ``not_tuple`` and
# ``arity`` (the detail: how many values came back), and ``missing_key`` (the call left
# no such entry in its dict argument).
BAD_RETURN_PROBLEMS = frozenset(
    {"none", "complex", "dtype", "not_rectangular", "type", "unconvertible", "not_tuple", "arity", "missing_key"}
)


# The version-1.0 header ``np.save`` writes for a plain number array in C order, which is
# every argument the parent sends: the dtype's ``str``, the shape as Python writes a
# tuple of ints, then spaces and one newline. Anything else is left to ``np.load``.
_DIM = rb"(?:0|[1-9][0-9]*)"
_PLAIN_NPY_HEADER = re.compile(
    rb"\{'descr': '([<>|][biufc][1-9][0-9]?)', 'fortran_order': False, 'shape': \(((?:"
    + _DIM
    + rb",|"
    + _DIM
    + rb"(?:, "
    + _DIM
    + rb")+)?)\), \} *\n\Z"
)
MAX_PLAIN_HEADER = 1024


def plain_npy_layout(payload):
    """(dtype string, shape, data offset) of a .npy image with a header ``_PLAIN_NPY_HEADER``
    accepts, or None: the child reads those arrays directly and leaves the rest to ``np.load``."""
    if payload[:8] != NPY_MAGIC or len(payload) < 10:
        return None
    (header_len,) = struct.unpack_from("<H", payload, 8)
    if header_len > MAX_PLAIN_HEADER or len(payload) < 10 + header_len:
        return None
    match = _PLAIN_NPY_HEADER.match(payload, 10, 10 + header_len)
    if match is None:
        return None
    shape = tuple(int(d) for d in match.group(2).split(b",") if d)
    return match.group(1).decode("ascii"), shape, 10 + header_len


class Inbox:
    """The child's end of the request pipe, read in large pieces.

    A request (frame and payloads) is written in one piece, so one read usually
    brings all of it; the rest of a piece waits here for the next ``read_exact``.
    Only the parent writes to this pipe, so its lengths are trusted.
    """

    def __init__(self, fd):
        self.fd = fd
        self.buffer = bytearray()

    def read_exact(self, n):
        buffer = self.buffer
        while len(buffer) < n:
            chunk = os.read(self.fd, min(max(n - len(buffer), 1 << 16), 1 << 20))
            if not chunk:
                raise EOFError
            buffer += chunk
        data = bytes(buffer[:n])
        del buffer[:n]
        return data

    def read_frame(self):
        prefix = self.read_exact(8)
        if prefix[:4] != MAGIC:
            raise EOFError
        (length,) = struct.unpack(">I", prefix[4:])
        return json.loads(self.read_exact(length))


def encode_frame(header, *payloads):
    body = json.dumps(header).encode()
    return MAGIC + struct.pack(">I", len(body)) + body + b"".join(payloads)


def write_frame(fd, header, *payloads):
    view = memoryview(encode_frame(header, *payloads))
    while view:
        written = os.write(fd, view)
        view = view[written:]


def encode_float64(arr):
    """A .npy (version 1.0) image of a C-ordered little-endian float64 array."""
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': " + repr(tuple(arr.shape)) + ", }"
    header = header.encode("latin1")
    pad = 64 - (10 + len(header) + 1) % 64
    header += b" " * pad + b"\n"
    return NPY_MAGIC + struct.pack("<H", len(header)) + header + arr.tobytes()
