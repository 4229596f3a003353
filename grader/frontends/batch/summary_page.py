"""The class summary page: ``summary``'s numbers on one self-contained HTML page.

Self-contained: inline CSS and SVG, no script, no fonts, no images, and a
Content-Security-Policy that forbids fetching anything, so it can be mailed, archived
or opened offline. Every piece of student-controlled text is HTML-escaped.

It must read on a phone (390 px) as well as on a laptop: the charts scale with the
page (an SVG with a viewBox, HTML bars), wide tables scroll inside their own box, and
the per-student table is sortable without a script, as three orderings of one table of
which the address's ``#fragment`` shows one (CSS ``:target``; by id when there is none). Means are rounded as the
terminal prints them (``gradebook.format_mean``), and the rubric's TeX in hints is shown
as text with sub- and superscripts.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from grader.frontends.batch.gradebook import format_mean, format_points, page_name
from grader.frontends.math_html import math_text

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --line: #d1d9e0; --bar: #2f6fde; --pass: #1a7f37; --warn: #9a6700;
        --bad: #cf222e; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink);
       margin: 0 auto; max-width: 1080px; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 18px; margin: 32px 0 10px; }
.sub, .explain { color: var(--muted); margin: 0 0 14px; font-size: 14px; }
.cards { display: flex; gap: 12px; flex-wrap: wrap; }
.card { background: var(--soft); border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px;
        flex: 1 1 140px; }
.card b { display: block; font-size: 22px; } .card span { color: var(--muted); font-size: 13px; }
.scroll { overflow-x: auto; -webkit-overflow-scrolling: touch; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { font-size: 13px; color: var(--muted); font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.track { background: #eaeef2; border-radius: 4px; height: 14px; width: 100%; min-width: 60px; overflow: hidden; }
.fill { height: 100%; background: var(--bar); }
.status { font-size: 12px; font-weight: 600; border-radius: 10px; padding: 1px 8px; white-space: nowrap;
          background: #eaeef2; }
.review { background: #fff8c5; color: var(--warn); } .ungradable, .grader_error { background: #ffebe9; color: var(--bad); }
.mistake { margin: 2px 0 8px; } .mistake code { background: var(--soft); padding: 0 4px; border-radius: 4px; }
.count, .flags { color: var(--muted); font-size: 13px; } .flags { word-break: break-word; }
.note { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 8px; padding: 8px 12px; margin-top: 16px; }
svg { width: 100%; max-width: 760px; height: auto; display: block; } .chart-narrow { display: none; }
svg text { font: 13px system-ui, sans-serif; fill: var(--muted); } svg .v { fill: var(--ink); font-weight: 600; }
.legend { font-size: 13px; color: var(--muted); margin: 4px 0 0; }
.swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 10px; }
.sorts { font-size: 14px; margin: 0 0 8px; } .sorts a { margin-right: 12px; }
.ordering { display: none; } .ordering:target, .ordering.default { display: block; }
.ordering:target ~ .ordering.default { display: none; }
@media (max-width: 600px) {
  body { padding: 14px 12px 32px; font-size: 14px; } h1 { font-size: 20px; }
  .card { padding: 8px 10px; } .card b { font-size: 18px; }
  th, td { padding: 5px 4px; } .wide, .chart-wide { display: none; } .chart-narrow { display: block; }
}
"""
BAR = "#2f6fde"
FULL = "#1a7f37"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def nice_ticks(peak: int) -> list[int]:
    """0 and up to 5 round steps (1, 2, 5, 10, 20, 50 ...) reaching at least the peak."""
    step = 1
    while peak / step > 5:
        for factor in (2, 2.5, 2):
            step = int(step * factor)
            if peak / step <= 5:
                break
    top = -(-max(peak, 1) // step) * step
    return list(range(0, top + 1, step))


def bin_label(b: Mapping) -> str:
    if b.get("full_marks"):
        return format_points(b["high"])
    if b["high"] - b["low"] == 1:
        return format_points(b["low"])
    return f"{format_points(b['low'])}–{format_points(b['high'])}"


def histogram_svg(bins: Sequence[Mapping], width: int = 720, css: str = "chart-wide") -> str:
    """The score histogram: one bar a bin, full marks in green, ticks on the count axis.

    Drawn once for a wide page and once, narrower, for a phone (CSS shows one), so its text
    keeps a readable size when the picture is scaled to the page."""
    height, left, right, bottom, top = 240, 34, 6, 42, 14
    plot_w, plot_h = width - left - right, height - bottom - top
    ticks = nice_ticks(max([b["count"] for b in bins] + [1]))
    scale = plot_h / ticks[-1]
    step = plot_w / max(1, len(bins))
    parts = [
        f'<svg class="{css}" role="img" aria-label="Histogram of total scores" viewBox="0 0 {width} {height}" '
        f'preserveAspectRatio="xMinYMin meet">'
    ]
    for tick in ticks:
        y = top + plot_h - tick * scale
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{"#8c959f" if not tick else "#eaeef2"}"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>'
        )
    for i, b in enumerate(bins):
        h = b["count"] * scale
        x = left + i * step + step * 0.12
        w = step * 0.76
        label = bin_label(b)
        what = "full marks" if b.get("full_marks") else f"[{format_points(b['low'])}, {format_points(b['high'])})"
        parts.append(
            f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{w:.1f}" height="{h:.1f}" rx="2" '
            f'fill="{FULL if b.get("full_marks") else BAR}"><title>{esc(what)}: {b["count"]}</title></rect>'
        )
        if b["count"]:
            parts.append(
                f'<text class="v" x="{x + w / 2:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle">'
                f"{b['count']}</text>"
            )
        parts.append(f'<text x="{x + w / 2:.1f}" y="{top + plot_h + 17}" text-anchor="middle">{esc(label)}</text>')
    parts.append(
        f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">points (a bar counts scores '
        "from its label up to the next)</text></svg>"
    )
    return "".join(parts)


