"""The class summary page reads as an instructor needs: the CLI's numbers, full marks apart, ticks,
defined columns, hints as text, a row per student, import failures flagged, and a layout that holds
on a phone (390 px) and a laptop (1280 px)."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile

import pytest

from conftest import REPO, grade
from grader.assignment.rubric import load_rubric
from grader.frontends.batch.command import conclude
from grader.frontends.batch.gradebook import row_from_report
from grader.frontends.batch.summary import IMPORT_FAILED, summarize_class
from grader.frontends.batch.summary_page import nice_ticks, render_html
from grader.frontends.math_html import math_text
from grader.frontends.page import render_page
from grader.grading.report import EMPTY_SHA256

RUBRIC = load_rubric(REPO / "rubrics" / "quiz4.yaml")
HEADER = {
    "assignment": "quiz4",
    "title": RUBRIC.title,
    "rubric_sha256": "0" * 64,
    "grader_version": "1",
    "max_score": sum(eq.points for eq in RUBRIC.equations),
}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def report(sid: str, scores: dict[str, float], mistakes: dict[str, str] | None = None, notice: str = "") -> dict:
    """A report-shaped document for quiz 4: every equation full marks unless ``scores`` says otherwise."""
    mistakes = mistakes or {}
    equations = []
    for eq in RUBRIC.equations:
        score = scores.get(eq.id, eq.points)
        hint = {m.id: m.hint for m in eq.mistakes}.get(mistakes.get(eq.id, ""))
        equations.append(
            {
                "id": eq.id,
                "label": eq.label,
                "max_score": eq.points,
                "score": score,
                "status": "error" if notice else ("passed" if score == eq.points else "failed"),
                "flags": [],
                "cases": [{"status": "error"}] * 5 if notice else [{"status": "passed"}] * 5,
                "diagnosis": {"kind": "mistake", "text": f"Likely mistake: {hint}", "mistake_id": mistakes[eq.id]}
                if hint
                else None,
                **({} if eq.counted else {"counted": False}),  # the end-to-end check, as reports mark it
            }
        )
    return {
        "submission": {"path": f"{sid}.py", "sha256": EMPTY_SHA256, "metadata": {"id": sid, "name": sid.title()}},
        "score": sum(e["score"] for e in equations),
        "max_score": HEADER["max_score"],
        "flags": [],
        "notice": notice,
        "equations": equations,
        "sandbox": {"privilege_drop": True, "network_cut": True, "reference_hidden": True},
    }


def a_class(size: int = 40) -> list:
    """A realistic class: most near full marks, a few named mistakes, two import failures."""
    rng = random.Random(4)
    counted = [eq for eq in RUBRIC.equations if eq.counted]  # the end-to-end check has no points to lose
    catalog = {eq.id: [m.id for m in eq.mistakes] for eq in counted}
    rows = []
    for i in range(size):
        wrong = rng.sample([eq.id for eq in counted], k=min(8, int(rng.expovariate(0.8))))
        scores = {eq: rng.choice([0, 0.5]) for eq in wrong}
        mistakes = {eq: rng.choice(catalog[eq]) for eq in wrong if rng.random() < 0.7}
        rows.append(report(f"s{i:02d}", scores, mistakes))
    broken = "Your file could not be imported: SyntaxError: invalid syntax at line 3."
    rows += [report(sid, {eq.id: 0 for eq in RUBRIC.equations}, notice=broken) for sid in ("zed", "zoe")]
    return [row_from_report(doc, f"reports/{doc['submission']['metadata']['id']}.json") for doc in rows]


def test_the_page_prints_means_as_the_terminal_does(capsys, tmp_path):
    rows = [
        row_from_report(report(sid, {"eq1": s}), f"reports/{sid}.json") for sid, s in (("a", 0), ("b", 1), ("c", 1))
    ]
    conclude(rows, tmp_path, "done")
    said = re.search(r"Mean (\S+)/", capsys.readouterr().out).group(1)
    page = render_html(summarize_class(rows, HEADER))
    assert said == "9.67" and f"<b>{said} / 11</b>" in page and "9.6667" not in page


def test_full_marks_get_a_bar_of_their_own_and_the_count_axis_has_ticks():
    page = render_html(summarize_class(a_class(), HEADER))
    svg = page[page.index("<svg") : page.index("</svg>")]
    assert "<title>full marks: " in svg and svg.count("<rect") == 12  # eleven 1-point bins, full marks
    assert len(re.findall(r'text-anchor="end">\d+</text>', svg)) >= 3
    assert (
        nice_ticks(7) == [0, 2, 4, 6, 8] and nice_ticks(3) == [0, 1, 2, 3] and nice_ticks(23) == [0, 5, 10, 15, 20, 25]
    )


def test_the_equation_table_defines_full_marks_and_no_longer_says_pass_rate():
    summary = summarize_class(a_class(), HEADER)
    page = render_html(summary)
    assert "Pass rate" not in page and "share of graded submissions that got every point" in page
    for eq in summary["equations"]:
        assert 0 <= eq["full_marks"] <= 1


def test_tex_in_hints_is_shown_as_text_and_names_keep_their_underscores():
    assert math_text("keeps P_{i,j} elsewhere") == "keeps P<sub>i,j</sub> elsewhere"
    assert math_text("at j = y_i and 1_Nᵀ") == "at j = y<sub>i</sub> and 1<sub>N</sub>ᵀ"
    assert math_text("use `grad_b2` not grad_b2 or x^T") == "use <code>grad_b2</code> not grad_b2 or x<sup>T</sup>"
    assert math_text(r"$\sum_i$ <b>") == "∑<sub>i</sub> &lt;b&gt;"
    page = render_html(summarize_class(a_class(), HEADER))
    assert "_{" not in page


def test_every_submission_has_a_row_and_import_failures_need_a_look():
    rows = a_class()
    summary = summarize_class(rows, HEADER)
    page = render_html(summary)
    assert {item["id"] for item in summary["needs_review"]} >= {"zed", "zoe"}
    assert {tuple(item["reasons"]) for item in summary["needs_review"] if item["id"] in ("zed", "zoe")} == {
        (IMPORT_FAILED,)
    }
    for order in ("id", "total", "status"):
        table = page[page.index(f'id="by-{order}"') :]
        table = table[: table.index("</table>")]
        assert table.count("<tr>") == len(rows) + 1 and table.count('href="reports/') == len(rows)
        for row in rows:  # each row links the student's page, and the report beside it
            assert f'<a href="pages/{row.id}.html">page</a> · <a href="reports/{row.id}.json">JSON</a>' in table
    by_total = page[page.index('id="by-total"') :]
    first = re.search(r"<tr><td>(\w+)", by_total[by_total.index("<tbody>") :]).group(1)
    assert max(rows, key=lambda r: (r.total, [-ord(c) for c in r.id])).id == first


def fits(page, tmp_path, width: int) -> int:
    """Nothing on ``page`` is wider than a ``width`` px window (no sideways scroll of the page, and no
    table of the page's scrolls inside its box), and a screenshot is taken for a person to look at
    (in the test's tmp_path: run with --basetemp to keep it).

    Headless Chromium's window is at least 500 px wide, so the page is shown in a frame of the
    width under test; the frame's page measures it (file pages share an origin with the flag below).
    """
    frame = tmp_path / "frame.html"
    measure = (
        "var d = this.contentDocument.documentElement; var boxes = this.contentDocument.querySelectorAll('.scroll'); "
        "var over = 0; boxes.forEach(function (b) { over = Math.max(over, b.scrollWidth - b.clientWidth); }); "
        "document.body.dataset.fit = d.scrollWidth + ',' + d.clientWidth + ',' + over"
    )
    frame.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe src="{page.name}" width="{width}" height="3200" '
        f'style="border:0;display:block" onload="{measure}"></iframe></body></html>'
    )
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--allow-file-access-from-files",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tempfile.mkdtemp(dir=tmp_path)}",
        f"--window-size={max(width, 500)},3200",
    ]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", frame.as_uri()], capture_output=True, text=True, timeout=120)
    scroll, inner, over = map(int, re.search(r'data-fit="(\d+),(\d+),(\d+)"', dom.stdout).groups())
    assert inner == width and scroll <= width, f"the page is {scroll} px wide in a {width} px window"
    shot = tmp_path / f"{page.stem}-{width}.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", frame.as_uri()], capture_output=True, timeout=120)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    return over


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
@pytest.mark.parametrize("width", [390, 1280])
def test_the_summary_page_fits_a_phone_and_a_laptop(tmp_path, width):
    page = tmp_path / "summary.html"
    page.write_text(render_html(summarize_class(a_class(), HEADER)))
    fits(page, tmp_path, width)  # its wide tables may scroll inside their own boxes


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
@pytest.mark.parametrize("width", [390, 1280])
def test_a_students_page_fits_a_phone_and_a_laptop_without_scrolling_its_table(tmp_path, width):
    report, _ = grade(REPO / "examples" / "quiz4_submission.py", load_rubric(REPO / "rubrics" / "quiz4.yaml"))
    page = tmp_path / "student.html"
    page.write_text(render_page(report), encoding="utf-8")
    assert fits(page, tmp_path, width) == 0, "the scores table is wider than the phone"
