"""Every fixture submission gets exactly the per-equation outcome recorded in expected.yaml."""

from __future__ import annotations

import pytest
import yaml

from conftest import FIXTURES, grade

CORPUS = FIXTURES / "quiz4"
EXPECTED = yaml.safe_load((CORPUS / "expected.yaml").read_text())
STATUS_WORDS = {"passed", "partial", "failed", "error", "timeout", "missing", "not_implemented", "shape_credit"}


def expected_status(entry: dict, eq_id: str) -> set[str]:
    wanted = entry.get(eq_id, "passed")
    allowed = {wanted} | ({entry["may_be"][eq_id]} if eq_id in entry.get("may_be", {}) else set())
    return {"partial" if s == "shape_credit" else s for s in allowed}


def test_the_corpus_has_enough_correct_and_buggy_submissions():
    names = list(EXPECTED)
    assert sum(n.startswith("correct/") for n in names) >= 10
    assert sum(n.startswith("buggy/") for n in names) >= 25
    assert sorted(p.relative_to(CORPUS).as_posix() for p in CORPUS.rglob("*.py")) == sorted(names)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_gets_its_expected_outcome(name, quiz4, quiz4_fast):
    catalog = {eq.id: {m.id for m in eq.mistakes} for eq in quiz4.equations}
    entry = EXPECTED[name] or {}
    rubric = quiz4_fast if "timeout" in entry.values() else quiz4
    report, document = grade(CORPUS / name, rubric)
    by_id = {eq["id"]: eq for eq in document["equations"]}
    for eq_id, eq in by_id.items():
        assert eq["status"] in expected_status(entry, eq_id), f"{eq_id}: {eq['feedback']}"
        if eq["status"] == "passed":
            assert eq["score"] == eq["max_score"]
        else:
            assert eq["score"] < eq["max_score"]
            assert eq["feedback"], "a lost point always comes with feedback"
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
        assert all(eq["diagnosis"] is None for eq in by_id.values()), "a correct answer never gets a hint"