def bar(fraction: float | None) -> str:
    width = 0 if fraction is None else max(0.0, min(1.0, fraction)) * 100
    return f'<div class="track"><div class="fill" style="width:{width:.1f}%"></div></div>'


def status_badge(status: str) -> str:
    return f"<span class='status {esc(status)}'>{esc(status.replace('_', ' '))}</span>"


def report_link(item: Mapping) -> str:
    """The student's page (what they see) and the report (everything, hidden cases included)."""
    return f'<a href="{esc(page_name(item["report"]))}">page</a> · <a href="{esc(item["report"])}">JSON</a>'


def page_link(item: Mapping) -> str:
    return f'<a href="{esc(page_name(item["report"]))}">{esc(item["id"])}</a>'


def student_table(rows: Sequence[Mapping], order: str) -> list[str]:
    """One ordering of the per-student table: by id, by total (highest first) or by status."""
    keys = {
        "id": lambda r: r["id"],
        "total": lambda r: (r["total"] is None, -(r["total"] or 0), r["id"]),
        "status": lambda r: (r["status"], r["id"]),
    }
    out = [
        f'<div class="ordering{" default" if order == "id" else ""}" id="by-{order}"><div class="scroll"><table><thead><tr><th>Submission</th>'
        "<th class='num'>Total</th><th>Status</th><th class='wide'>Flags</th><th>Report</th></tr></thead><tbody>"
    ]
    for item in sorted(rows, key=keys[order]):
        name = f"<br><span class=count>{esc(item['name'])}</span>" if item["name"] else ""
        flags = ", ".join(item["flags"]) + (" import failed" if item["import_failed"] else "")
        out.append(
            f"<tr><td>{esc(item['id'])}{name}</td><td class='num'>{esc(format_points(item['total'])) or '–'}</td>"
            f"<td>{status_badge(item['status'])}</td><td class='flags wide'>{esc(flags)}</td>"
            f"<td>{report_link(item)}</td></tr>"
        )
    out.append("</tbody></table></div></div>")
    return out


def mean_text(eq: dict) -> str:
    """An equation's mean as "mean / points"; a 0-point check has none ("check"), only its share passed."""
    if eq.get("counted", True) is False:
        return "check"
    return f"{format_mean(eq['mean_score'])} / {format_points(eq['points'])}"


