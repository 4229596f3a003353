"""jsonschema-rs, which accepts reports on jsonschema's behalf (``grader/schemas.py``), accepts no report jsonschema rejects.

A real report (a golden one, its digests turned back into small arrays) and an
ungraded one are broken in every way a grader bug could break them, one key at a
time: each key removed, an unknown key added, each value replaced by one of another
type or out of range. jsonschema-rs must accept none that jsonschema rejects, and the
grader's verdict (``schema_error``) must be jsonschema's on every one. (jsonschema-rs
is stricter on one: its patterns' ``$`` does not match before a final newline, as
Python's does; such a report goes on to jsonschema, which decides.)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import jsonschema
import pytest

from golden_reports import read_golden
from grader.grading.report import NotGraded, report_to_dict, ungraded_report, validate_report
from grader.schemas import FAST_SCHEMAS, fast_validator, load_schema, schema_error

REPORT = "report.schema.json"
ODD_VALUES = (None, True, 0, -1, 1.0, 2.5, "", "x", "0" * 64 + "\n", [], [1], {}, {"a": 1})

pytestmark = pytest.mark.skipif(fast_validator(REPORT) is None, reason="jsonschema_rs is not installed here")


def golden_document() -> dict:
    """A graded report with two equations, each with a visible and a hidden case, arrays made small again."""
    document = read_golden("buggy/eq13_mask_inverted.py")
    document["timings"] = {"total_seconds": 0.1}
    document["grader"].update(code_sha256="0" * 64, python="3.11.2", numpy="2.0.0")
    document["sandbox"]["memory_bound"] = {"mechanism": "cgroup v1", "total_mb": 2048, "processes": 64, "reason": ""}
    equations = []
    for equation in document["equations"][:2]:
        visible = next(c for c in equation["cases"] if c["visible"])
        hidden = next(c for c in equation["cases"] if not c["visible"])
        visible.update(inputs={"A": [[1.0, 2.0]]}, expected=[[1.0, None]], got=3.0)
        equations.append({**equation, "cases": [visible, hidden]})
    document["equations"] = equations
    return document


def ungraded_document(quiz4) -> dict:
    why = NotGraded.UNGRADABLE
    return report_to_dict(ungraded_report(quiz4, "s1/quiz4.py", None, why, "no file", {"id": "s1"}))


def paths(value, prefix=()) -> Iterator[tuple]:
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def at(document, path):
    for part in path:
        document = document[part]
    return document


def broken(document: dict) -> Iterator[dict]:
    """The document broken one way at a time, at every place."""
    for path in list(paths(document)):
        node = at(document, path)
        if isinstance(node, dict):
            for key in node:
                copied = copy.deepcopy(document)
                del at(copied, path)[key]
                yield copied
            copied = copy.deepcopy(document)
            at(copied, path)["zz_unknown"] = 1
            yield copied
        if path:
            for odd in ODD_VALUES:
                copied = copy.deepcopy(document)
                at(copied, path[:-1])[path[-1]] = copy.deepcopy(odd)
                yield copied


@pytest.fixture(scope="module")
def documents(quiz4) -> list[dict]:
    return [golden_document(), ungraded_document(quiz4)]


def test_the_fast_validator_is_used_only_for_the_report_schema():
    assert FAST_SCHEMAS == {REPORT}
    assert fast_validator("rubric.schema.json") is None


def test_both_validators_accept_the_real_reports(documents):
    for document in documents:
        assert fast_validator(REPORT).is_valid(document)
        validate_report(document)  # raises if jsonschema (the fallback, and the authority) rejects it


@pytest.mark.slow
def test_jsonschema_rs_accepts_no_broken_report_that_jsonschema_rejects(documents):
    reference = jsonschema.Draft202012Validator(load_schema(REPORT))
    fast = fast_validator(REPORT)
    lenient, wrong_verdicts, rejected, total = [], [], 0, 0
    for document in documents:
        for candidate in broken(document):
            total += 1
            valid = reference.is_valid(candidate)
            rejected += not valid
            if fast.is_valid(candidate) and not valid:
                lenient.append(json.dumps(candidate)[:300])
            if (schema_error(candidate, REPORT) is None) != valid:
                wrong_verdicts.append(json.dumps(candidate)[:300])
    assert rejected > total // 3, "most breakages must be caught, or this test shows nothing"
    assert not lenient, f"{len(lenient)} of {total} accepted by jsonschema-rs only, e.g. {lenient[0]}"
    assert not wrong_verdicts, f"{len(wrong_verdicts)} of {total} get another verdict, e.g. {wrong_verdicts[0]}"
