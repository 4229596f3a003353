"""The messages of one exchange with a child, as data: what the parent asks, and what came of it.

The session (``session.py``) runs the exchange (processes, deadlines, restarts); this
module holds its content: the load and call requests it frames, and what a call's
checked reply header (``wire.Reply``), a failed import's reply, or the exit status of a
child whose pipe closed mean, as ``CallOutcome``: codes and facts, never sentences. Every string from the child is cleaned and bounded
here or in ``wire``; a line's text is taken from the parent's copy of the file, never
from the child. ``grader/grading/feedback.py`` words the outcomes.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from grader.errors import ProtocolError
from grader.sandbox import requests, wire
from grader.sandbox.outcomes import CallOutcome, CallStatus

if TYPE_CHECKING:  # arrays arrive from the caller: this module itself never needs numpy loaded
    import numpy as np

# A call reply's status (``protocol.REPLY_STATUSES`` but "ok") as the parent's CallStatus.
FAULT_STATUSES = {
    "exception": CallStatus.EXCEPTION,
    "not_implemented": CallStatus.NOT_IMPLEMENTED,
    "memory": CallStatus.MEMORY,
    "exit": CallStatus.EXITED,
    "recursion": CallStatus.EXCEPTION,
    "bad_return": CallStatus.BAD_RETURN,
    "missing": CallStatus.MISSING,
}


def load_request(filename: str, source: bytes, forbidden: Sequence[str]) -> bytes:
    """The frame that makes a fresh child import the submission (``forbidden``: imports it refuses)."""
    header = {"op": "load", "filename": filename, "source_len": len(source), "forbidden": list(forbidden)}
    return wire.encode_frame(header, source)


def call_request(call_id: int, function: str, args: Sequence[tuple[str, object]], plan: Mapping | None = None) -> bytes:
    """The frame of one call: arrays as ``.npy`` payloads, hyperparameters and the plan in the header."""
    header, payloads = requests.call_request(call_id, function, args, plan)
    return wire.encode_frame(header, *payloads)


def parse_parts(header: dict, outputs: int, status: str) -> tuple[tuple[int, ...], ...]:
    """The shapes of several outputs (``parts``): one per output asked for, adding up to the payload's size."""
    parts, shape = header.get("parts"), header.get("shape")
    if outputs == 0 or status != "ok":
        if parts is not None:
            raise ProtocolError("the reply field 'parts' belongs to a reply with several outputs")
        return ()
    if not isinstance(parts, list) or len(parts) != outputs:
        raise ProtocolError(f"the reply gives no {outputs} output shapes")
    shapes = []
    for part in parts:
        if (
            not isinstance(part, list)
            or len(part) > wire.MAX_DIMS
            or not all(type(d) is int and 0 <= d < 1 << 31 for d in part)
        ):
            raise ProtocolError("an output shape in 'parts' is not plausible")
        shapes.append(tuple(part))
    if shape != [sum(math.prod(p) for p in shapes)]:
        raise ProtocolError("the output shapes in 'parts' do not add up to the payload's size")
    return tuple(shapes)


def source_place(source_lines: Sequence[str], lineno: int | None) -> dict | None:
    """A fault's place in the submission, the line's text taken from the parent's copy of the file."""
    if lineno is None or not 0 < lineno <= len(source_lines):
        return None
    return {"lineno": lineno, "line": wire.clean_text(source_lines[lineno - 1].strip(), 200)}


def import_failure(reply: dict, source_lines: Sequence[str]) -> CallOutcome:
    """The outcome of a load request the child answered with anything but "ready"."""
    status = {"memory": CallStatus.MEMORY, "exit": CallStatus.EXITED}.get(reply.get("phase_status"))
    try:
        lineno = wire.parse_lineno(reply.get("where"))
    except ProtocolError:
        lineno = None
    error_type = reply.get("type") if isinstance(reply.get("type"), str) else None
    return CallOutcome(
        status or CallStatus.IMPORT_ERROR,
        message=wire.clean_text(reply.get("message"), 500),
        error_type=wire.clean_text(error_type, 100) or None,
        where=source_place(source_lines, lineno),
        phase="import",
    )


def death(code: int | None, phase: str) -> CallOutcome:
    """How a child whose pipe closed ended: by a signal (its name), with an exit code, or unknown (None)."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:  # a real-time signal has no name of its own
            name = f"signal {-code}"
        return CallOutcome(CallStatus.CRASHED, error_type=name, phase=phase)
    if code is None:
        return CallOutcome(CallStatus.CRASHED, phase=phase)
    return CallOutcome(CallStatus.EXITED, exit_code=code, phase=phase)


def call_outcome(
    reply: wire.Reply,
    value: np.ndarray | None,
    shape: tuple[int, ...] | None,
    *,
    source_lines: Sequence[str],
    elapsed: float,
    names: tuple[str, ...],
    parts: tuple[tuple[int, ...], ...] = (),
) -> CallOutcome:
    """The outcome of a call the child answered: its array (status "ok") or the fault it reported.

    ``names`` are the functions the import found: a function that vanished after the
    import is MISSING, and the feedback may point at a near name among them.
    """
    detail = {
        "message": reply.message,
        "error_type": reply.error_type,
        "where": source_place(source_lines, reply.lineno),
        "returned": reply.returned,
        "mutated": reply.mutated,
        "elapsed": elapsed,
        "problem": reply.problem,
        "detail": reply.detail,
        "setup": reply.setup,
        "output": reply.output,
    }
    if reply.status == "ok":
        return CallOutcome(CallStatus.OK, value=value, shape=shape, parts=parts, **detail)
    status = FAULT_STATUSES[reply.status]
    if status == CallStatus.MISSING:
        detail["names"] = names
    return CallOutcome(status, **detail)
