"""The parent's side of the child protocol: framing, and a strict reader for returned arrays.

Everything read here comes from an untrusted process, so every length is bounded
before anything is allocated, arrays are accepted only as little-endian float64 in
C order, and array data is read into memory only when it is no larger than the
expected output (a bigger answer is recorded by shape alone and its bytes skipped).
Every field of a reply is type-checked (``parse_reply``) and every string cleaned
(``clean_text``) before the grader uses it, because a submission can rewrite the child
and send anything: a malformed reply must cost only its own call, never crash the
grader or put control characters or invalid UTF-8 in the report.
The frame layout and the status vocabulary are ``grader/untrusted/protocol.py``'s.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grader.errors import ProtocolError
from grader.untrusted.protocol import BAD_RETURN_PROBLEMS, MAGIC, NPY_MAGIC, REPLY_STATUSES, encode_frame  # noqa: F401 - the parent frames requests with it

if TYPE_CHECKING:  # numpy is imported where arrays are made: `grade` imports this module before numpy
    import numpy as np

MAX_JSON = 64 * 1024
CHUNK = 1 << 16  # the most a FrameReader reads at once
MAX_NPY_HEADER = 256
# numpy's header for '<f8' in C order (spacing inside the shape may vary harmlessly):
# dimensions without leading zeros, one newline at the very end (\Z: `$` would also
# match before a second one).
_DIM = r"(?:0|[1-9][0-9]*)"
_NPY_HEADER = re.compile(
    rf"\{{'descr': '<f8', 'fortran_order': False, 'shape': (\((?:{_DIM}, ?)*(?:{_DIM})?\)), \}} *\n\Z"
)
MAX_DIMS = 8
MAX_NAMES = 1000
# Characters that could rewrite a terminal or reorder text: the C0/C1 controls but tab and
# newline (every character of Unicode category Cc, a set the standard never changes),
# and the bidirectional overrides.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


MAX_SKIPPED_FRAMES = 16


def new_call_id() -> int:
    """An id no submission can guess ahead: it learns a call's id only while that call runs."""
    return secrets.randbits(52)


class Timeout(Exception):
    """The child did not answer before the deadline (internal to the sandbox)."""


def clean_text(value: object, limit: int) -> str:
    """Child-supplied text made safe to store and print.

    Lone surrogates (which would make the report unwritable as UTF-8) become U+FFFD,
    carriage returns become newlines (a ``\\r`` could overwrite the grader's own line on
    a terminal), and escape sequences and other controls are replaced, so a submission
    can't print a fake "Total: 11/11" over the real one.
    """
    text = value if isinstance(value, str) else ""
    text = text[:limit]
    if not text.isascii():  # ASCII holds no surrogate
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _UNSAFE.sub("\ufffd", text)


def write_all(fd: int, data: bytes, deadline: float) -> None:
    """Write everything to a non-blocking pipe, or raise Timeout at the deadline.

    A child that stops reading (a submission's thread holding the GIL, a process that
    closed its request pipe's reader) must not block the grader on a full pipe.
    Raises OSError (BrokenPipeError) when the reader is gone.
    """
    view = memoryview(data)
    full = False  # a write is tried first: only a full pipe is waited on
    while view:
        wait = deadline - time.monotonic()
        if wait <= 0:
            raise Timeout
        if full:
            _, ready, _ = select.select([], [fd], [], wait)
            if not ready:
                raise Timeout
        try:
            view = view[os.write(fd, view[: 1 << 16]) :]
            full = False
        except BlockingIOError:
            full = True


@dataclass(frozen=True)
class Reply:
    """One call's reply header, every field checked; strings are cleaned but not yet trusted."""

    status: str
    length: int | None = None
    error_type: str | None = None
    message: str = ""
    lineno: int | None = None
    returned: str | None = None
    problem: str | None = None
    detail: str = ""
    mutated: tuple[str, ...] = ()
    setup: int | None = None  # the setup step that failed, by position in the parent's own plan
    output: int | None = None  # the output a bad return is about, by position in the parent's plan


def _field(header: dict, key: str, kind: type | tuple[type, ...], default=None):
    value = header.get(key, default)
    if value is not default and (not isinstance(value, kind) or isinstance(value, bool) and kind is not bool):
        raise ProtocolError(f"the reply field {key!r} has the wrong type")
    return value


