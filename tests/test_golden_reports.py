"""A batch of the quiz-4 fixture corpus gives, fixture by fixture, the golden reports committed beside it.

Speed work (issue 15) must not change a report beyond its timings: this grades the
whole corpus with ``grade batch -j 2`` and compares each report, normalised as
``golden_reports.py`` says (timings, the grader's code hash and versions, the memory
mechanism and the machine's folders left out), with ``tests/fixtures/golden/quiz4/``.
When a change of behaviour an issue asks for changes reports, regenerate with
``python tests/golden_reports.py`` and name the issue in the commit.
"""

from __future__ import annotations

import difflib
import json

import pytest

from golden_reports import GOLDEN, MADE_WITH, fixture_names, golden_path, grade_corpus, made_with, read_golden, render

REGENERATE = "python tests/golden_reports.py (only for a change of behaviour an issue asks for)"


@pytest.fixture(scope="module")
def batch_reports(tmp_path_factory):
    return grade_corpus(tmp_path_factory.mktemp("golden"))


def test_every_fixture_has_a_golden_report_and_every_golden_report_a_fixture():
    golden = sorted(p.name for p in GOLDEN.glob("*.json") if p.name != MADE_WITH)
    assert golden == sorted(golden_path(name).name for name in fixture_names()), f"regenerate: {REGENERATE}"


@pytest.mark.slow
@pytest.mark.root
def test_a_batch_of_the_corpus_gives_the_golden_reports(batch_reports):
    recorded = json.loads((GOLDEN / MADE_WITH).read_text())
    changed = {}
    for name in fixture_names():
        want, got = read_golden(name), batch_reports[name]
        if want != got:
            diff = difflib.unified_diff(
                render(want).splitlines(), render(got).splitlines(), "golden", "this batch", n=0, lineterm=""
            )
            changed[name] = "\n".join(list(diff)[:12])
    numpy_note = ""
    if recorded["numpy"] != made_with()["numpy"]:
        numpy_note = f" (the golden set was made with numpy {recorded['numpy']}; floats may differ in the last digits)"
    detail = "\n\n".join(f"{name}:\n{text}" for name, text in list(changed.items())[:5])
    assert not changed, (
        f"{len(changed)} report(s) changed{numpy_note}; if an issue asked for it: {REGENERATE}\n{detail}"
    )


def test_normalising_leaves_out_only_what_depends_on_the_machine(tmp_path):
    from golden_reports import REPO, normalise

    document = json.loads(render(read_golden("correct/matmul.py")).replace("<class>", str(tmp_path)))
    other = json.loads(json.dumps(document))
    other["timings"] = {"total_seconds": 9.9}
    other["grader"].update(code_sha256="0" * 64, python="3.99", numpy="9.9")
    other["sandbox"]["memory_bound"] = {"mechanism": "per process", "total_mb": None, "processes": None, "reason": "x"}
    assert normalise(other, tmp_path) == normalise(document, tmp_path)
    assert normalise(document, tmp_path)["submission"]["path"] == "<class>/correct--matmul.py"
    assert str(REPO) not in json.dumps(normalise(document, tmp_path))
    for change in ({"score": 10.0}, {"notice": "x"}):
        assert normalise({**document, **change}, tmp_path) != normalise(document, tmp_path)
    other["equations"][0]["cases"][1]["status"] = "wrong_values"
    assert normalise(other, tmp_path) != normalise(document, tmp_path)