def render_html(summary: Mapping) -> str:
    """The class summary page."""
    title = f"{summary['title']} — class summary"
    stats = summary["scores"]
    statuses = summary["statuses"]
    max_score = format_points(summary["max_score"])
    cards = [
        (summary["submissions"], "submissions"),
        (statuses["graded"] + statuses["review"], "graded"),
        ("–" if stats["mean"] is None else f"{format_mean(stats['mean'])} / {max_score}", "mean score"),
        ("–" if stats["median"] is None else f"{format_mean(stats['median'])} / {max_score}", "median score"),
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
        histogram_svg(summary["histogram"], 400, "chart-narrow"),
        f'<p class="legend"><span class="swatch" style="background:{BAR}"></span>scores in the bin'
        f'<span class="swatch" style="background:{FULL}"></span>full marks ({esc(max_score)}) only</p>',
        "<h2>Equations</h2>",
        '<p class="explain">Mean: the average score on the equation. Full marks: the share of graded '
        "submissions that got every point of it; for a check (not counted in the score), the share that passed it.</p>",
        "<div class='scroll'><table><thead><tr><th>Equation</th><th class='num'>Mean</th><th style='width:30%'></th>"
        "<th class='num'>Full marks</th></tr></thead><tbody>",
    ]
    for eq in summary["equations"]:
        out.append(
            f"<tr><td><b>{esc(eq['id'])}</b> <span class='wide'>{math_text(eq['label'])}</span></td>"
            f"<td class='num'>{esc(mean_text(eq))}</td>"
            f"<td>{bar(eq['full_marks'] if eq.get('counted', True) is False else eq['mean_fraction'])}</td>"
            f"<td class='num'>{percent(eq['full_marks'])}</td></tr>"
        )
    out.append("</tbody></table></div>")
    out += ["<h2>Most frequent named mistakes</h2>", "<div class='scroll'><table><thead><tr><th>Equation</th>"]
    out.append("<th>Mistakes</th></tr></thead><tbody>")
    for eq in summary["equations"]:
        if not eq["mistakes"]:
            continue
        items = "".join(
            f'<div class="mistake"><code>{esc(m["id"])}</code> <span class="count">{m["count"]} '
            f"({percent(m['share'])})</span> {math_text(m['hint'])}</div>"
            for m in eq["mistakes"]
        )
        out.append(f"<tr><td><b>{esc(eq['id'])}</b></td><td>{items}</td></tr>")
    if not any(eq["mistakes"] for eq in summary["equations"]):
        out.append("<tr><td colspan='2'>No catalogued mistake was recognised.</td></tr>")
    out.append("</tbody></table></div>")
    out += [
        f"<h2>Needs a human look ({len(summary['needs_review'])})</h2>",
        "<div class='scroll'><table><thead><tr><th>Submission</th><th>Status</th><th class='num'>Total</th>"
        "<th>Why</th></tr></thead><tbody>",
    ]
    for item in summary["needs_review"]:
        who = " · ".join(esc(v) for v in (item["name"], item["email"]) if v)
        out.append(
            f"<tr><td>{page_link(item)}"
            f"{'<br><span class=count>' + who + '</span>' if who else ''}</td>"
            f"<td>{status_badge(item['status'])}</td>"
            f"<td class='num'>{esc(format_points(item['total'])) or '–'}</td>"
            f"<td>{'<br>'.join(esc(r) for r in item['reasons'])}</td></tr>"
        )
    if not summary["needs_review"]:
        out.append("<tr><td colspan='4'>Nothing: every submission was graded without a flag.</td></tr>")
    out.append("</tbody></table></div>")
    table = summary["submissions_table"]
    out += [
        f"<h2>Every submission ({len(table)})</h2>",
        '<p class="sorts">Sort by: <a href="#by-id">id</a><a href="#by-total">total</a>'
        '<a href="#by-status">status</a></p><div class="orderings">',
    ]
    for order in ("total", "status", "id"):  # the default last: a targeted ordering before it hides it
        out += student_table(table, order)
    out.append("</div></body></html>")
    return "\n".join(out) + "\n"
