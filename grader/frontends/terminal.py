"""The terminal view of a report: a per-equation table, then feedback for what is not passed."""

from __future__ import annotations

import shutil
import sys
import textwrap

from grader.grading import heatmap
from grader.grading.feedback import NOT_GRADED
from grader.grading.report import Report, display_text
from grader.grading.scoring import EquationStatus


def terminal_attached() -> bool:
    """Is stdout a terminal? (None or closed when the caller closed it: not a terminal.)"""
    try:
        return bool(sys.stdout is not None and sys.stdout.isatty())
    except (OSError, ValueError):
        return False


def format_points(value: float) -> str:
    return f"{value:g}"


def render_report(report: Report, width: int | None = None, grids: bool | None = None) -> str:
    """A plain-text table a student can read in a terminal; no hidden input is in it.

    ``grids`` adds a block-character picture of each wrong visible case (by default
    when stdout is a terminal: a file or a pipe gets plain lines).
    """
    if grids is None:
        grids = terminal_attached()
    width = width or min(100, shutil.get_terminal_size((100, 24)).columns)
    rubric = report.rubric
    lines = [
        f"{rubric.title}",
        f"submission: {display_text(report.submission_path)} (sha256 {report.submission_sha256[:12]})",
        "",
    ]
    if report.notice:  # about the whole file: said once, above the table
        lines += [*textwrap.wrap(report.notice, width=width), ""]
    rows = [("eq", "function", "score", "status")]
    for result in report.equations:
        eq = result.equation
        points = f"{format_points(result.score)}/{format_points(eq.points)}" if eq.counted else "check"
        rows.append((eq.id, eq.caller, points, result.status.value))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    lines.append(f"Total: {format_points(report.score)}/{format_points(report.max_score)}")
    checks = [r.equation.id for r in report.equations if not r.equation.counted]
    if checks:
        lines.append(f"({', '.join(checks)}: {'a check' if len(checks) == 1 else 'checks'}, not counted in the total)")
    if report.notes:
        lines.append("")
        lines.append("Notes:")
        for note in report.notes:
            lines += textwrap.wrap(note, width=width, initial_indent="  - ", subsequent_indent="    ")
    notes = [r for r in report.equations if r.status != EquationStatus.PASSED or r.flags]
    if report.notice:  # the table has each status; the notice on top says why none was graded
        notes = [r for r in notes if not r.feedback.startswith(NOT_GRADED)]
    if notes:
        lines.append("")
        lines.append("Feedback:")
        for result in notes:
            head = f"  {result.equation.label} [{result.equation.caller}]"
            lines.append(head)
            lines += textwrap.wrap(result.feedback, width=width, initial_indent="    ", subsequent_indent="    ")
            lines += visible_diff(result)
            if grids:
                lines += visible_grids(report, result)
    if report.output.strip():
        lines.append("")
        lines.append("Your file printed (import and visible cases only):")
        shown = report.output.strip().splitlines()[:20]
        lines += ["    " + line[: width - 4] for line in shown]
    return "\n".join(lines)


def visible_diff(result) -> list[str]:
    """Expected vs got for the first wrong entries of the first failing visible case."""
    for check in result.cases:
        named = [("", check)] + [(f"{name}, ", part) for name, part in check.parts]  # outputs: each on its own
        for name, found in named:
            if check.visible and found.diff:
                head = (
                    f"    visible case {check.index}, {name}shape {tuple(found.expected_shape)}: entry  expected  got"
                )
                rows = [head] + [f"      {tuple(d['index'])}  {d['expected']:.6g}  {d['got']:.6g}" for d in found.diff]
                return rows
    return []


def visible_grids(report: Report, result) -> list[str]:
    """Where each wrong visible case is wrong: ``·`` right, ``░▒▓█`` wrong (by the size of the error)."""
    cases = {case.index: case for case in report.cases[result.equation.id]}
    rows = []
    for check in result.cases:
        picture = heatmap.for_check(cases[check.index], check, report.rubric.settings)
        if picture is not None:
            rows.append(
                f"    visible case {check.index}: {picture.wrong_count} of {picture.difference.size} entries wrong"
            )
            rows += [f"      {line}" for line in heatmap.grid(picture)]
    return rows


def isolation_warning(report: Report) -> str | None:
    """One line when the run had weaker isolation than a root run would have had."""
    protections = report.protections
    if not protections.weaker_than_possible:
        return None
    reason = protections.notes[0] if protections.notes else "some protections were unavailable"
    return f"note: graded with weaker isolation ({reason})"
