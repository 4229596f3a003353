"""Every fixture submission gets exactly the per-item outcome recorded in its corpus's expected.yaml.

One corpus per assignment (tests/fixtures/quiz4, tests/fixtures/layers), each graded
with its own rubric; a corpus joins as soon as its expected.yaml exists.
"""

from __future__ import annotations

import pytest
import yaml

from conftest import FIXTURES, REPO, grade, write_rubric_copy
from grader.assignment.rubric import load_rubric

RUBRICS = {"quiz4": REPO / "rubrics" / "quiz4.yaml", "layers": REPO / "rubrics" / "layers.yaml"}
CORPORA = {name: FIXTURES / name for name in RUBRICS if (FIXTURES / name / "expected.yaml").is_file()}
EXPECTED = {name: yaml.safe_load((folder / "expected.yaml").read_text()) for name, folder in CORPORA.items()}
# The floor for each corpus: (correct, buggy) submissions.
MINIMUM = {"quiz4": (10, 25), "layers": (10, 30)}
STATUS_WORDS = {"passed", "partial", "failed", "error", "timeout", "missing", "not_implemented", "shape_credit"}


@pytest.fixture(scope="session")
def corpus_rubrics(tmp_path_factory):
    """Each corpus's rubric, and a copy with a 1-second call limit for submissions that hang."""
    rubrics = {}
    for name in CORPORA:
        fast = write_rubric_copy(
            tmp_path_factory.mktemp(f"rubric-{name}"), RUBRICS[name], time_limit=1.0, import_time_limit=5.0
        )
        rubrics[name] = (load_rubric(RUBRICS[name]), load_rubric(fast))
    return rubrics


def expected_status(entry: dict, eq_id: str) -> set[str]:
    wanted = entry.get(eq_id, "passed")
    allowed = {wanted} | ({entry["may_be"][eq_id]} if eq_id in entry.get("may_be", {}) else set())
    return {"partial" if s == "shape_credit" else s for s in allowed}


@pytest.mark.parametrize("corpus", sorted(CORPORA))
def test_the_corpus_has_enough_correct_and_buggy_submissions(corpus):
    names = list(EXPECTED[corpus])
    correct, buggy = MINIMUM[corpus]
    assert sum(n.startswith("correct/") for n in names) >= correct
    assert sum(n.startswith("buggy/") for n in names) >= buggy
    folder = CORPORA[corpus]
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.py")) == sorted(names)


@pytest.mark.slow
@pytest.mark.parametrize(
    "corpus, name", [(corpus, name) for corpus in sorted(CORPORA) for name in sorted(EXPECTED[corpus])]
)
def test_fixture_gets_its_expected_outcome(corpus, name, corpus_rubrics):
    regular, fast = corpus_rubrics[corpus]
    catalog = {eq.id: {m.id for m in eq.mistakes} for eq in regular.equations}
    entry = EXPECTED[corpus][name] or {}
    rubric = fast if "timeout" in entry.values() else regular
    report, document = grade(CORPORA[corpus] / name, rubric)
    by_id = {eq["id"]: eq for eq in document["equations"]}
    for eq_id, eq in by_id.items():
        assert eq["status"] in expected_status(entry, eq_id), f"{eq_id}: {eq['feedback']}"
        if eq["status"] == "passed":
            assert eq["score"] == eq["max_score"]
        elif eq.get("counted", True):
            assert eq["score"] < eq["max_score"]
            assert eq["feedback"], "a lost point always comes with feedback"
        else:  # a 0-point check (the end-to-end item) loses nothing, but still says what failed
            assert eq["score"] == eq["max_score"] == 0
            assert eq["feedback"]
        named = entry.get("mistake", {}).get(eq_id)
        if named in catalog[eq_id] and eq["status"] != "error":
            assert (eq["diagnosis"] or {}).get("mistake_id") == named, eq["feedback"]
        if named == "transpose" and eq["status"] == "error":
            assert "needs a transpose" in eq["feedback"]
        if entry.get(eq_id) == "shape_credit":
            assert {c["status"] for c in eq["cases"]} == {"shape_credit"}
            assert "shape convention" in eq["feedback"]
    for eq_id, words in entry.get("says", {}).items():
        assert words in by_id[eq_id]["feedback"], by_id[eq_id]["feedback"]
    for eq_id, wrong_hints in entry.get("never", {}).items():
        for words in wrong_hints:
            assert words not in by_id[eq_id]["feedback"], by_id[eq_id]["feedback"]
    if "notice" in entry:
        assert entry["notice"] in document["notice"]
    if "mutation" in entry.get("warnings", []):
        assert any("mutated_inputs" in eq["flags"] for eq in by_id.values())
    else:
        assert not any("mutated_inputs" in eq["flags"] for eq in by_id.values())
    if name.startswith("correct/"):
        assert document["score"] == document["max_score"]
        # (a check may still say the pieces don't compose: correct/lists.py returns lists but takes arrays)
        counted = [eq for eq in by_id.values() if eq.get("counted", True)]
        assert all(eq["diagnosis"] is None for eq in counted), "a correct answer never gets a hint"
