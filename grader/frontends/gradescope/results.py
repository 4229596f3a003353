"""Gradescope's results.json: one test per equation with Markdown feedback, or a message, or the fallback.

Whatever ``/autograder/results/results.json`` says is the grade, so every document here
is checked against ``grader/schemas/gradescope_results.schema.json`` before it is
written. Three kinds exist: a graded submission (one test per equation, the grader's
report in ``extra_data``), a submission the student must fix (no or several files: 0 and
what to do), and the fallback for a failure of the grader itself. The fallback is one
static file, ``fallback_results.json`` beside this module, so that ``run_autograder``
can copy it when Python can't even start and both say the same thing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from grader.assignment.rubric import Rubric
from grader.frontends.markdown import code_block, code_span, escape_markdown
from grader.grading.report import Report, report_to_dict, validate_report
from grader.grading.scoring import EquationResult
from grader.schemas import schema_error

FALLBACK_FILE = Path(__file__).resolve().parent / "fallback_results.json"
MAX_ERROR_CHARS = 20_000  # of a traceback shown to instructors; Gradescope truncates long outputs anyway


def fallback_template() -> dict:
    """A fresh copy of the shipped fallback document."""
    return json.loads(FALLBACK_FILE.read_text(encoding="utf-8"))


STAFF_MESSAGE: str = fallback_template()["output"]


def points(value: float) -> str:
    return f"{value:g}"


def execution_seconds(elapsed: float) -> int:
    return max(0, math.ceil(elapsed))


def equation_markdown(result: EquationResult, report: Report) -> str:
    """One test's output: the verdict, the feedback, each visible case, and a count of hidden ones."""
    eq = result.equation
    lines = [
        f"**{result.status.value.replace('_', ' ').capitalize()}**: {points(result.score)}/{points(eq.points)} points.",
        "",
        escape_markdown(result.feedback),
    ]
    cases = {case.index: case for case in report.cases[eq.id]}
    hidden = [check for check in result.cases if not check.visible]
    for check in result.cases:
        if not check.visible:
            continue
        dims = escape_markdown(", ".join(f"{k}={v}" for k, v in cases[check.index].dims.items()))
        verdict = check.status.value.replace("_", " ")
        message = f": {escape_markdown(check.message)}" if check.message and check.status.value != "passed" else ""
        lines += ["", f"**Visible case {check.index}** ({dims}): {verdict}{message}"]
        if check.diff:
            lines += ["", "| entry | expected | got |", "|---|---|---|"]
            lines += [f"| {list(d['index'])} | {d['expected']:.6g} | {d['got']:.6g} |" for d in check.diff]
    if hidden:
        passed = sum(check.status.value == "passed" for check in hidden)
        lines += ["", f"Hidden cases: {passed} of {len(hidden)} passed (their inputs are not shown)."]
    return "\n".join(lines)


def summary_markdown(report: Report, graded: str) -> str:
    """The top-level output: what was graded, the total, and what the file printed."""
    # Only parts the student may see now are counted: a hidden part's verdict must not leak.
    shown = [r for r in report.equations if r.equation.visibility == "visible"]
    full = sum(r.score >= r.equation.points - 1e-9 for r in shown)
    lines = [
        f"**{escape_markdown(report.rubric.title)}**",
        "",
        f"Graded {code_span(graded)}: **{points(report.score)}/{points(report.max_score)}** points; "
        f"{full} of {len(shown)} visible parts earned full marks.",
    ]
    if report.notice:  # about the whole file: said once, not under every part
        lines += ["", escape_markdown(report.notice)]
    if full < len(shown):
        lines += [
            "",
            "Each part below says what went wrong. Hidden cases use inputs drawn for your file, "
            "so only their verdicts are shown.",
        ]
    if report.notes:
        lines += ["", "Notes on your file:", ""] + [f"- {escape_markdown(note)}" for note in report.notes]
    if report.output.strip():
        lines += ["", "Your file printed (while importing and on the visible cases):", "", code_block(report.output)]
    return "\n".join(lines)


def equation_entry(number: int, result: EquationResult, report: Report) -> dict:
    """One Gradescope test for one equation: passed only with full marks."""
    eq = result.equation
    full = result.score >= eq.points - 1e-9
    return {
        "name": eq.label,
        "number": str(number),
        "score": result.score,
        "max_score": eq.points,
        "status": "passed" if full else "failed",
        "output": equation_markdown(result, report),
        "output_format": "md",
        "visibility": eq.visibility,
        "tags": [eq.id, eq.function, result.status.value, *result.flags],
    }


def results_from_report(report: Report, graded: str, elapsed: float, notes: Sequence[str] = ()) -> dict:
    """Gradescope's results for a graded submission: one test per equation, the grader's report in extra_data."""
    document = report_to_dict(report)
    validate_report(document)
    return {
        "score": report.score,
        "execution_time": execution_seconds(elapsed),
        "output": summary_markdown(report, graded),
        "output_format": "md",
        "stdout_visibility": "hidden",
        "visibility": "visible",
        "tests": [equation_entry(i, result, report) for i, result in enumerate(report.equations, start=1)],
        "extra_data": {"report": document, "notes": list(notes)},
    }


def problem_results(rubric: Rubric, problem: str, metadata: Mapping[str, str], elapsed: float, notes=()) -> dict:
    """Results for a submission that could not be graded through the student's doing: 0, and what to do.

    ``problem`` is Markdown already (``FileChoice.markdown``: file names in code spans).
    """
    tests = [
        {
            "name": eq.label,
            "number": str(i),
            "score": 0.0,
            "max_score": eq.points,
            "status": "failed",
            "output": f"Not graded: {problem}",
            "output_format": "md",
            "visibility": eq.visibility,
            "tags": [eq.id, eq.function, "not_graded"],
        }
        for i, eq in enumerate(rubric.equations, start=1)
    ]
    return {
        "score": 0.0,
        "execution_time": execution_seconds(elapsed),
        "output": f"**{escape_markdown(rubric.title)}**\n\n{problem}\n\nThe score is 0 until you submit again.",
        "output_format": "md",
        "stdout_visibility": "hidden",
        "visibility": "visible",
        "tests": tests,
        "extra_data": {"problem": problem, "metadata": dict(metadata), "notes": list(notes)},
    }


def fallback_results(error: str, elapsed: float) -> dict:
    """Results for a failure of the grader itself: 0, a message to contact staff, the error for instructors only."""
    document = fallback_template()
    document["execution_time"] = execution_seconds(elapsed)
    document["tests"][0]["output"] = document["extra_data"]["autograder_error"] = error[-MAX_ERROR_CHARS:]
    return document


def validate_results(document: dict) -> None:
    """Raise jsonschema.ValidationError unless the document is a results.json Gradescope accepts."""
    error = schema_error(document, "gradescope_results.schema.json")
    if error is not None:
        raise error
