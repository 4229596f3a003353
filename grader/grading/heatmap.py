"""A picture of where an answer is wrong: got - expected as a small SVG, or a block-character grid.

For visible cases only (the caller's rule: ``for_check`` returns nothing for a hidden
case): a student should see at a glance "the last column is wrong" or "everything below
the diagonal". Pure functions of arrays; the SVG is self-contained (no script, no
external reference) and the grid is plain text for a terminal.

Layout: a 2-d answer as it is; a 1-d one as a row; a 0-d one as one cell. Beyond
``MAX_CELLS`` entries along an axis, blocks of entries share a cell, which is marked
wrong if any entry in it is, and coloured by its largest difference.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from grader.assignment.rubric import Settings
from grader.grading.case import Case
from grader.grading.checks import CaseStatus, CheckResult, wrong_entries

MAX_CELLS = 64  # per axis, in the SVG
MAX_GRID = 32  # per axis, in a terminal grid
SVG_SIDE = 320  # pixels the larger axis may take
RIGHT, SHADES = "·", "░▒▓█"  # a right entry; a wrong one, by the size of its difference


@dataclass(frozen=True)
class Heatmap:
    """got - expected and which entries are wrong, as 2-d arrays of equal shape (before any downsampling)."""

    difference: np.ndarray
    wrong: np.ndarray
    shape: tuple[int, ...]  # the answer's own shape, for the caption

    @property
    def wrong_count(self) -> int:
        return int(self.wrong.sum())


def as_matrix(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        return values
    if values.ndim < 2:
        return values.reshape(1, -1) if values.size else values.reshape(1, 0)
    return values.reshape(values.shape[0], -1)


def build(got: np.ndarray, expected: np.ndarray, wrong: np.ndarray) -> Heatmap | None:
    """A heatmap of got - expected, or None where there is no entrywise picture (shapes differ)."""
    got, expected = np.asarray(got, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape or np.asarray(wrong).shape != expected.shape or not expected.size:
        return None
    with np.errstate(invalid="ignore"):
        difference = got - expected
    return Heatmap(as_matrix(difference), as_matrix(np.asarray(wrong, dtype=bool)).astype(bool), expected.shape)


def for_check(case: Case, check: CheckResult, settings: Settings) -> Heatmap | None:
    """The heatmap a student may see for one case: visible cases with wrong values only."""
    if not case.visible or check.status != CaseStatus.WRONG_VALUES or check.value is None:
        return None
    wrong = wrong_entries(check.value, case.expected, settings.tolerance, case.scale)
    return build(check.value, case.expected, wrong)


def blocks(rows: int, cols: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Start indices of the row and column blocks that fit ``limit`` cells per axis."""
    return (
        np.linspace(0, rows, min(rows, limit) + 1).astype(int),
        np.linspace(0, cols, min(cols, limit) + 1).astype(int),
    )


def downsample(heatmap: Heatmap, limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(largest |difference| with its sign, any wrong) per cell, at most ``limit`` cells per axis."""
    diff = np.nan_to_num(heatmap.difference, nan=np.inf)
    rows, cols = diff.shape
    if rows <= limit and cols <= limit:
        return diff, heatmap.wrong
    row_edges, col_edges = blocks(rows, cols, limit)
    cells = np.zeros((len(row_edges) - 1, len(col_edges) - 1))
    marks = np.zeros(cells.shape, dtype=bool)
    for i, (r0, r1) in enumerate(zip(row_edges, row_edges[1:])):
        for j, (c0, c1) in enumerate(zip(col_edges, col_edges[1:])):
            block = diff[r0:r1, c0:c1]
            cells[i, j] = block.flat[np.argmax(np.abs(block))]
            marks[i, j] = heatmap.wrong[r0:r1, c0:c1].any()
    return cells, marks


def colour(value: float, largest: float) -> str:
    """White at 0, red for got > expected, blue for got < expected, by |value| / largest."""
    if not np.isfinite(value):
        return "#000000"
    t = 0.0 if largest <= 0 else min(1.0, abs(value) / largest)
    fade = round(255 - 200 * t)
    return f"#ff{fade:02x}{fade:02x}" if value > 0 else f"#{fade:02x}{fade:02x}ff"


def svg(heatmap: Heatmap, label: str = "") -> str:
    """A self-contained SVG: one square per entry coloured by got - expected, wrong ones outlined in black."""
    cells, marks = downsample(heatmap, MAX_CELLS)
    rows, cols = cells.shape
    size = max(4, min(28, SVG_SIDE // max(rows, cols)))
    finite = np.abs(cells[np.isfinite(cells)])
    largest = float(finite.max()) if finite.size else 0.0
    caption = (
        f"{heatmap.wrong_count} of {heatmap.difference.size} entries wrong"
        f" in the {'x'.join(map(str, heatmap.shape)) or 'scalar'} answer"
    )
    if label:
        caption = f"{label}: {caption}"
    width, height = cols * size + 2, rows * size + 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" aria-label="{html.escape(caption)}">',
        f"<title>{html.escape(caption)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f4f4f4"/>',
    ]
    stroke = max(1, size // 6)
    for i in range(rows):
        for j in range(cols):
            x, y = 1 + j * size, 1 + i * size
            parts.append(
                f'<rect x="{x}" y="{y}" width="{size}" height="{size}" fill="{colour(cells[i, j], largest)}"'
                + (
                    f' stroke="#000" stroke-width="{stroke}" class="wrong"/>'
                    if marks[i, j]
                    else ' stroke="#ddd" stroke-width="0.5"/>'
                )
            )
    parts.append("</svg>")
    return "".join(parts)


def grid(heatmap: Heatmap) -> list[str]:
    """Lines of block characters, one per entry: ``·`` right, ``░▒▓█`` wrong by the size of its difference."""
    cells, marks = downsample(heatmap, MAX_GRID)
    magnitude = np.abs(cells)
    finite = magnitude[marks & np.isfinite(magnitude)]
    largest = float(finite.max()) if finite.size else 0.0
    lines = []
    for i in range(cells.shape[0]):
        row = []
        for j in range(cells.shape[1]):
            if not marks[i, j]:
                row.append(RIGHT)
                continue
            m = magnitude[i, j]
            level = len(SHADES) - 1 if not np.isfinite(m) or largest <= 0 else int(np.ceil(m / largest * 4)) - 1
            row.append(SHADES[max(0, min(len(SHADES) - 1, level))])
        lines.append("".join(row))
    return lines
