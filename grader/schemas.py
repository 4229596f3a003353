"""The JSON Schemas shipped in ``grader/schemas/``: loading them, validating, and one-line messages.

Rubrics, reports, Gradescope results (and every other published format the grader
writes) are checked against a schema kept in the package. A violation becomes one
short line naming the key path (``equations[3].points: must be a number``), never
jsonschema's multi-line dump. jsonschema is imported where it is used: its import
takes longer than a whole ``grade`` run with a cached rubric needs.

A batch validates every report it writes, and jsonschema takes longer over one report
(a few hundred keys) than the rest of the worker's own bookkeeping. So where
``jsonschema_rs`` (a compiled validator of the same drafts) is installed, it answers
first for the schemas in ``FAST_SCHEMAS``: a document it accepts is valid; one it
rejects goes to jsonschema, which decides and gives the message. The verdict is
jsonschema's either way as long as jsonschema-rs accepts nothing jsonschema rejects,
which ``tests/test_schema_validation.py`` checks on many broken reports; without
jsonschema-rs (an image with only the pinned packages) everything goes to jsonschema.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grader.errors import RubricError

if TYPE_CHECKING:
    import jsonschema

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
# The schemas whose documents jsonschema-rs may accept on jsonschema's behalf (their
# agreement is tested); the others, checked once per rubric or run, go to jsonschema alone.
FAST_SCHEMAS = frozenset({"report.schema.json"})


def load_schema(name: str) -> dict:
    """A JSON Schema shipped in ``grader/schemas``."""
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))


@functools.cache
def schema_validator(name: str) -> jsonschema.Draft202012Validator:
    """A shipped schema's validator, built once per process: building costs more than validating."""
    import jsonschema

    return jsonschema.Draft202012Validator(load_schema(name))


@functools.cache
def fast_validator(name: str):
    """jsonschema-rs's validator of a shipped schema in ``FAST_SCHEMAS``, built once per process; None without it."""
    if name not in FAST_SCHEMAS:
        return None
    try:
        import jsonschema_rs
    except ImportError:
        return None
    # formats are not asserted and nothing is fetched, as with jsonschema's own validator
    return jsonschema_rs.validator_for(load_schema(name), validate_formats=False, offline=True)


def schema_error(document: Any, schema_name: str) -> jsonschema.ValidationError | None:
    """The most relevant violation of a shipped schema, or None when the document is valid."""
    fast = fast_validator(schema_name)
    if fast is not None and fast.is_valid(document):
        return None
    import jsonschema

    return jsonschema.exceptions.best_match(schema_validator(schema_name).iter_errors(document))


def format_path(parts) -> str:
    """``equations[3].points`` from jsonschema's path parts."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe_schema_error(err: jsonschema.ValidationError) -> tuple[str, str]:
    """A key path and a short message for the most relevant schema error."""
    path = list(err.absolute_path)
    kind = err.validator
    if kind == "type":
        wanted = err.validator_value
        wanted = " or ".join(wanted) if isinstance(wanted, list) else wanted
        article = "an" if str(wanted)[0] in "aeiou" else "a"
        message = f"must be {article} {wanted}"
    elif kind == "required":
        missing = [k for k in err.validator_value if k not in (err.instance or {})]
        path.append(missing[0] if missing else "?")
        message = "is required"
    elif kind == "additionalProperties":
        extras = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        path.append(extras[0] if extras else "?")
        message = "is not a known key"
    elif kind == "enum":
        message = "must be one of " + ", ".join(map(str, err.validator_value))
    elif kind == "const":
        message = f"must be {err.validator_value!r}"
    elif kind in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sign = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<"}[kind]
        message = f"must be {sign} {err.validator_value}"
    elif kind == "pattern":
        message = f"{err.instance!r} is not a valid name"
    elif kind in ("minItems", "maxItems", "minProperties"):
        message = f"has the wrong number of entries ({kind} {err.validator_value})"
    elif kind == "oneOf" and isinstance(err.instance, dict):
        message = "must have either `shape` (a drawn input) or `derive` and `from` (a derived one)"
    else:
        message = err.message
    return format_path(path), message


def validate_against_schema(document: Any, schema_name: str, source: str) -> None:
    """Raise one RubricError line for the most relevant schema violation."""
    error = schema_error(document, schema_name)
    if error is not None:
        where, message = describe_schema_error(error)
        raise RubricError(f"{source}: {where}: {message}")
