"""The engine is generic: a second assignment is graded by the same code, and reports are deterministic."""

from __future__ import annotations

import json

from conftest import FIXTURES, REPO, grade, statuses
from grader.assignment.rubric import load_rubric

SIGMOID = FIXTURES / "sigmoid"


def test_nothing_in_the_engine_names_quiz_4():
    names = ["grad_X", "grad_S", "grad_W2", "grad_b2", "grad_H", "grad_Z", "grad_W1", "grad_b1", "quiz4"]
    for path in (REPO / "grader").rglob("*.py"):
        text = path.read_text()
        assert not [n for n in names if n in text], path


def test_a_second_assignment_is_graded_by_the_same_code():
    rubric = load_rubric(SIGMOID / "rubric.yaml")
    _, right = grade(SIGMOID / "submissions" / "correct.py", rubric)
    assert right["score"] == right["max_score"] == 5
    _, wrong = grade(SIGMOID / "submissions" / "buggy.py", rubric)
    assert statuses(wrong) == {"loss": "passed", "sigmoid": "failed", "weights": "passed", "bias": "failed"}
    _, template = grade(SIGMOID / "template.py", rubric)
    assert set(statuses(template).values()) == {"not_implemented"}


def test_the_same_submission_rubric_and_seed_give_the_same_report_but_for_timings(quiz4):
    documents = []
    for _ in range(2):
        _, document = grade(REPO / "examples" / "quiz4_submission.py", quiz4)
        document.pop("timings")
        documents.append(json.dumps(document, sort_keys=True))
    assert documents[0] == documents[1]


def test_hidden_cases_carry_no_inputs_or_expected_values_in_the_report(quiz4):
    _, document = grade(REPO / "examples" / "quiz4_submission.py", quiz4)
    for eq in document["equations"]:
        for case in eq["cases"]:
            outputs = case.get("outputs", {}).values()  # the end-to-end check: each output has its own values
            if not case["visible"]:
                assert not {"inputs", "expected", "got", "dims", "diff"} & set(case)
                assert not any({"expected", "got"} & set(output) for output in outputs)
            elif outputs:
                assert "inputs" in case and all({"expected", "got"} <= set(output) for output in outputs)
            else:
                assert {"inputs", "expected", "got"} <= set(case)


def test_a_hidden_case_never_quotes_a_shape_the_submission_made_up(tmp_path, quiz4):
    text = (REPO / "solutions" / "quiz4.py").read_text()
    text += "\n\ndef grad_b1(dZ):\n    return np.zeros((0, int(abs(dZ[0, 0]) * 1e6) + 7))\n"
    path = tmp_path / "quiz4.py"
    path.write_text(text)
    _, document = grade(path, quiz4)
    eq15 = next(eq for eq in document["equations"] if eq["id"] == "eq15")
    hidden = [c for c in eq15["cases"] if not c["visible"]]
    assert all(c["status"] == "wrong_shape" and c["got_shape"] is None for c in hidden)
    assert all("another shape" in c["message"] for c in hidden)
