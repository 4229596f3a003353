"""Feedback names the mistake: every catalogued mistake is recognised on its own, and nothing else is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from conftest import FIXTURES, REPO, grade
from grader.assignment.rubric import load_rubric

RUBRIC = load_rubric(REPO / "rubrics" / "quiz4.yaml")
CATALOG = [(eq, mistake) for eq in RUBRIC.equations for mistake in eq.mistakes]
REFERENCE = (REPO / "solutions" / "quiz4.py").read_text()
MISTAKES = (REPO / "solutions" / "quiz4_mistakes.py").read_text()
EXPECTED = yaml.safe_load((FIXTURES / "quiz4" / "expected.yaml").read_text())


def making_only(tmp_path: Path, function: str, mistake_function: str) -> Path:
    """A submission that is the reference except that `function` makes one catalogued mistake."""
    path = tmp_path / "quiz4.py"
    path.write_text(f"{REFERENCE}\n\n{MISTAKES}\n\n{function} = {mistake_function}\n")
    return path


def test_the_catalog_covers_every_equation():
    # the end-to-end check has no catalog: its failures are explained by its pieces
    assert {eq.id for eq, _ in CATALOG} == {eq.id for eq in RUBRIC.equations if not eq.outputs}
    assert len(CATALOG) >= 30


@pytest.mark.slow
@pytest.mark.parametrize("eq, mistake", CATALOG, ids=[f"{eq.id}-{m.id}" for eq, m in CATALOG])
def test_a_submission_making_one_catalogued_mistake_is_told_that_mistake(tmp_path, quiz4, eq, mistake):
    _, document = grade(making_only(tmp_path, eq.function, mistake.function), quiz4)
    for item in document["equations"]:
        if item["id"] == eq.id:
            assert item["status"] != "passed"
            assert item["diagnosis"]["mistake_id"] == mistake.id, item["feedback"]
            assert mistake.hint in item["feedback"]
        elif item.get("counted", True) is False:  # the end-to-end check: when the mistake breaks it, it says where
            if item["status"] != "passed":
                assert f"{eq.function} does not pass on its own ({eq.id}): fix it first" in item["feedback"]
        else:
            assert item["status"] == "passed" and item["diagnosis"] is None, item


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(n for n in EXPECTED if n.startswith("correct/")))
def test_a_correct_submission_never_gets_a_mistake_hint(name, quiz4):
    _, document = grade(FIXTURES / "quiz4" / name, quiz4)
    # a check (0 points) may say that right pieces don't compose (correct/lists.py), never name a mistake
    counted = [eq for eq in document["equations"] if eq.get("counted", True)]
    assert all(eq["diagnosis"] is None for eq in counted)
    assert not any("Likely mistake" in eq["feedback"] or "Lead:" in eq["feedback"] for eq in counted)
    assert all((eq["diagnosis"] or {}).get("kind") != "mistake" for eq in document["equations"])


def wrong_hints(name: str, entry: dict, eq: dict, pieces: str = "") -> list[str]:
    """Hints whose condition does not hold for this fixture: what expected.yaml says it must never get,
    a constant factor of 1 (that is rounding), and a transpose for a mistake that is not about one.

    ``pieces``: for the end-to-end check, its pieces' own feedback, whose verdicts it repeats."""
    feedback = eq["feedback"]
    found = [words for words in entry.get("never", {}).get(eq["id"], []) if words in feedback]
    if re.search(r"constant factor of 1(\.0*)?:", feedback):
        found.append("a constant factor of 1")
    if re.search(r"constant factor of -?0(\.0*)?:", feedback):
        found.append("a constant factor of 0")
    about_transposes = entry.get("mistake", {}).get(eq["id"]) == "transpose" or "transpose" in entry.get(
        "says", {}
    ).get(eq["id"], "")
    about_transposes = about_transposes or "transpose" in pieces
    if "transpose" in feedback and not about_transposes:
        if "Likely mistake" not in feedback:  # a catalogued hint may mention transposes in its own words
            found.append("a transpose")
    return [f"{name}:{eq['id']}: {words}" for words in found]


def specific(eq: dict) -> bool:
    """Does the feedback say more than 'wrong values'? A named mistake, a lead, or a precise fault."""
    if eq["diagnosis"] is not None:
        return eq["diagnosis"]["kind"] == "mistake" or "without a simple pattern" not in eq["diagnosis"]["text"]
    precise = {
        "bad_return",
        "not_finite",
        "wrong_shape",
        "shape_credit",
        "error",
        "crashed",
        "timeout",
        "skipped",  # "not run: an earlier case of grad_H timed out" names the fault, as a timeout does
        "nondeterministic",
    }
    return eq["status"] in ("missing", "not_implemented") or bool(precise & {c["status"] for c in eq["cases"]})


@pytest.mark.slow
def test_every_wrong_answer_in_the_buggy_fixtures_gets_a_named_mistake_or_a_specific_lead(quiz4, quiz4_fast, capsys):
    wrong, specific_count, named = 0, 0, 0
    vague, misleading = [], []
    for name, entry in sorted(EXPECTED.items()):
        if not name.startswith("buggy/"):
            continue
        rubric = quiz4_fast if "timeout" in (entry or {}).values() else quiz4
        _, document = grade(FIXTURES / "quiz4" / name, rubric)
        for eq in document["equations"]:
            if eq["status"] == "passed":
                continue
            wrong += 1
            chained = any("outputs" in case for case in eq["cases"])
            pieces = " ".join(e["feedback"] for e in document["equations"] if e is not eq) if chained else ""
            misleading += wrong_hints(name, entry or {}, eq, pieces)
            named += bool(eq["diagnosis"] and eq["diagnosis"]["kind"] == "mistake")
            if specific(eq):
                specific_count += 1
            else:
                vague.append(f"{name}:{eq['id']}")
    with capsys.disabled():
        print(
            f"\n[diagnosis] {wrong} wrong equations in buggy fixtures: {named} named mistakes, "
            f"{specific_count} named or specific ({specific_count / wrong:.0%}), {len(misleading)} wrong hints; "
            f"vague: {vague}; wrong hints: {misleading}"
        )
    assert specific_count / wrong >= 0.9
    assert not vague
    assert not misleading


def test_an_answer_left_zero_is_called_that_not_a_constant_factor_of_0(tmp_path, quiz4):
    source = (REPO / "solutions" / "quiz4.py").read_text()
    source = source.replace(
        "def grad_W2(H, dS):", "def grad_W2(H, dS):\n    return np.zeros((H.shape[1], dS.shape[1]))"
    )
    path = tmp_path / "quiz4.py"
    path.write_text(source)
    _, document = grade(path, quiz4)
    (eq10,) = [eq for eq in document["equations"] if eq["id"] == "eq10"]
    assert eq10["status"] == "failed"
    assert "zero everywhere the right one is not" in eq10["feedback"]
    assert "constant factor" not in eq10["feedback"]