def parse_lineno(where: object) -> int | None:
    """The line number of a ``where`` object, or None; the line's text is looked up by the parent."""
    if where is None:
        return None
    if not isinstance(where, dict):
        raise ProtocolError("the reply field 'where' has the wrong type")
    lineno = where.get("lineno")
    if lineno is None:
        return None
    if not isinstance(lineno, int) or isinstance(lineno, bool) or not 0 < lineno < 1 << 31:
        raise ProtocolError("the reply field 'where.lineno' is not a line number")
    return lineno


def parse_reply(
    header: dict, call_id: int, arg_names: tuple[str, ...], setup_steps: int = 0, outputs: int = 0
) -> Reply:
    """Check a call's reply header field by field; anything unexpected is a ProtocolError.

    ``setup_steps``: how many setup steps the request had, so a ``setup`` index is one of them;
    ``outputs``: how many values it asked for, so an ``output`` index is one of them (their
    shapes are ``messages.parse_parts``'s).
    """
    if _field(header, "id", int) != call_id:
        raise ProtocolError("a reply answered a different call")
    status = _field(header, "status", str)
    if status not in REPLY_STATUSES:
        raise ProtocolError(f"the process sent an unknown reply status {clean_text(status, 40)!r}")
    length = _field(header, "len", int)
    if status == "ok" and length is None:
        raise ProtocolError("an array reply declared no payload length")
    mutated = _field(header, "mutated", list, [])
    problem = _field(header, "problem", str)
    if problem is not None and problem not in BAD_RETURN_PROBLEMS:
        raise ProtocolError("the reply field 'problem' is not one of the known problems")
    error_type = _field(header, "type", str)
    setup = _field(header, "setup", int)
    if setup is not None and not (0 <= setup < setup_steps and status != "ok"):
        raise ProtocolError("the reply field 'setup' names no setup step of this call")
    output = _field(header, "output", int)
    if output is not None and not (0 <= output < outputs and status == "bad_return"):
        raise ProtocolError("the reply field 'output' names no output of this call")
    return Reply(
        status=status,
        length=length,
        error_type=None if error_type is None else clean_text(error_type, 100),
        message=clean_text(_field(header, "message", str, ""), 500),
        lineno=parse_lineno(header.get("where")),
        returned=None if header.get("returned") is None else clean_text(_field(header, "returned", str), 200),
        problem=problem,
        detail=clean_text(_field(header, "detail", str, ""), 100),
        # Only names of this call's arguments: nothing else may reach the report this way.
        mutated=tuple(name for name in arg_names if name in mutated),
        setup=setup,
        output=output,
    )


def parse_names(names: object) -> tuple[str, ...]:
    """The function names a child says the submission defines: identifiers only."""
    if not isinstance(names, list):
        raise ProtocolError("the ready reply has no list of names")
    return tuple(n for n in names[:MAX_NAMES] if isinstance(n, str) and n.isidentifier() and len(n) <= 200)


