"""PrairieLearn's results.json: a graded report, a submission that is not gradable, a fault of ours.

PrairieLearn's external-grading documentation ("Grading results") fixes the format, kept
as ``grader/schemas/prairielearn_results.schema.json``: ``score`` in [0, 1], ``message``
and ``output`` for the whole submission, ``tests[]`` with ``name``, ``description``,
``points``, ``max_points``, ``message`` and ``output``, and ``"gradable": false`` with
``format_errors`` when there was nothing to grade, which costs the student no attempt.
The ``<pl-external-grader-results>`` element shows all of it to the student as plain
text, so nothing here is Markdown, and no key is instructor-only: the grader's full
report (hidden inputs included) is not in the file; instructors read the job's output.

A fault of the grader is the shipped ``fallback_results.json`` beside this module, which
``run.sh`` copies when Python can't even start, so both say the same thing.

Hidden cases stay hidden: a hidden case contributes its verdict to a count, never its
inputs or values, and an equation whose rubric visibility is not ``visible`` is folded
into one test that shows only the points those parts earned together (the total score
shows that much anyway). Images: a test gets the heatmap of each visible case with
wrong values, an SVG data URL in its ``images``; hidden cases and parts not shown get
none. A result too large for the 1 MB limit loses its pictures first, then text.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path

import grader
from grader.assignment.rubric import Rubric
from grader.frontends.page import caption, case_heatmaps
from grader.grading import heatmap
from grader.grading.report import Report
from grader.grading.scoring import EquationResult
from grader.schemas import schema_error

# PrairieLearn's limit is 1 MB for the whole file; a margin keeps the JSON's own overhead inside it.
MAX_RESULTS_BYTES = 1_000_000
SIZE_MARGIN_BYTES = 16_000
TRUNCATION_NOTE = "\n[... cut here: the full text would not fit in PrairieLearn's 1 MB results limit]"
IMAGES_LEFT_OUT = (
    "\n[The pictures of where your answer is wrong are left out: they would not fit PrairieLearn's 1 MB limit.]"
)
SVG_DATA_URL = "data:image/svg+xml;base64,"
FALLBACK_FILE = Path(__file__).resolve().parent / "fallback_results.json"


def fallback_results() -> dict:
    """A fault of the grader itself: not gradable (the student keeps the attempt); the details go to the job log."""
    return json.loads(FALLBACK_FILE.read_text(encoding="utf-8"))


STAFF_MESSAGE: str = fallback_results()["message"]
NOT_SHOWN_NAME = "Parts whose results are not shown yet"


def points(value: float) -> str:
    return f"{value:g}"


def fraction(score: float, max_score: float) -> float:
    """The score PrairieLearn wants: a fraction in [0, 1], rounded so equal grades are equal bytes."""
    if max_score <= 0:
        return 0.0
    return round(min(1.0, max(0.0, score / max_score)), 6)


def equation_output(result: EquationResult, report: Report) -> str:
    """One test's output: the feedback, each visible case, and a count of the hidden ones."""
    eq = result.equation
    lines = [result.feedback]
    cases = {case.index: case for case in report.cases[eq.id]}
    hidden = [check for check in result.cases if not check.visible]
    for check in result.cases:
        if not check.visible:
            continue
        dims = ", ".join(f"{k}={v}" for k, v in cases[check.index].dims.items())
        verdict = check.status.value.replace("_", " ")
        message = f": {check.message}" if check.message and check.status.value != "passed" else ""
        lines += ["", f"Visible case {check.index} ({dims}): {verdict}{message}"]
        if check.diff:
            lines.append(f"  {'entry':<14} {'expected':>14} {'got':>14}")
            lines += [f"  {str(list(d['index'])):<14} {d['expected']:>14.6g} {d['got']:>14.6g}" for d in check.diff]
    if hidden:
        passed = sum(check.status.value == "passed" for check in hidden)
        lines += ["", f"Hidden cases: {passed} of {len(hidden)} passed (their inputs are not shown)."]
    return "\n".join(lines)


def equation_images(result: EquationResult, report: Report) -> list[dict]:
    """The heatmap of each visible case with wrong values, as an SVG data URL; hidden cases get none."""
    return [
        {
            "label": caption(label, picture),
            "url": SVG_DATA_URL + base64.b64encode(heatmap.svg(picture, label).encode("utf-8")).decode("ascii"),
        }
        for label, picture in case_heatmaps(report, result)
    ]


def equation_test(result: EquationResult, report: Report) -> dict:
    eq = result.equation
    verdict = result.status.value.replace("_", " ")
    test = {
        "name": eq.label,
        "description": f"The function {eq.function}() in your file.",
        "points": result.score,
        "max_points": eq.points,
        "message": f"{verdict.capitalize()}: {points(result.score)}/{points(eq.points)} points.",
        "output": equation_output(result, report),
    }
    if not eq.counted:  # a 0-point check: its verdict, never points lost
        test["name"] = f"{eq.label} (a check, not counted)"
        test["description"] = f"The functions {', '.join(f'{f}()' for f in eq.functions)} in your file, together."
        test["message"] = f"{verdict.capitalize()}: a check, not counted in the score."
    if images := equation_images(result, report):
        test["images"] = images
    return test


