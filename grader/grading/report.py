"""The grade report: a frozen value, its JSON form, schema validation and writing it.

The JSON validates against ``grader/schemas/report.schema.json``. Visible cases carry
their inputs, expected output and the submission's output; hidden cases carry only
their verdict, the expected shape and the grader's own words: which fields may depend
on the submission's answer is ``feedback_verdicts.case_fields``'s rule. Everything but
``timings`` is deterministic for a given submission, rubric and seed.

A submission that could not be graded at all (no readable file, or the grader failed on
it) gets a Report too, from ``ungraded_report``: no equations, a top-level flag saying
which, and the reason in ``submission.metadata.grading_error``, so every report a front
end writes comes from the same code and schema.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import grader
from grader.assignment.rubric import Rubric
from grader.files import write_json_atomic
from grader.grading import feedback_verdicts
from grader.grading.case import Case
from grader.grading.cases import derive_hidden_seed
from grader.grading.scoring import EquationResult
from grader.sandbox.outcomes import Protections
from grader.schemas import schema_error

SCHEMA_VERSION = 1
MAX_LISTED_CELLS = 1 << 20  # an array nested into more lists than this is left out of the JSON
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()  # the sha256 of a file that could not be read


class NotGraded(enum.Enum):
    """Why a report has no equations; its value is the report's top-level flag."""

    UNGRADABLE = "ungradable"  # no file could be read: the student's (or instructor's) to fix
    GRADER_ERROR = "grader_error"  # the grader or the machine failed: not the student's fault


# The sandbox section of a report whose submission never ran: nothing was in force, as nothing ran.
NOT_RUN = Protections(
    hidden_paths=(),
    notes=("not run: the submission never reached the sandbox",),
    **dict.fromkeys(("privilege_drop", "network_cut", "kill_all_processes", "rlimits"), False),
)


@dataclass(frozen=True)
class SeedInfo:
    hidden_seed: int
    source: str  # "derived" (rubric seed + submission sha256) or "command line"


@dataclass(frozen=True, eq=False)
class Report:
    rubric: Rubric
    submission_path: str
    submission_sha256: str
    equations: tuple[EquationResult, ...]
    cases: Mapping[str, tuple[Case, ...]]
    seed: SeedInfo
    protections: Protections
    output: str = ""
    notice: str = ""  # feedback about the file as a whole (why it could not be imported), said once
    notes: tuple[str, ...] = ()  # what the grader changed to run the file (a notebook's magics, say)
    metadata: Mapping[str, str] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    flags: tuple[str, ...] = ()  # about the whole submission (``NotGraded``); equations carry their own

    @property
    def score(self) -> float:
        return round(sum(e.score for e in self.equations), 6)

    @property
    def max_score(self) -> float:
        return self.rubric.max_score


