"""A per-student HTML page: each equation's status and feedback, and where a visible answer is wrong.

``grade FILE --html PAGE`` writes it. Built from the Report object; a single
self-contained file (inline CSS and SVG, no script, nothing fetched), readable on a
phone. Only visible cases get a heatmap (grader/grading/heatmap.py): a hidden case's
picture would show its values.
"""

from __future__ import annotations

import html
from pathlib import Path

from grader.errors import OutputFileError
from grader.files import write_bytes_atomic
from grader.frontends.math_html import math_text
from grader.grading import heatmap
from grader.grading.report import Report, display_text
from grader.grading.scoring import EquationResult, EquationStatus

STYLE = """
body{font:16px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:0;color:#1b1b1b;background:#fff}
main{max-width:52rem;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.2rem 0}
h2{font-size:1.05rem;margin:0 0 .3rem}
.meta{color:#555;font-size:.9rem;overflow-wrap:anywhere}
.total{font-size:1.2rem;font-weight:600;margin:.6rem 0}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.5rem 0 1rem}
th,td{text-align:left;padding:.3rem .3rem;border-bottom:1px solid #e3e3e3}
td.num{font-variant-numeric:tabular-nums}
section{border:1px solid #e3e3e3;border-radius:.4rem;padding:.7rem .8rem;margin:.8rem 0}
.status{display:inline-block;padding:0 .45rem;border-radius:.8rem;font-size:.85rem;font-weight:600}
.passed{background:#dcf3e0;color:#14532d}.partial{background:#fdf0c8;color:#713f12}
.failed,.error,.timeout,.missing,.not_implemented{background:#fbdcdc;color:#7f1d1d}
.feedback{margin:.4rem 0;overflow-wrap:anywhere}
figure{margin:.6rem 0}
figcaption{font-size:.85rem;color:#444;margin-top:.2rem}
svg.heatmap{max-width:100%;height:auto}
.legend{font-size:.8rem;color:#555}
"""


def e(text: object) -> str:
    return html.escape(display_text(text))


def points(value: float) -> str:
    return f"{value:g}"


def score_text(result: EquationResult) -> str:
    """Points as "score/max", or "check" for a 0-point item: reported, not counted, never points lost."""
    eq = result.equation
    return f"{points(result.score)}/{points(eq.points)}" if eq.counted else "check (not counted)"


def case_heatmaps(report: Report, result: EquationResult) -> list[tuple[str, heatmap.Heatmap]]:
    """(label, heatmap) for each visible case with wrong values; hidden cases never get one."""
    cases = {case.index: case for case in report.cases[result.equation.id]}
    pictures = []
    for check in result.cases:
        picture = heatmap.for_check(cases[check.index], check, report.rubric.settings)
        if picture is not None:
            pictures.append((f"visible case {check.index}", picture))
    return pictures


def caption(label: str, picture: heatmap.Heatmap) -> str:
    return (
        f"{label}: {picture.wrong_count} of {picture.difference.size} entries wrong (outlined). "
        "Colour is got − expected: red where yours is larger, blue where smaller."
    )


def case_figures(report: Report, result: EquationResult) -> list[str]:
    """A figure (SVG and caption) for each visible case with wrong values; hidden cases never get one."""
    return [
        f"<figure>{heatmap.svg(picture, label)}<figcaption>{e(caption(label, picture))}</figcaption></figure>"
        for label, picture in case_heatmaps(report, result)
    ]


def equation_section(report: Report, result: EquationResult) -> str:
    eq = result.equation
    status = result.status.value
    body = [
        f'<section id="{e(eq.id)}">',
        f"<h2>{math_text(eq.label)}</h2>",
        f"<p><code>{e(eq.caller)}</code> · {e(score_text(result))} · "
        f'<span class="status {e(status)}">{e(status.replace("_", " "))}</span></p>',
    ]
    if result.status != EquationStatus.PASSED or result.flags:
        body.append(f'<p class="feedback">{math_text(result.feedback)}</p>')
    body += case_figures(report, result)
    body.append("</section>")
    return "".join(body)


def about_the_file(report: Report) -> str:
    """What is said about the whole file, once: why it was not graded or not imported, and the notes."""
    said = []
    if report.flags and report.metadata.get("grading_error"):  # not graded at all (``ungraded_report``)
        said.append(f"Not graded: {report.metadata['grading_error']}")
    if report.notice:
        said.append(report.notice)
    said += report.notes
    return "".join(f'<p class="feedback notice">{e(text)}</p>' for text in said)


def render_page(report: Report) -> str:
    """The whole page as one HTML string."""
    rubric = report.rubric
    rows = "".join(
        f'<tr><td><a href="#{e(r.equation.id)}">{e(r.equation.id)}</a></td><td><code>{e(r.equation.caller)}</code>'
        f'</td><td class="num">{e(score_text(r))}</td>'
        f'<td><span class="status {e(r.status.value)}">{e(r.status.value.replace("_", " "))}</span></td></tr>'
        for r in report.equations
    )
    sections = "".join(equation_section(report, r) for r in report.equations)
    name = Path(display_text(report.submission_path)).name
    who = " · ".join(e(report.metadata[key]) for key in ("name", "id") if report.metadata.get(key))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(rubric.title)}: {e(name)}</title><style>{STYLE}</style></head><body><main>"
        f"<h1>{e(rubric.title)}</h1>"
        + (f'<p class="meta">{who}</p>' if who else "")
        + f'<p class="meta">{e(name)} · sha256 {e(report.submission_sha256[:12])}</p>'
        f'<p class="total">Total: {points(report.score)}/{points(report.max_score)}</p>'
        f"{about_the_file(report)}"
        + (
            '<div class="scroll"><table><thead><tr><th>eq</th><th>function</th><th>score</th><th>status</th></tr>'
            f"</thead><tbody>{rows}</tbody></table></div>"
            '<p class="legend">Pictures show visible cases only: each square is one entry of the answer, '
            "outlined where it is wrong.</p>"
            if report.equations
            else ""
        )
        + f"{sections}</main></body></html>\n"
    )


def write_page(report: Report, path: str | Path) -> None:
    """Write the page atomically; a path that can't be written is a GraderError (exit 2)."""
    try:
        write_bytes_atomic(path, render_page(report).encode("utf-8"))
    except (OSError, ValueError) as err:  # ValueError: a NUL byte in the path
        reason = getattr(err, "strerror", None) or str(err)
        raise OutputFileError(f"{display_text(path)}: cannot write the page ({reason})") from err
