"""Writing files so that a reader never sees half of one, and closing a tree to other users.

Reports, results.json, gradebooks and cache entries are written to a temporary file
beside their destination and renamed over it: a grader killed mid-write leaves the
old file or the new one, never a truncated mix. The autograder runners (Gradescope,
PrairieLearn) make their grader and reference trees root-only with ``close_to_others``.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path


def write_bytes_atomic(path: str | Path, data: bytes, durable: bool = True) -> None:
    """Write to a temporary file beside ``path`` and rename it over: never a half-written file.

    A destination that is not a regular file (``-o /dev/null``, ``-o /dev/stdout``, a
    FIFO) is written into instead: renaming over it would replace the device node
    itself, for every user of the machine when the grader runs as root.

    ``durable`` flushes the data to the disk before the rename, so even a power cut
    leaves the old file or the new one. Without it, a killed process still leaves one
    or the other (the kernel has the data), but a power cut may leave an empty file:
    for files a rerun checks and rewrites anyway (a batch's reports), at a disk flush less each.
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
        special = not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))
    except OSError:
        special = False
    if special:
        with open(path, "wb") as handle:
            handle.write(data)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | Path, document: dict, durable: bool = True) -> None:
    """Write strict JSON (no NaN) atomically; raises ValueError before touching ``path`` if it can't."""
    text = json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"), durable)


def close_to_others(folder: Path) -> None:
    """``folder`` and everything in it root's and root-only (links left alone: chmod would follow them)."""
    for current, dirs, files in os.walk(folder):
        for name in dirs + files:
            entry = Path(current) / name
            info = entry.lstat()
            if not stat.S_ISLNK(info.st_mode):
                os.chown(entry, 0, 0)
                os.chmod(entry, stat.S_IMODE(info.st_mode) & 0o700)
    os.chown(folder, 0, 0)
    os.chmod(folder, 0o700)
