"""The class summary: the numbers an instructor wants after a batch, as JSON and as one HTML page.

Both are computed from gradebook rows only, so they are deterministic (no clock, no
paths of the machine that ran the batch): a resumed batch and merged shards produce the
same files as one uninterrupted run.

The page is self-contained: inline CSS and SVG, no script, no fonts, no images, and a
Content-Security-Policy that forbids fetching anything, so it can be mailed, archived or
opened offline. Every piece of student-controlled text is HTML-escaped.
"""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence

from grader.frontends.batch.gradebook import REVIEW_FLAGS, Row, SubmissionStatus, format_points

SUMMARY_VERSION = 1
TOP_MISTAKES = 3
MISTAKE_PREFIX = "Likely mistake: "


def histogram(scores: Sequence[float], max_score: float) -> list[dict]:
    """Counts of total scores in bins of 1 point (10 equal bins when the maximum is over 20); the last bin is closed."""
    width = 1.0 if max_score <= 20 else max_score / 10
    bins = max(1, math.ceil(max_score / width)) if max_score > 0 else 1
    counts = [0] * bins
    for score in scores:
        counts[min(bins - 1, max(0, int(score // width)))] += 1
    return [
        {"low": round(i * width, 4), "high": round(min((i + 1) * width, max_score), 4), "count": count}
        for i, count in enumerate(counts)
    ]


def score_statistics(scores: Sequence[float]) -> dict:
    if not scores:
        return {"count": 0, "mean": None, "median": None, "stdev": None, "min": None, "max": None}
    return {
        "count": len(scores),
        "mean": round(statistics.fmean(scores), 4),
        "median": round(statistics.median(scores), 4),
        "stdev": round(statistics.pstdev(scores), 4),
        "min": round(min(scores), 4),
        "max": round(max(scores), 4),
    }


def equation_statistics(graded: Sequence[Row]) -> list[dict]:
    """Per equation: mean score, pass rate, statuses and the most frequent named mistakes."""
    if not graded:
        return []
    result = []
    for i, first in enumerate(graded[0].equations):
        cells = [row.equations[i] for row in graded if len(row.equations) > i]
        mistakes = Counter(c.mistake_id for c in cells if c.mistake_id)
        hints = {}
        for cell in cells:
            if cell.mistake_id and cell.mistake_id not in hints:
                hints[cell.mistake_id] = cell.mistake_text.removeprefix(MISTAKE_PREFIX)
        mean = statistics.fmean(c.score for c in cells)
        result.append(
            {
                "id": first.id,
                "label": first.label,
                "points": first.points,
                "mean_score": round(mean, 4),
                "mean_fraction": round(mean / first.points, 4) if first.points else None,
                "pass_rate": round(sum(c.status == "passed" for c in cells) / len(cells), 4),
                "statuses": dict(sorted(Counter(c.status for c in cells).items())),
                "mistakes": [
                    {"id": mid, "count": count, "share": round(count / len(cells), 4), "hint": hints[mid]}
                    for mid, count in sorted(mistakes.items(), key=lambda item: (-item[1], item[0]))[:TOP_MISTAKES]
                ],
            }
        )
    return result


def review_reasons(row: Row) -> list[str]:
    """Why a row needs a person, in words: one line per reason, naming its equations."""
    if row.status in (SubmissionStatus.UNGRADABLE, SubmissionStatus.GRADER_ERROR):
        return [row.note or row.status.value]
    equations: dict[str, list[str]] = {}
    for flag in row.flags:
        eq, _, name = flag.partition(":")
        if name in REVIEW_FLAGS:
            equations.setdefault(name, []).append(eq)
    return [f"{', '.join(eqs)}: {REVIEW_FLAGS[name]}" for name, eqs in equations.items()]


def summarize_class(rows: Sequence[Row], header: Mapping[str, object]) -> dict:
    """The summary document; ``header`` carries assignment, title, rubric_sha256, grader_version, max_score."""
    graded = [row for row in rows if row.graded]
    scores = [row.total for row in graded if row.total is not None]
    max_score = float(header["max_score"])
    isolation = Counter(note for row in rows for note in row.isolation_notes)
    return {
        "summary_version": SUMMARY_VERSION,
        **{key: header[key] for key in ("assignment", "title", "rubric_sha256", "grader_version")},
        "max_score": max_score,
        "submissions": len(rows),
        "statuses": {status.value: sum(row.status == status for row in rows) for status in SubmissionStatus},
        "scores": score_statistics(scores),
        "histogram": histogram(scores, max_score),
        "equations": equation_statistics(graded),
        "needs_review": [
            {
                "id": row.id,
                "name": row.name,
                "email": row.email,
                "status": row.status.value,
                "reasons": review_reasons(row),
                "total": row.total,
                "report": row.report,
            }
            for row in rows
            if row.status != SubmissionStatus.GRADED
        ],
        "isolation_notes": [{"note": note, "submissions": n} for note, n in sorted(isolation.items())],
    }


# -- the page -------------------------------------------------------------------------

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bar: #2f6fde; --pass: #1a7f37; --warn: #9a6700;
        --bad: #cf222e; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1040px; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 10px; }
.sub { color: var(--muted); margin: 0 0 18px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; min-width: 140px; }
.card b { display: block; font-size: 22px; } .card span { color: var(--muted); font-size: 13px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.track { background: #eaeef2; border-radius: 4px; height: 14px; width: 180px; overflow: hidden; }
.fill { height: 100%; background: var(--bar); } .fill.pass { background: var(--pass); }
.status { font-size: 12px; font-weight: 600; border-radius: 10px; padding: 1px 8px; white-space: nowrap; }
.review { background: #fff8c5; color: var(--warn); } .ungradable, .grader_error { background: #ffebe9; color: var(--bad); }
.mistake { margin: 2px 0; } .mistake code { background: var(--soft); padding: 0 4px; border-radius: 4px; }
.count { color: var(--muted); font-size: 13px; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 8px; padding: 8px 12px; margin-top: 16px; }
svg text { font: 12px system-ui, sans-serif; fill: var(--muted); } svg .v { fill: var(--ink); }
"""


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def histogram_svg(bins: Sequence[Mapping]) -> str:
    """A bar chart of the score histogram, drawn inline."""
    width, height, left, bottom, top = 720, 220, 36, 28, 16
    plot_w, plot_h = width - left - 8, height - bottom - top
    peak = max([b["count"] for b in bins] + [1])
    step = plot_w / max(1, len(bins))
    parts = [
        f'<svg role="img" aria-label="Histogram of total scores" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}">',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - 8}" y2="{top + plot_h}" stroke="#d1d9e0"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{peak}</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for i, b in enumerate(bins):
        h = plot_h * b["count"] / peak
        x = left + i * step + 2
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{step - 4:.1f}" height="{h:.1f}" rx="2" '
            f'fill="#2f6fde"><title>{esc(format_points(b["low"]))}–{esc(format_points(b["high"]))}: '
            f"{b['count']}</title></rect>"
        )
        if b["count"]:
            parts.append(
                f'<text class="v" x="{x + (step - 4) / 2:.1f}" y="{top + plot_h - h - 4:.1f}" '
                f'text-anchor="middle">{b["count"]}</text>'
            )
        label = f"{format_points(b['low'])}–{format_points(b['high'])}" if step > 40 else format_points(b["low"])
        parts.append(f'<text x="{x + (step - 4) / 2:.1f}" y="{height - 10}" text-anchor="middle">{esc(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def bar(fraction: float | None, kind: str = "") -> str:
    width = 0 if fraction is None else max(0.0, min(1.0, fraction)) * 100
    return f'<div class="track"><div class="fill {kind}" style="width:{width:.1f}%"></div></div>'


def render_html(summary: Mapping) -> str:
    """The class summary page."""
    title = f"{summary['title']} — class summary"
    stats = summary["scores"]
    statuses = summary["statuses"]
    max_score = format_points(summary["max_score"])
    cards = [
        (summary["submissions"], "submissions"),
        (statuses["graded"] + statuses["review"], "graded"),
        ("–" if stats["mean"] is None else f"{format_points(stats['mean'])} / {max_score}", "mean score"),
        ("–" if stats["median"] is None else f"{format_points(stats['median'])} / {max_score}", "median score"),
        (len(summary["needs_review"]), "need a human look"),
    ]
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(summary['title'])}</h1>",
        f'<p class="sub">Assignment {esc(summary["assignment"])} · grader {esc(summary["grader_version"])} · '
        f"rubric sha256 {esc(summary['rubric_sha256'][:12])}</p>",
        '<div class="cards">',
        *(f'<div class="card"><b>{esc(value)}</b><span>{esc(label)}</span></div>' for value, label in cards),
        "</div>",
    ]
    for item in summary["isolation_notes"]:
        out.append(
            f'<p class="note">Graded with weaker isolation ({item["submissions"]} submissions): {esc(item["note"])}</p>'
        )
    out += [
        f"<h2>Total scores (out of {esc(max_score)})</h2>",
        histogram_svg(summary["histogram"]),
        "<h2>Equations</h2>",
        "<table><thead><tr><th>Equation</th><th class='num'>Mean score</th><th></th>"
        "<th class='num'>Pass rate</th><th></th></tr></thead><tbody>",
    ]
    for eq in summary["equations"]:
        out.append(
            f"<tr><td><b>{esc(eq['id'])}</b> {esc(eq['label'])}</td>"
            f"<td class='num'>{esc(format_points(eq['mean_score']))} / {esc(format_points(eq['points']))}</td>"
            f"<td>{bar(eq['mean_fraction'])}</td>"
            f"<td class='num'>{percent(eq['pass_rate'])}</td><td>{bar(eq['pass_rate'], 'pass')}</td></tr>"
        )
    out.append("</tbody></table>")
    out += ["<h2>Most frequent named mistakes</h2>", "<table><thead><tr><th>Equation</th><th>Mistakes</th></tr>"]
    out.append("</thead><tbody>")
    for eq in summary["equations"]:
        if not eq["mistakes"]:
            continue
        items = "".join(
            f'<div class="mistake"><code>{esc(m["id"])}</code> <span class="count">{m["count"]} '
            f"({percent(m['share'])})</span> {esc(m['hint'])}</div>"
            for m in eq["mistakes"]
        )
        out.append(f"<tr><td><b>{esc(eq['id'])}</b></td><td>{items}</td></tr>")
    if not any(eq["mistakes"] for eq in summary["equations"]):
        out.append("<tr><td colspan='2'>No catalogued mistake was recognised.</td></tr>")
    out.append("</tbody></table>")
    out += [
        f"<h2>Needs a human look ({len(summary['needs_review'])})</h2>",
        "<table><thead><tr><th>Submission</th><th>Status</th><th class='num'>Total</th><th>Why</th></tr>",
        "</thead><tbody>",
    ]
    for item in summary["needs_review"]:
        who = " · ".join(esc(v) for v in (item["name"], item["email"]) if v)
        out.append(
            f'<tr><td><a href="{esc(item["report"])}">{esc(item["id"])}</a>'
            f"{'<br><span class=count>' + who + '</span>' if who else ''}</td>"
            f"<td><span class='status {esc(item['status'])}'>{esc(item['status'].replace('_', ' '))}</span></td>"
            f"<td class='num'>{esc(format_points(item['total'])) or '–'}</td>"
            f"<td>{'<br>'.join(esc(r) for r in item['reasons'])}</td></tr>"
        )
    if not summary["needs_review"]:
        out.append("<tr><td colspan='4'>Nothing: every submission was graded without a flag.</td></tr>")
    out.append("</tbody></table></body></html>")
    return "\n".join(out) + "\n"
