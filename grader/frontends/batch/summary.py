"""The class summary: the numbers an instructor wants after a batch, as JSON (``summary_page`` draws them).

Computed from gradebook rows only, so it is deterministic (no clock, no paths of the
machine that ran the batch): a resumed batch and merged shards produce the same files
as one uninterrupted run.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Mapping, Sequence

from grader.frontends.batch.gradebook import REVIEW_FLAGS, Row, SubmissionStatus

SUMMARY_VERSION = 2  # 2: full-marks bin, full_marks share per equation, a row per submission
TOP_MISTAKES = 3
MISTAKE_PREFIX = "Likely mistake: "


def histogram(scores: Sequence[float], max_score: float) -> list[dict]:
    """Counts of total scores: bins of 1 point (10 equal bins when the maximum is over 20), half-open
    [low, high), then a bin of its own for full marks, so a perfect score is never merged with a near one."""
    width = 1.0 if max_score <= 20 else max_score / 10
    bins = max(1, math.ceil(max_score / width)) if max_score > 0 else 1
    counts = [0] * bins
    full = 0
    for score in scores:
        if score >= max_score:
            full += 1
        else:
            counts[min(bins - 1, max(0, int(score // width)))] += 1
    return [
        {"low": round(i * width, 4), "high": round(min((i + 1) * width, max_score), 4), "count": count}
        for i, count in enumerate(counts)
    ] + [{"low": max_score, "high": max_score, "count": full, "full_marks": True}]


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
    """Per equation: mean score, the share with full marks, statuses and the most frequent named mistakes."""
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
                # the share of graded submissions that got every point of this equation (a check: that passed it)
                "full_marks": round(
                    sum(c.score >= c.points if c.counted else c.status == "passed" for c in cells) / len(cells), 4
                ),
                "statuses": dict(sorted(Counter(c.status for c in cells).items())),
                **({} if first.counted else {"counted": False}),
                "mistakes": [
                    {"id": mid, "count": count, "share": round(count / len(cells), 4), "hint": hints[mid]}
                    for mid, count in sorted(mistakes.items(), key=lambda item: (-item[1], item[0]))[:TOP_MISTAKES]
                ],
            }
        )
    return result


IMPORT_FAILED = "the file could not be imported, so every equation scored 0"


def needs_a_look(row: Row) -> bool:
    """Flagged, ungradable, a grader error, or a zero because the file never imported."""
    return row.status != SubmissionStatus.GRADED or row.import_failed


def review_reasons(row: Row) -> list[str]:
    """Why a row needs a person, in words: one line per reason, naming its equations."""
    if row.status in (SubmissionStatus.UNGRADABLE, SubmissionStatus.GRADER_ERROR):
        return [row.note or row.status.value]
    if row.import_failed:
        return [IMPORT_FAILED]
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
            if needs_a_look(row)
        ],
        "submissions_table": [
            {
                "id": row.id,
                "name": row.name,
                "status": row.status.value,
                "total": row.total,
                "flags": list(row.flags),
                "import_failed": row.import_failed,
                "report": row.report,
            }
            for row in rows
        ],
        "isolation_notes": [{"note": note, "submissions": n} for note, n in sorted(isolation.items())],
    }
