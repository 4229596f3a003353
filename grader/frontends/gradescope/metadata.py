"""Who submitted: names, emails and the submission id from Gradescope's ``submission_metadata.json``.

Gradescope writes the file beside the submission; its users' names are whatever they
typed, and a group may be large, so every field is capped in length before it goes into
the report (and from there into gradebooks). Missing or malformed metadata never stops
grading: it is only noted.
"""

from __future__ import annotations

import json
from pathlib import Path

MAX_METADATA_BYTES = 64 * 1024 * 1024  # Gradescope's file, with every earlier submission's results in it
MAX_FIELD_CHARS = 200  # per person and value (a name, an email)
MAX_JOINED_CHARS = 1000  # per metadata field, a whole group's names joined


def capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_metadata(path: Path) -> tuple[dict[str, str], str | None]:
    """Names, emails and submission id, each capped however large the group; and a note when unusable."""
    try:
        if path.stat().st_size > MAX_METADATA_BYTES:
            return {}, f"{path.name} is over {MAX_METADATA_BYTES // 2**20} MiB; graded without it"
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError, RecursionError) as err:  # RecursionError: JSON nested thousands deep
        return {}, f"{path.name} could not be read ({type(err).__name__}); graded without it"
    users = document.get("users") if isinstance(document, dict) else None
    if not isinstance(users, list):
        return {}, f"{path.name} has no list of users; graded without it"
    users = [u for u in users if isinstance(u, dict)]
    metadata: dict[str, str] = {}
    for key in ("name", "email"):
        values = [capped(str(u[key]), MAX_FIELD_CHARS) for u in users if isinstance(u.get(key), (str, int))]
        if values:
            metadata[key] = capped(", ".join(values), MAX_JOINED_CHARS)
    for key, label in (("id", "submission_id"), ("created_at", "submitted_at")):
        if isinstance(document.get(key), (str, int)):
            metadata[label] = capped(str(document[key]), MAX_FIELD_CHARS)
    return metadata, None
