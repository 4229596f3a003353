"""A small on-disk cache of rubric documents that already passed the schema check.

Why: checking a rubric against its JSON Schema needs PyYAML and jsonschema, whose
imports alone take longer than the rest of the grader's own work in a ``grade``
run (``bench/bench_grade.py`` prints both). A rubric whose exact bytes were checked before, against the same
schema by the same grader version, is read back from here as plain JSON instead.

Why it can't go stale: the key is a sha256 of everything that decides the result
(the grader's version, the schema's bytes, the rubric's bytes), so an edited rubric
or schema is a miss, never an old answer. Only documents that passed are stored, and
the consistency checks that need the file system (does the reference exist?) run on
every load regardless.

Where: ``$GRADER_CACHE_DIR`` (set it empty to turn the cache off), else
``$XDG_CACHE_HOME/grader``, else ``~/.cache/grader``, in folders of mode 0700. Best
effort: a cache that can't be read or written, or an entry that is corrupt, is a miss
and never fails a grade; ``load_rubric`` also treats an entry that doesn't build a
consistent rubric as a miss.

Whom it trusts: the account running the grader, like the grader's own files. An
entry is read only if the file opened (never through a symlink) belongs to that
account and no one else can write it, so root running with a user's HOME ignores
that user's cache. A submission can't reach the cache when the grader runs as root
(its own uid, a minimal root file system); without root it runs as the same account,
and could as well rewrite the grader itself, as the README's sandbox section says.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import grader
from grader.files import write_json_atomic


def cache_folder() -> Path | None:
    """Where entries live, or None when caching is off or there is no home to put it in."""
    configured = os.environ.get("GRADER_CACHE_DIR")
    if configured is not None:
        return Path(configured) if configured else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no HOME and no password entry
            return None
    return Path(base) / "grader"


def cache_key(*parts: bytes) -> str:
    """A key naming these exact inputs, and this grader version."""
    digest = hashlib.sha256(grader.__version__.encode())
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def entry_path(kind: str, key: str) -> Path | None:
    folder = cache_folder()
    return None if folder is None else folder / kind / f"{key}.json"


def private(info: os.stat_result) -> bool:
    """Owned by this account and writable by no one else: an entry no other account could have made."""
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def read_cached(kind: str, key: str) -> Any | None:
    """The document stored under ``key``, or None (a miss) if there is none or it can't be trusted.

    The ownership check is on the file actually opened (no symlink at the end of the
    path), so swapping a folder or a link between a check and the read gains nothing.
    """
    path = entry_path(kind, key)
    if path is None:
        return None
    try:
        with open(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC), "rb") as handle:
            if not private(os.fstat(handle.fileno())):
                return None  # e.g. root running with a user's HOME: that user could have written it
            entry = json.loads(handle.read())
    except Exception:  # noqa: BLE001 - unreadable, corrupt, nested too deep: whatever it is, a miss
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or "document" not in entry:
        return None  # a truncated, renamed or foreign file
    return entry["document"]


def store_cached(kind: str, key: str, document: Any) -> None:
    """Remember ``document`` under ``key`` if it survives a JSON round trip unchanged; never raises."""
    path = entry_path(kind, key)
    if path is None:
        return
    try:
        # YAML can hold what JSON can't say the same way (integer keys, dates): keep only exact copies
        if json.loads(json.dumps(document, allow_nan=False)) != document:
            return
        path.parent.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # e.g. ~/.cache on a fresh account
        path.parent.mkdir(mode=0o700, exist_ok=True)
        write_json_atomic(path, {"key": key, "document": document})
    except (OSError, TypeError, ValueError, RecursionError):
        pass
