"""Edge cases that once gave a wrong grade, a wrong hint or a traceback."""

from __future__ import annotations

import json

import pytest
import yaml

from conftest import REPO, grade, statuses, write_rubric_copy
from grader.assignment.rubric import load_rubric
from grader.frontends.cli import main
from grader.grading.report import write_report

CORRECT = (REPO / "solutions" / "quiz4.py").read_text()


def submission(tmp_path, text):
    path = tmp_path / "quiz4.py"
    path.write_text(text)
    return path


def replacing(function: str, body: str) -> str:
    """The reference plus a later definition of `function` that wins."""
    return f"{CORRECT}\n\n{body}\n"


def test_float32_arithmetic_gets_the_same_full_marks_whatever_the_seed(tmp_path, quiz4):
    path = submission(
        tmp_path,
        replacing("grad_X", "def grad_X(dY, W):\n    return (dY.astype(np.float32) @ W.T.astype(np.float32))"),
    )
    for seed in range(1, 6):
        _, document = grade(path, quiz4, seed=seed)
        assert document["score"] == document["max_score"], seed


def test_right_values_in_a_squeezed_shape_get_no_invented_mistake(tmp_path, quiz4):
    body = "\n\n".join(
        f"_{name} = {name}\n\ndef {name}(*args):\n    return np.squeeze(_{name}(*args))"
        for name in ("grad_X", "grad_S", "grad_Z")
    )
    _, document = grade(submission(tmp_path, f"{CORRECT}\n\n{body}\n"), quiz4)
    for eq in document["equations"]:
        if eq.get("counted", True):  # the end-to-end check rightly says squeezed pieces don't compose
            assert eq["diagnosis"] is None, eq["feedback"]


def test_a_non_finite_answer_in_the_wrong_shape_still_writes_strict_json(tmp_path, quiz4):
    path = submission(tmp_path, replacing("grad_X", "def grad_X(dY, W):\n    return np.full((1,), np.nan)"))
    report, _ = grade(path, quiz4)
    out = tmp_path / "r.json"
    write_report(report, out)
    json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in the report"))


def test_a_mutation_penalty_makes_a_passing_equation_partial(tmp_path):
    rubric = load_rubric(write_rubric_copy(tmp_path, mutation_penalty=0.5))
    _, document = grade(REPO / "tests" / "fixtures" / "quiz4" / "buggy" / "eq13_mutation.py", rubric)
    eq13 = next(eq for eq in document["equations"] if eq["id"] == "eq13")
    assert (eq13["status"], eq13["score"]) == ("partial", 1.0)


def test_a_dataclass_with_string_annotations_imports_like_any_module(tmp_path, quiz4):
    text = "from __future__ import annotations\nfrom dataclasses import dataclass\n\n\n@dataclass\nclass Config:\n    x: int = 1\n\n\n"
    _, document = grade(submission(tmp_path, text + CORRECT), quiz4)
    assert document["score"] == document["max_score"]


@pytest.mark.parametrize(
    "index, key, value",
    [(0, "upstream", "X"), (1, "wrt", "y")],
    ids=["upstream-of-another-shape", "wrt-labels"],
)
def test_a_rubric_that_breaks_case_generation_is_one_line_and_exit_2(tmp_path, capsys, index, key, value):
    rubric = write_rubric_copy(tmp_path)
    document = yaml.safe_load(rubric.read_text())
    document["equations"][index]["finite_difference"][key] = value
    if key == "wrt":
        document["equations"][index]["finite_difference"]["args"] = ["S", "y"]
    rubric.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    assert main([str(REPO / "solutions" / "quiz4.py"), "--rubric", str(rubric), "-o", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot build a case" in err


def test_validate_flags_a_seed_small_enough_to_search(tmp_path, capsys):
    rubric = write_rubric_copy(tmp_path)
    text = rubric.read_text()
    rubric.write_text(text.replace(f"seed: {load_rubric(REPO / 'rubrics' / 'quiz4.yaml').seed}", "seed: 4004"))
    assert main(["validate", str(rubric), "--cases", "3"]) == 1
    assert "seed: 4004 is small enough" in capsys.readouterr().out


def test_a_file_name_that_is_not_utf8_is_graded_and_reported(tmp_path, quiz4):
    import os

    path = os.path.join(os.fsencode(tmp_path), b"caf\xe9.py")
    with open(path, "wb") as handle:
        handle.write(CORRECT.encode())
    report, document = grade(os.fsdecode(path), quiz4)
    out = tmp_path / "r.json"
    write_report(report, out)
    assert "\ufffd" in json.loads(out.read_text())["submission"]["path"]
    assert statuses(document) and document["score"] == document["max_score"]