def not_shown_test(results: Sequence[EquationResult]) -> dict:
    """The parts the rubric does not show yet, as one test: their points together and nothing else."""
    return {
        "name": NOT_SHOWN_NAME,
        "description": f"{len(results)} part(s) whose feedback the course shows later.",
        "points": sum(r.score for r in results),
        "max_points": sum(r.equation.points for r in results),
        "message": "Graded; the course shows these parts' feedback later.",
        "output": "",
    }


def summary_output(report: Report, graded: str) -> str:
    """The top-level output: what was graded and what the file printed while visible cases ran."""
    lines = [f"Graded {graded} for {report.rubric.title}."]
    if report.notice:  # about the whole file (why it could not be imported): said once, not under every part
        lines += ["", report.notice]
    if report.output.strip():
        lines += ["", "Your file printed (while importing and on the visible cases):", "", report.output.rstrip()]
    return "\n".join(lines)


def grader_facts(rubric: Rubric, submission_sha256: str | None = None) -> dict:
    facts: dict = {"version": grader.__version__, "assignment": rubric.assignment, "rubric_sha256": rubric.sha256}
    if submission_sha256:
        facts["submission_sha256"] = submission_sha256
    return facts


def results_from_report(report: Report, graded: str) -> dict:
    """PrairieLearn's results for a graded submission: one test per shown equation."""
    shown = [r for r in report.equations if r.equation.visibility == "visible"]
    later = [r for r in report.equations if r.equation.visibility != "visible"]
    counted = [r for r in shown if r.equation.counted]  # a check has no marks to earn
    full = sum(r.score >= r.equation.points - 1e-9 for r in counted)
    message = (
        f"{points(report.score)}/{points(report.max_score)} points; "
        f"{full} of {len(counted)} shown parts earned full marks."
    )
    if full < len(counted):
        message += " Each part below says what went wrong."
    tests = [equation_test(r, report) for r in shown] + ([not_shown_test(later)] if later else [])
    return {
        "gradable": True,
        "score": fraction(report.score, report.max_score),
        "message": message,
        "output": summary_output(report, graded),
        "tests": tests,
        "grader": grader_facts(report.rubric, report.submission_sha256),
    }


def not_gradable_results(rubric: Rubric | None, problem: str) -> dict:
    """Nothing gradable was submitted: PrairieLearn marks it invalid and takes no attempt."""
    document = {
        "gradable": False,
        "format_errors": [problem],
        "message": f"Not graded: {problem} No attempt was used.",
        "output": "",
    }
    if rubric is not None:
        document["grader"] = grader_facts(rubric)
    return document


def encoded(document: dict) -> bytes:
    return (json.dumps(document, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")


def fit_size(document: dict, limit: int = MAX_RESULTS_BYTES - SIZE_MARGIN_BYTES) -> dict:
    """The document, with its longest texts cut (each with a note) until it encodes to at most ``limit`` bytes."""
    size = len(encoded(document))
    if size <= limit:
        return document
    document = json.loads(json.dumps(document))
    # Pictures go first, the largest first: the words say what is wrong without them.
    pictured = sorted(
        (test for test in document.get("tests", []) if test.get("images")),
        key=lambda test: -len(json.dumps(test["images"])),
    )
    for test in pictured:
        if len(encoded(document)) <= limit:
            return document
        del test["images"]
        test["output"] = test.get("output", "") + IMAGES_LEFT_OUT
    texts = [(document, "output"), (document, "message")]
    texts += [(test, key) for test in document.get("tests", []) for key in ("output", "message", "description")]
    # Cut the longest first, to half of the excess plus the note each round, so short texts survive.
    for _ in range(64):
        size = len(encoded(document))
        if size <= limit:
            return document
        owner, key = max(texts, key=lambda pair: len(pair[0].get(pair[1], "")))
        text = owner.get(key, "")
        if not text:
            break
        excess = size - limit
        keep = max(0, len(text) - max(len(text) // 2, excess + len(TRUNCATION_NOTE) * 2))
        owner[key] = text[:keep] + TRUNCATION_NOTE
    if len(encoded(document)) > limit:  # names alone over the limit: no rubric does this, but never write over it
        return {key: document[key] for key in ("gradable", "score", "format_errors", "message") if key in document}
    return document


def validate_results(document: dict) -> None:
    """Raise jsonschema.ValidationError unless the document is a results.json PrairieLearn accepts."""
    error = schema_error(document, "prairielearn_results.schema.json")
    if error is not None:
        raise error
    if len(encoded(document)) > MAX_RESULTS_BYTES:
        raise ValueError(f"results.json would be {len(encoded(document))} bytes, over PrairieLearn's 1 MB")
    for test in document.get("tests", []):
        if test["points"] > test["max_points"] + 1e-9:
            raise ValueError(f"test {test['name']!r}: {test['points']} points of {test['max_points']}")
