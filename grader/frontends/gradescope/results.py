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

import html
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from grader.assignment.rubric import Rubric
from grader.frontends.markdown import code_block, code_span, escape_markdown
from grader.frontends.page import case_figures
from grader.grading.checks import CheckResult
from grader.grading.report import Report, display_text, report_to_dict, validate_report
from grader.grading.scoring import EquationResult, EquationStatus
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


def visible_cases(result: EquationResult, report: Report) -> list[tuple[CheckResult, str, str, str]]:
    """(check, its dims as text, its verdict, the message or "") for each visible case, in order."""
    cases = {case.index: case for case in report.cases[result.equation.id]}
    shown = []
    for check in result.cases:
        if not check.visible:
            continue
        dims = ", ".join(f"{k}={v}" for k, v in cases[check.index].dims.items())
        verdict = check.status.value.replace("_", " ")
        message = check.message if check.message and check.status.value != "passed" else ""
        shown.append((check, dims, verdict, message))
    return shown


def verdict_line(result: EquationResult) -> str:
    status = result.status.value.replace("_", " ").capitalize()
    if not result.equation.counted:  # a 0-point check: its verdict, never points lost
        return f"{status}: a check, not counted in the score."
    return f"{status}: {points(result.score)}/{points(result.equation.points)} points."


def hidden_line(result: EquationResult) -> str | None:
    hidden = [check for check in result.cases if not check.visible]
    if not hidden:
        return None
    passed = sum(check.status.value == "passed" for check in hidden)
    return f"Hidden cases: {passed} of {len(hidden)} passed (their inputs are not shown)."


def equation_markdown(result: EquationResult, report: Report) -> str:
    """One test's output: the verdict, the feedback, each visible case, and a count of hidden ones."""
    status, rest = verdict_line(result).split(":", 1)
    lines = [f"**{status}**:{rest}", "", escape_markdown(result.feedback)]
    for check, dims, verdict, message in visible_cases(result, report):
        message = f": {escape_markdown(message)}" if message else ""
        lines += ["", f"**Visible case {check.index}** ({escape_markdown(dims)}): {verdict}{message}"]
        if check.diff:
            lines += ["", "| entry | expected | got |", "|---|---|---|"]
            lines += [f"| {list(d['index'])} | {d['expected']:.6g} | {d['got']:.6g} |" for d in check.diff]
    if (hidden := hidden_line(result)) is not None:
        lines += ["", hidden]
    return "\n".join(lines)


def html_text(text: str) -> str:
    """Plain text as HTML: escaped, its line breaks kept."""
    return "<br>".join(html.escape(display_text(line)) for line in text.split("\n"))


def equation_html(result: EquationResult, report: Report, figures: Sequence[str]) -> str:
    """The same output as HTML, with the heatmaps of the visible cases (``figures``) after those cases.

    Inline SVG rather than an ``<img>`` with a data URL: Gradescope sanitizes HTML
    output, and sanitizers commonly drop ``data:image/svg+xml`` sources.
    """
    status, rest = verdict_line(result).split(":", 1)
    parts = [
        f"<p><strong>{html.escape(status)}</strong>:{html.escape(rest)}</p>",
        f"<p>{html_text(result.feedback)}</p>",
    ]
    for check, dims, verdict, message in visible_cases(result, report):
        said = f"{verdict}: {message}" if message else verdict
        parts.append(f"<p><strong>Visible case {check.index}</strong> ({html.escape(dims)}): {html_text(said)}</p>")
        if check.diff:
            rows = "".join(
                f"<tr><td>{list(d['index'])}</td><td>{d['expected']:.6g}</td><td>{d['got']:.6g}</td></tr>"
                for d in check.diff
            )
            parts.append(f"<table><thead><tr><th>entry</th><th>expected</th><th>got</th></tr></thead>{rows}</table>")
    parts += figures
    if (hidden := hidden_line(result)) is not None:
        parts.append(f"<p>{html_text(hidden)}</p>")
    return "".join(parts)


def summary_markdown(report: Report, graded: str) -> str:
    """The top-level output: what was graded, the total, and what the file printed."""
    # Only parts the student may see now are counted: a hidden part's verdict must not leak.
    # A 0-point check has no marks to earn: it is left out of the count of parts.
    shown = [r for r in report.equations if r.equation.visibility == "visible" and r.equation.counted]
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
    full = result.score >= eq.points - 1e-9 if eq.counted else result.status == EquationStatus.PASSED
    # A visible case with wrong values gets its heatmap, which needs HTML; hidden cases never get one.
    figures = case_figures(report, result)
    return {
        "name": eq.label if eq.counted else f"{eq.label} (a check, not counted)",
        "number": str(number),
        "score": result.score,
        "max_score": eq.points,
        "status": "passed" if full else "failed",
        "output": equation_html(result, report, figures) if figures else equation_markdown(result, report),
        "output_format": "html" if figures else "md",
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
            "name": eq.label if eq.counted else f"{eq.label} (a check, not counted)",
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