@dataclass
class FrameReader:
    """Reads frames from a child's reply pipe, never blocking past a deadline.

    Each read takes what the pipe holds, up to ``CHUNK`` bytes, and later reads are
    served from that buffer: a reply (prefix, header, array prelude, array header,
    data) usually costs one wait and one read rather than five of each. The buffer never
    holds more than a read asked for plus one chunk, whatever a frame declares, and it
    counts as waiting in the pipe: ``drain`` discards it.
    """

    fd: int
    buffer: bytearray = field(default_factory=bytearray)

    def read_exact(self, n: int, deadline: float) -> bytes:
        """``n`` bytes (a size the caller has bounded), or Timeout at the deadline, or EOFError."""
        buffer = self.buffer
        if n and len(buffer) >= n and time.monotonic() >= deadline:
            raise Timeout  # as if the bytes were still in the pipe
        while len(buffer) < n:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise Timeout
            ready, _, _ = select.select([self.fd], [], [], wait)
            if not ready:
                raise Timeout
            chunk = os.read(self.fd, CHUNK)
            if not chunk:
                raise EOFError
            buffer += chunk
        data = bytes(buffer[:n])
        del buffer[:n]
        return data

    def drain(self, limit: int = 1 << 24) -> int:
        """Discard what is already waiting, read ahead or in the pipe (at most ``limit`` bytes); returns how much.

        Called before each request: nothing written before it was sent can be its
        reply, so a frame forged ahead of time (or a stale reply) answers nothing.
        """
        dropped = len(self.buffer)
        self.buffer.clear()
        while dropped < limit and select.select([self.fd], [], [], 0)[0]:
            chunk = os.read(self.fd, CHUNK)
            if not chunk:
                break
            dropped += len(chunk)
        return dropped

    def skip(self, n: int, deadline: float) -> None:
        """Discard n bytes without holding more than two chunks."""
        while n:
            n -= len(self.read_exact(min(n, CHUNK), deadline))

    def read_header(self, deadline: float) -> dict:
        prefix = self.read_exact(8, deadline)
        if prefix[:4] != MAGIC:
            raise ProtocolError("the reply did not start with the frame marker")
        (length,) = struct.unpack(">I", prefix[4:])
        if length > MAX_JSON:
            raise ProtocolError(f"a reply header of {length} bytes is over the {MAX_JSON}-byte limit")
        body = self.read_exact(length, deadline)
        try:
            header = json.loads(body)
        except (ValueError, UnicodeDecodeError) as err:
            raise ProtocolError("a reply header was not valid JSON") from err
        except RecursionError as err:  # e.g. 30,000 nested brackets
            raise ProtocolError("a reply header was nested too deeply") from err
        if not isinstance(header, dict):
            raise ProtocolError("a reply header was not a JSON object")
        return header

    def read_reply_header(self, call_id: int, deadline: float, max_skip: int) -> dict:
        """The header of this call's reply: frames that carry another call's id are skipped.

        Call ids are unpredictable (``new_call_id``), so a frame with another id is a
        stale reply (its call was answered by a frame the submission forged for it) or
        one forged for a call the submission could not know of: neither may answer
        this call. At most ``MAX_SKIPPED_FRAMES`` are skipped, each payload bounded.
        """
        for _ in range(MAX_SKIPPED_FRAMES):
            header = self.read_header(deadline)
            if header.get("id") == call_id:
                return header
            length = header.get("len", 0)
            if not isinstance(length, int) or isinstance(length, bool) or not 0 <= length <= max_skip:
                raise ProtocolError("a frame for another call declared an impossible payload")
            self.skip(length, deadline)
        raise ProtocolError("the process sent too many frames for other calls")

    def read_array(
        self, length: object, expected_size: int, deadline: float, max_skip: int
    ) -> tuple[tuple[int, ...], np.ndarray | None]:
        """Read one .npy payload of ``length`` bytes strictly.

        Returns the declared shape and, when it holds at most ``expected_size``
        elements, the data as float64; otherwise the data is skipped (None). The
        element count alone is not a bound: ``(2**31 - 1, 0)`` holds no element, yet
        its nested lists (``tolist``, the report's JSON) would number 2**31. So an
        array is kept only when its extent, every dimension counted as at least 1,
        is within the expected size as well.
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
        if count > expected_size or extent(shape) > max(1, expected_size):
            self.skip(data_len, deadline)  # smaller answers are read too: they help name the mistake
            return shape, None
        data = self.read_exact(data_len, deadline)
        import numpy as np

        return shape, np.frombuffer(data, dtype="<f8").reshape(shape).astype(np.float64)


def kept_elements(expected_shape: tuple[int, ...]) -> int:
    """How large an answer the parent reads into memory: 16 times the expected size, at least 4096 elements.

    A wrong answer a few times too large (a sum over the wrong axis, an outer product)
    is read, so the mistake it makes can be named by its values, which is the only way a
    hidden case may name one; anything larger is recorded by its shape alone.
    """
    size = 1
    for dim in expected_shape:
        size *= dim
    return max(16 * size, 4096)


def extent(shape: tuple[int, ...]) -> int:
    """The product of a shape's dimensions, each counted as at least 1: what nesting it into lists costs."""
    total = 1
    for dim in shape:
        total *= max(1, dim)
    return total


def parse_npy_header(raw: bytes) -> tuple[int, ...]:
    """The shape from a .npy header, accepting only '<f8' in C order."""
    try:
        text = raw.decode("latin1")
    except UnicodeDecodeError as err:  # pragma: no cover - latin1 decodes every byte
        raise ProtocolError("the array header is not text") from err
    match = _NPY_HEADER.match(text)
    if not match:
        raise ProtocolError("the array is not little-endian float64 in C order")
    shape = tuple(int(d) for d in re.findall(r"[0-9]+", match.group(1)))  # the pattern allows only "(d, d, ...)"
    if len(shape) > MAX_DIMS or not all(0 <= d < 1 << 31 for d in shape):
        raise ProtocolError(f"the array shape {shape} is not plausible")
    return shape