@functools.cache
def grader_code_sha256() -> str:
    """A hash of every file of the grader's package, so a changed grader counts as another version.

    Every subpackage and every data file (schemas, shell scripts), by its path inside
    the package; only bytecode caches are left out, since they follow the sources.
    """
    package = Path(grader.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in package_files(package):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def package_files(package: Path) -> list[Path]:
    """The files a grader version consists of: everything in the package but bytecode caches."""
    return sorted(
        path
        for path in package.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    )


def display_text(text: object) -> str:
    """Text that JSON can hold: a file name's undecodable bytes become U+FFFD."""
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _array(value: np.ndarray | None):
    """Nested lists for JSON; NaN and infinities become null (JSON has no such numbers).

    Bounded before anything is built: ``tolist`` of an empty array of shape
    ``(2**31 - 1, 0)`` would make 2**31 lists, so an array whose extent (each
    dimension counted as at least 1) is over ``MAX_LISTED_CELLS`` is left out (null).
    """
    if value is None:
        return None
    value = np.asarray(value, dtype=np.float64)
    if math.prod(max(1, d) for d in value.shape) > MAX_LISTED_CELLS:
        return None
    if np.all(np.isfinite(value)):
        return value.tolist()
    return np.where(np.isfinite(value), value, None).tolist()


def case_to_dict(case: Case, check) -> dict:
    item = {
        "index": check.index,
        "visible": check.visible,
        "status": check.status.value,
        "credit": check.credit,
        "message": check.message,
        "expected_shape": list(check.expected_shape or ()),
        **feedback_verdicts.case_fields(check),
    }
    if case.visible:
        item["dims"] = dict(case.dims)
        item["inputs"] = {name: input_value(case.inputs[name]) for name in case.shown_inputs}
        if not case.parts:
            item["expected"] = _array(case.expected)
            item["got"] = _array(check.value)
        item["diff"] = list(check.diff)
    if case.parts:
        verdicts = dict(check.parts)
        item["outputs"] = {
            part.name: output_to_dict(part.expected, verdicts.get(part.name), case.visible) for part in case.parts
        }
    return item


def output_to_dict(expected: np.ndarray, check, visible: bool) -> dict:
    """One output of a case that grades several: its verdict (none when no values came back) and,
    for a visible case, its expected and returned values."""
    item: dict = {"status": None if check is None else check.status.value, "expected_shape": list(expected.shape)}
    if check is not None:
        item.update(feedback_verdicts.case_fields(check))
        item["message"] = check.message
    if visible:
        item["expected"] = _array(expected)
        item["got"] = None if check is None else _array(check.value)
        item["diff"] = [] if check is None else list(check.diff)
    return item


def input_value(value: object) -> object:
    """A visible input as JSON: an array's nested lists, a hyperparameter as it is (a number, string or dict)."""
    if isinstance(value, dict):
        return {key: input_value(entry) for key, entry in value.items()}
    return np.asarray(value).tolist() if isinstance(value, np.ndarray) else value


def equation_to_dict(result: EquationResult, cases: tuple[Case, ...]) -> dict:
    eq = result.equation
    diagnosis = result.diagnosis
    return {
        "id": eq.id,
        "label": eq.label,
        "function": eq.function,
        "score": result.score,
        "max_score": eq.points,
        "status": result.status.value,
        "visibility": eq.visibility,
        "feedback": result.feedback,
        "diagnosis": None
        if diagnosis is None
        else {"kind": diagnosis.kind, "text": diagnosis.text, "mistake_id": diagnosis.mistake_id},
        "flags": list(result.flags),
        "cases": [case_to_dict(case, check) for case, check in zip(cases, result.cases)],
        # a 0-point item is a check: reported, not counted (front ends show it so, not as lost points)
        **({"counted": False} if not eq.points else {}),
    }


def report_to_dict(report: Report) -> dict:
    rubric = report.rubric
    return {
        "schema_version": SCHEMA_VERSION,
        "assignment": rubric.assignment,
        "title": rubric.title,
        "submission": {
            "path": display_text(report.submission_path),
            "sha256": report.submission_sha256,
            "metadata": {key: display_text(value) for key, value in report.metadata.items()},
            "notes": list(report.notes),
        },
        "score": report.score,
        "max_score": report.max_score,
        "equations": [equation_to_dict(r, report.cases[r.equation.id]) for r in report.equations],
        "flags": sorted({*report.flags, *(f"{r.equation.id}:{flag}" for r in report.equations for flag in r.flags)}),
        "output": report.output,
        "notice": report.notice,
        "grader": {
            "version": grader.__version__,
            "rubric": display_text(rubric.path),
            "rubric_sha256": rubric.sha256,
            "assignment_sha256": rubric.assignment_sha256,
            "code_sha256": grader_code_sha256(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "reproduce": {
            "hidden_seed": report.seed.hidden_seed,
            "seed_source": report.seed.source,
            "rubric_seed": rubric.seed,
            "command": display_text(
                f"grade {report.submission_path} --rubric {rubric.path} --seed {report.seed.hidden_seed}"
            ),
        },
        "sandbox": report.protections.as_dict(),
        "timings": dict(report.timings),
    }


def ungraded_report(
    rubric: Rubric,
    submission_path: str | Path,
    sha256: str | None,
    why: NotGraded,
    reason: str,
    metadata: Mapping[str, str] | None = None,
) -> Report:
    """The Report of a submission that could not be graded, saying why.

    The schema has no "not graded" field, so the reason goes in
    ``submission.metadata.grading_error`` and the top-level flags say ``why``;
    ``sha256`` is the file's when it could be read (None: the sha256 of no bytes), and
    the hidden seed is derived from it as for any grade, so a rerun reproduces it.
    """
    sha256 = sha256 or EMPTY_SHA256
    return Report(
        rubric=rubric,
        submission_path=str(submission_path),
        submission_sha256=sha256,
        equations=(),
        cases={},
        seed=SeedInfo(hidden_seed=derive_hidden_seed(rubric.seed, sha256), source="derived"),
        protections=NOT_RUN,
        metadata={**(metadata or {}), "grading_error": reason},
        flags=(why.value,),
    )


def validate_report(document: dict) -> None:
    """Raise jsonschema.ValidationError if the document does not match the shipped schema."""
    error = schema_error(document, "report.schema.json")
    if error is not None:
        raise error


def write_report(report: Report, path: str | Path) -> dict:
    """Write a report atomically; returns the document written.

    Not validated here: jsonschema's import alone would double the time of a ``grade``
    run. Every test that produces a report validates it, and the batch and Gradescope
    paths, whose documents other programs read back, validate each one they write.
    """
    document = report_to_dict(report)
    write_json_atomic(path, document)
    return document
