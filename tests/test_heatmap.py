"""Where an answer is wrong, as a picture: a block grid and an SVG for visible cases, nothing for hidden ones."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import FIXTURES, grade
from grader.frontends.cli import main
from grader.frontends.page import render_page
from grader.frontends.terminal import render_report
from grader.grading import heatmap

SVG = "{http://www.w3.org/2000/svg}"


def picture(got, expected):
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    return heatmap.build(got, expected, ~np.isclose(got, expected))


def test_a_wrong_last_column_gives_a_grid_whose_last_column_is_marked_and_nothing_else():
    expected = np.arange(12.0).reshape(3, 4)
    got = expected.copy()
    got[:, -1] += [1.0, -2.0, 4.0]
    lines = heatmap.grid(picture(got, expected))
    assert len(lines) == 3 and all(len(line) == 4 for line in lines)
    assert all(line[:3] == "···" and line[3] in heatmap.SHADES for line in lines)
    assert lines[2][3] == "█", "the largest error gets the darkest block"


def test_everything_below_the_diagonal_wrong_shows_as_a_lower_triangle():
    expected = np.ones((5, 5))
    got = expected + np.tril(np.ones((5, 5)), k=-1)
    lines = heatmap.grid(picture(got, expected))
    assert [[ch != heatmap.RIGHT for ch in line] for line in lines] == (np.tril(np.ones((5, 5)), k=-1) > 0).tolist()


def test_the_svg_is_self_contained_and_outlines_exactly_the_wrong_entries():
    expected = np.zeros((4, 6))
    got = expected.copy()
    got[1, 2], got[3, 5] = 0.5, -3.0
    text = heatmap.svg(picture(got, expected), "visible case 0")
    root = ET.fromstring(text)
    cells = [r for r in root.iter(f"{SVG}rect")][1:]
    assert len(cells) == 24
    assert sum(r.get("class") == "wrong" for r in cells) == 2
    assert "2 of 24 entries wrong" in root.find(f"{SVG}title").text
    for forbidden in ("<script", "href", "http://www.w3.org/1999/xlink", "url(", "@import"):
        assert forbidden not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_a_large_answer_is_downsampled_and_a_single_wrong_entry_still_shows():
    expected = np.zeros((100, 130))
    got = expected.copy()
    got[99, 0] = 1.0
    cells, marks = heatmap.downsample(picture(got, expected), heatmap.MAX_CELLS)
    assert cells.shape == (64, 64) and marks.sum() == 1 and marks[-1, 0]
    assert len(heatmap.grid(picture(got, expected))) == heatmap.MAX_GRID
    assert ET.fromstring(heatmap.svg(picture(got, expected))) is not None


def test_vectors_scalars_and_nan_get_a_picture_and_mismatched_shapes_none():
    assert heatmap.grid(picture([1.0, 2.0, 3.0], [1.0, 0.0, 3.0])) == ["·█·"]
    assert heatmap.grid(picture(2.0, 1.0)) == ["█"]
    with np.errstate(invalid="ignore"):
        nan = heatmap.build(np.array([np.nan, 1.0]), np.array([0.0, 1.0]), np.array([True, False]))
    assert heatmap.grid(nan) == ["█·"] and "#000000" in heatmap.svg(nan)
    assert heatmap.build(np.zeros((2, 3)), np.zeros((3, 2)), np.zeros((3, 2), dtype=bool)) is None


@pytest.mark.slow
def test_the_page_shows_a_heatmap_for_a_wrong_visible_case_and_none_for_hidden_ones(quiz4, tmp_path):
    # eq1 is wrong on every case (the visible one too); the square shortcut is wrong only on a hidden case
    report, _ = grade(FIXTURES / "quiz4" / "buggy" / "eq1_sign.py", quiz4)
    page = render_page(report)
    eq1 = page.split('<section id="eq1">')[1].split("</section>")[0]
    assert eq1.count("<svg") == 1 and "visible case 0" in eq1
    assert "<svg" not in page.split('<section id="eq9">')[1], "every other equation passed: no pictures"
    hidden_only, _ = grade(FIXTURES / "quiz4" / "buggy" / "eq1_square_shortcut.py", quiz4)
    wrong = [c for c in hidden_only.equations[0].cases if c.status.value != "passed"]
    assert wrong and not any(c.visible for c in wrong), "the shortcut is wrong only on the hidden square case"
    assert "<svg" not in render_page(hidden_only)
    assert "<script" not in page and 'name="viewport"' in page
    on_a_terminal = render_report(report, width=100, grids=True)
    assert "visible case 0: " in on_a_terminal and "entries wrong" in on_a_terminal
    assert any(set(line.strip()) <= set(heatmap.SHADES) for line in on_a_terminal.splitlines() if line.strip())
    assert "entries wrong" not in render_report(report, width=100, grids=False)
    assert "entries wrong" not in render_report(hidden_only, width=100, grids=True)


@pytest.mark.slow
def test_grade_html_writes_the_page_beside_the_report(tmp_path):
    page, report = tmp_path / "student.html", tmp_path / "r.json"
    submission = FIXTURES / "quiz4" / "buggy" / "eq12_scaled.py"
    assert main([str(submission), "-o", str(report), "--html", str(page), "--quiet"]) == 0
    text = page.read_text(encoding="utf-8")
    assert report.is_file() and text.startswith("<!DOCTYPE html>")
    assert text.split('<section id="eq12">')[1].split("</section>")[0].count('class="heatmap"') == 1
    assert main([str(submission), "-o", str(report), "--html", str(report / "under_a_file.html")]) == 2


@pytest.mark.slow
def test_a_students_page_shows_the_quizs_notation_as_text_not_raw_tex(quiz4):
    report, _ = grade(FIXTURES / "quiz4" / "buggy" / "eq13_mask_ge_zero.py", quiz4)
    (eq13,) = [r for r in report.equations if r.equation.id == "eq13"]
    assert "Z_{i,j}" in eq13.feedback, "the hint is written in TeX"
    section = render_page(report).split('<section id="eq13">')[1].split("</section>")[0]
    assert "Z<sub>i,j</sub>" in section and "_{" not in section
