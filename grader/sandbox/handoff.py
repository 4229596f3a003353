"""A child started ahead of its first call, with the submission already sent to it.

``Sandbox.begin`` forks the child and queues the load request in its pipe, then
returns: the child confines itself and imports the submission while the parent builds
the cases, and the first call (``Sandbox.ensure_started``) takes the child over. The
parent reads nothing meanwhile, so it cannot see when the child finished; this module
holds what it knows instead, and the rule that keeps the import's verdict the one a
child started at its first call would get.

The import's limit counts from when the child began importing, some time between
``sent`` (the request queued, before the child confined itself) and when the parent,
done with its own work, reads the "started" frame (``checked``). So

* a reply read by ``sent`` + the limit came surely in time: the import is taken;
* no reply by ``checked`` + the limit is surely too late: a timeout;
* anything in between (a reply, an import error or a death seen after ``sent`` + the
  limit) can't be told from a timeout: that child is stopped, what it printed is
  forgotten, and the import runs again the ordinary way, timed from its own request.

Only an import that ends within the parent's case-building time of its limit ever
runs twice; the parent's own time is never counted against the submission, in the
import's limit or in its budget (``Budget.extend``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from grader.sandbox.spawn import Launch


@dataclass(frozen=True)
class Handoff:
    """What ``begin`` left for the first call: the launched child, when the request was queued, what of it
    the pipe had no room for, and how much of the transcript came before this child."""

    launch: Launch
    sent: float  # time.monotonic() when the load request was queued
    unsent: bytes  # the rest of the load request, written once the child has started
    mark: int  # len(transcript.data) before this child printed anything
    sure_by: float  # until when an import's ending is surely within its limit and the submission's budget


def queue(fd: int, data: bytes) -> bytes:
    """Write what a non-blocking pipe takes now; returns the rest (all of it if the reader is gone)."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view[: 1 << 16]) :]
        except (BlockingIOError, BrokenPipeError):
            break
    return bytes(view)
