"""The gradebook: one row per submission, read back from its report, rendered as a CSV.

Rows come from the report files alone (never from what a run happened to keep in
memory), so a batch run in one go, a batch killed and resumed, and shards merged
afterwards all give byte-identical gradebooks.

The CSV is meant to be opened by double-click: UTF-8 with a byte-order mark (so
spreadsheet programs detect the encoding), one line per row, and text cells that a
spreadsheet would take for a formula (``=``, ``+``, ``-``, ``@``) prefixed with ``'``.
"""

from __future__ import annotations

import csv
import enum
import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from types import MappingProxyType

from grader.grading.report import NotGraded

# Top-level flags of a report for a submission that could not be graded (``ungraded_report``).
UNGRADABLE_FLAG = NotGraded.UNGRADABLE.value
GRADER_ERROR_FLAG = NotGraded.GRADER_ERROR.value
# Equation flags and case statuses that mean a person should look at the submission:
# the grade may not say what the student knows, or the student may have tried to cheat.
REVIEW_FLAGS = MappingProxyType(
    {
        "timeout": "a call ran past the time limit",
        "crashed": "the process crashed or was killed (memory, signals, output limit)",
        "forbidden_import": "imports a library the assignment forbids",
        "oracle_disagreement": "the reference and finite differences disagree (a rubric problem)",
    }
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class SubmissionStatus(enum.Enum):
    """Where a submission stands once the batch is done."""

    GRADED = "graded"
    REVIEW = "review"  # graded, but see REVIEW_FLAGS
    UNGRADABLE = "ungradable"  # no file could be read; the report says why
    GRADER_ERROR = "grader_error"  # the grader failed; not the student's fault


@dataclass(frozen=True)
class EquationCell:
    """One equation's outcome for one submission, as the gradebook and the summary use it."""

    id: str
    label: str
    points: float
    score: float
    status: str
    mistake_id: str | None = None
    mistake_text: str = ""
    counted: bool = True  # False: a 0-point check, whose column shows its status, not a score


@dataclass(frozen=True)
class Row:
    """One submission's line in the gradebook, and what the class summary needs of it."""

    id: str
    name: str
    email: str
    sid: str
    source: str
    equations: tuple[EquationCell, ...]
    total: float | None  # None when nothing was graded
    max_score: float
    status: SubmissionStatus
    flags: tuple[str, ...]
    note: str
    report: str  # the report's path, relative to the batch folder
    isolation_notes: tuple[str, ...] = ()
    import_failed: bool = False  # graded, but the file never imported: every equation is a zero

    @property
    def graded(self) -> bool:
        return self.status in (SubmissionStatus.GRADED, SubmissionStatus.REVIEW)


def equation_flags(document: Mapping) -> tuple[str, ...]:
    """``eq:flag`` for the equations' flags and for case statuses that call for review, in rubric order."""
    found: dict[str, None] = {}
    for eq in document.get("equations", ()):
        for flag in eq.get("flags", ()):
            found[f"{eq['id']}:{flag}"] = None
        for case in eq.get("cases", ()):
            if case.get("status") in REVIEW_FLAGS:
                found[f"{eq['id']}:{case['status']}"] = None
    return tuple(found)


def review_flags(document: Mapping) -> tuple[str, ...]:
    """The flags that mean a person should look at a graded report."""
    return tuple(flag for flag in equation_flags(document) if flag.partition(":")[2] in REVIEW_FLAGS)


def status_of(document: Mapping) -> SubmissionStatus:
    flags = set(document.get("flags", ()))
    if GRADER_ERROR_FLAG in flags:
        return SubmissionStatus.GRADER_ERROR
    if UNGRADABLE_FLAG in flags:
        return SubmissionStatus.UNGRADABLE
    return SubmissionStatus.REVIEW if review_flags(document) else SubmissionStatus.GRADED


def page_name(report: str) -> str:
    """The student's page of a report: ``reports/ID.json`` -> ``pages/ID.html`` (a folder to hand out as it is)."""
    path = PurePosixPath(report)
    return str(path.parent.parent / "pages" / f"{path.stem}.html")


def row_from_report(document: Mapping, report: str) -> Row:
    """The gradebook row of one report document (as written by the batch)."""
    submission = document["submission"]
    meta = submission.get("metadata") or {}
    status = status_of(document)
    cells = []
    for eq in document.get("equations", ()):
        diagnosis = eq.get("diagnosis") or {}
        cells.append(
            EquationCell(
                id=eq["id"],
                label=eq.get("label", eq["id"]),
                points=float(eq["max_score"]),
                score=float(eq["score"]),
                status=eq["status"],
                mistake_id=diagnosis.get("mistake_id"),
                mistake_text=diagnosis.get("text", "") if diagnosis.get("mistake_id") else "",
                counted=eq.get("counted", True),
            )
        )
    flags = [flag for flag in document.get("flags", ()) if ":" not in flag] + list(equation_flags(document))
    sandbox = document.get("sandbox") or {}
    weaker = not (sandbox.get("privilege_drop") and sandbox.get("network_cut") and sandbox.get("reference_hidden"))
    graded = status in (SubmissionStatus.GRADED, SubmissionStatus.REVIEW)
    total = float(document["score"]) if graded else None
    return Row(
        id=meta.get("id") or report.rsplit("/", 1)[-1].removesuffix(".json"),
        name=meta.get("name") or "",
        email=meta.get("email") or "",
        sid=meta.get("sid") or "",
        source=meta.get("source") or submission.get("path", ""),
        equations=tuple(cells),
        total=total,
        max_score=float(document["max_score"]),
        status=status,
        flags=tuple(flags),
        note=meta.get("grading_error") or "",
        report=report,
        isolation_notes=tuple(sandbox.get("notes", ())) if weaker and total is not None else (),
        import_failed=graded and import_failed(document),
    )


def import_failed(document: Mapping) -> bool:
    """Did the file never import? Then every case of every equation ran nothing (``not_imported``)."""
    cases = [case for eq in document.get("equations", ()) for case in eq.get("cases", ())]
    return bool(document.get("notice")) and bool(cases) and all(case.get("status") == "error" for case in cases)


def format_points(value: float | None) -> str:
    """``2``, ``1.5``, ``0.6667``; empty for "not graded"."""
    return "" if value is None else f"{round(value, 4):g}"


def format_mean(value: float | None) -> str:
    """A mean or median as people read it, the same in the terminal and on the page: ``9.43``."""
    return "" if value is None else format_points(round(value, 2))


def spreadsheet_text(value: str) -> str:
    """Text as a spreadsheet shows it and never runs it: one line, and no leading formula character."""
    value = re.sub(r"[\x00-\x08\x0b-\x1f\x7f]", "", value).replace("\n", " ").replace("\r", " ")
    return "'" + value if value.startswith(FORMULA_START) else value


def equation_ids(rows: Iterable[Row], fallback: Iterable[str] = ()) -> list[str]:
    """The equation columns, in rubric order (from the first graded row)."""
    for row in rows:
        if row.equations:
            return [cell.id for cell in row.equations]
    return list(fallback)


def render_gradebook(rows: list[Row], equations: list[str]) -> str:
    """The CSV text (with its byte-order mark): id, who, each equation, total, status, flags, note, report."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(
        ["id", "name", "email", "sid", "source", *equations, "total", "max_score", "status", "flags", "note", "report"]
    )
    for row in rows:
        # a check's column holds its status ("passed", "failed"): a 0 there would read as points lost
        scores = {cell.id: format_points(cell.score) if cell.counted else cell.status for cell in row.equations}
        writer.writerow(
            [
                spreadsheet_text(row.id),
                spreadsheet_text(row.name),
                spreadsheet_text(row.email),
                spreadsheet_text(row.sid),
                spreadsheet_text(row.source),
                *(scores.get(eq, "") if row.graded else "" for eq in equations),
                format_points(row.total),
                format_points(row.max_score),
                row.status.value,
                spreadsheet_text(" ".join(row.flags)),
                spreadsheet_text(row.note),
                spreadsheet_text(row.report),
            ]
        )
    return "\ufeff" + buffer.getvalue()
