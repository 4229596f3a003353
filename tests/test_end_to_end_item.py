"""Quiz 4's end-to-end check: the eight functions chained into the whole backward pass, graded as a check."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import yaml

from conftest import FIXTURES, QUIZ4_RUBRIC, REPO, grade, write_rubric_copy
from grader.assignment.rubric import load_rubric
from grader.errors import ProtocolError, RubricError
from grader.frontends.batch.gradebook import render_gradebook, row_from_report
from grader.frontends.gradescope.results import results_from_report as gradescope_results
from grader.frontends.page import render_page
from grader.frontends.prairielearn.results import results_from_report as prairielearn_results
from grader.frontends.terminal import render_report
from grader.sandbox import messages
from grader.untrusted import child

CORPUS = FIXTURES / "quiz4"
OUTPUTS = ["dW1", "db1", "dW2", "db2", "dX"]


def backprop(document: dict) -> dict:
    return next(eq for eq in document["equations"] if eq["id"] == "backprop")


def output_statuses(eq: dict) -> dict[str, set[str]]:
    """Each output's statuses over the item's cases."""
    found: dict[str, set[str]] = {}
    for case in eq["cases"]:
        for name, verdict in case.get("outputs", {}).items():
            found.setdefault(name, set()).add(verdict["status"])
    return found


@pytest.fixture(scope="module")
def graded(quiz4):
    """(report, document) per fixture, each graded once."""
    cache: dict = {}

    def get(path):
        if path not in cache:
            cache[path] = grade(path, quiz4)
        return cache[path]

    return get


def test_the_rubric_chains_all_eight_functions_with_problem_1_as_dz_times_w1_transposed(quiz4):
    eq = next(eq for eq in quiz4.equations if eq.id == "backprop")
    assert set(eq.functions) == {e.function for e in quiz4.equations if not e.outputs}
    assert (eq.function, eq.args, eq.bind) == ("grad_X", ("dZ", "W1"), "dX")
    assert list(eq.outputs) == OUTPUTS
    assert eq.finite_difference.forward == "two_layer_loss"
    assert eq.finite_difference.wrt == ("W1", "b1", "W2", "b2", "X")
    assert eq.points == 0 and not eq.counted


def test_the_reference_passes_the_check_on_every_output(graded):
    report, document = graded(REPO / "solutions" / "quiz4.py")
    eq = backprop(document)
    assert eq["status"] == "passed" and eq["counted"] is False
    assert output_statuses(eq) == {name: {"passed"} for name in OUTPUTS}
    visible = [case for case in eq["cases"] if case["visible"]]
    assert visible and all(case["outputs"][name]["fd_max_abs_error"] < 1e-6 for case in visible for name in OUTPUTS)
    assert document["score"] == document["max_score"] == 11


@pytest.mark.parametrize("name", ["correct/matmul.py", "correct/loops.py", "correct/einsum.py"])
def test_a_file_with_every_piece_right_passes_the_chain(graded, name):
    _, document = graded(CORPUS / name)
    assert backprop(document)["status"] == "passed"


def test_breaking_one_piece_fails_the_chain_and_names_the_outputs_that_disagree(graded):
    _, document = graded(CORPUS / "buggy/eq13_mask_inverted.py")
    eq = backprop(document)
    assert eq["status"] == "failed"
    wrong = {name for name, found in output_statuses(eq).items() if found != {"passed"}}
    assert wrong == {"dW1", "db1", "dX"}  # the ReLU's mask is upstream of these only
    assert "dW1, db1 and dX disagree" in eq["feedback"]
    assert "grad_Z does not pass on its own (eq13): fix it first" in eq["feedback"]
    assert "convention mismatch" not in eq["feedback"]


def test_a_piece_that_raises_stops_the_chain_and_is_named(graded):
    _, document = graded(CORPUS / "buggy/eq10_transpose.py")
    eq = backprop(document)
    assert eq["status"] == "error"
    assert "the backward pass stopped at grad_W2: grad_W2 raised ValueError" in eq["feedback"]


def test_pieces_that_each_pass_but_share_a_buffer_are_named_a_convention_mismatch(graded):
    _, document = graded(CORPUS / "buggy/backprop_shared_buffer.py")
    others = [eq for eq in document["equations"] if eq["id"] != "backprop"]
    assert {eq["status"] for eq in others} == {"passed"}
    eq = backprop(document)
    assert eq["status"] == "failed"
    assert {name for name, found in output_statuses(eq).items() if found != {"passed"}} == {"db2"}
    assert "passed on its own, yet together they go wrong at db2: a convention mismatch" in eq["feedback"]


def test_functions_that_return_lists_but_take_arrays_are_a_convention_mismatch(graded):
    _, document = graded(CORPUS / "correct/lists.py")
    assert document["score"] == document["max_score"]  # the check costs no point
    eq = backprop(document)
    assert eq["status"] == "error"
    assert "'list' object has no attribute" in eq["feedback"]
    assert "a list returned where the next function takes an array" in eq["feedback"]


def test_a_failed_check_costs_no_point_and_every_front_end_shows_it_as_a_check(graded):
    report, document = graded(CORPUS / "buggy/backprop_shared_buffer.py")
    assert report.score == report.max_score == 11
    assert (backprop(document)["score"], backprop(document)["max_score"]) == (0, 0)

    table = render_report(report, width=100, grids=False)
    row = next(line for line in table.splitlines() if line.startswith("backprop"))
    assert row.split()[1:] == ["8", "chained", "check", "failed"]
    assert "Total: 11/11" in table and "0/0" not in table

    assert "check (not counted)" in render_page(report) and "0/0" not in render_page(report)

    gradescope = gradescope_results(report, "quiz4.py", 1.0)
    test = gradescope["tests"][-1]
    assert (test["status"], test["score"], test["max_score"]) == ("failed", 0.0, 0)
    assert "a check, not counted" in test["name"] and "a check, not counted in the score" in test["output"]
    assert "8 of 8 visible parts earned full marks" in gradescope["output"]

    prairielearn = prairielearn_results(report, "quiz4.py")
    test = prairielearn["tests"][-1]
    assert (test["points"], test["max_points"]) == (0.0, 0.0)
    assert test["message"] == "Failed: a check, not counted in the score."
    assert prairielearn["score"] == 1.0

    row = row_from_report(document, "reports/x.json")
    csv_row = render_gradebook([row], [cell.id for cell in row.equations]).splitlines()[1].split(",")
    header = render_gradebook([row], [cell.id for cell in row.equations]).splitlines()[0].split(",")
    assert csv_row[header.index("backprop")] == "failed"
    assert csv_row[header.index("total")] == "11"


def test_a_passed_check_is_a_passed_gradescope_test(graded):
    report, _ = graded(REPO / "solutions" / "quiz4.py")
    test = gradescope_results(report, "quiz4.py", 1.0)["tests"][-1]
    assert test["status"] == "passed"


def test_hidden_cases_say_nothing_the_submission_chose_about_any_output(graded):
    _, document = graded(CORPUS / "buggy/eq11_no_keepdims.py")
    eq = backprop(document)
    hidden = [case for case in eq["cases"] if not case["visible"]]
    assert hidden and all("returned shape (" not in case["message"] for case in hidden)
    for case in hidden:
        for verdict in case["outputs"].values():
            assert "expected" not in verdict and "got" not in verdict and verdict["got_shape"] is None
    visible = next(case for case in eq["cases"] if case["visible"])
    assert "db2: grad_b2 returned shape (" in visible["message"]
    assert visible["outputs"]["db2"]["got"] is not None


def test_the_child_sends_every_output_in_one_payload_with_each_shape():
    names = {"a": np.ones((2, 3)), "b": [1.0, 2.0]}
    reply, payload = child.several_outputs({"outputs": ["a", "b", "c"], "as": "c"}, names, 5.0, [])
    assert reply["parts"] == [[2, 3], [2], []] and reply["shape"] == [9]
    assert len(payload) == reply["len"]
    reply, _ = child.several_outputs({"outputs": ["a", "missing"]}, names, None, [])
    assert (reply["status"], reply["problem"], reply["output"]) == ("bad_return", "none", 1)


@pytest.mark.parametrize(
    "header",
    [
        {"parts": [[2, 3]], "shape": [6]},  # one shape for two outputs
        {"parts": [[2, 3], [4]], "shape": [11]},  # sizes that don't add up
        {"parts": [[2, -1], [4]], "shape": [2]},
        {"parts": "no", "shape": [6]},
    ],
)
def test_the_parent_refuses_output_shapes_that_do_not_fit_the_request(header):
    with pytest.raises(ProtocolError):
        messages.parse_parts(header, 2, "ok")


def test_a_reply_to_a_single_output_call_carries_no_parts():
    with pytest.raises(ProtocolError):
        messages.parse_parts({"parts": [[1]], "shape": [1]}, 0, "ok")
    assert messages.parse_parts({"parts": [[2], [1]], "shape": [3]}, 2, "ok") == ((2,), (1,))


def chain_rubric(tmp_path, change) -> str:
    path = write_rubric_copy(tmp_path)
    document = yaml.safe_load(path.read_text())
    change(next(item for item in document["equations"] if item["id"] == "backprop"))
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))
    return str(path)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda item: item["outputs"].append("dQ"), "'dQ' is neither a setup result nor the graded call's `as`"),
        (lambda item: item["finite_difference"].update(wrt=["W1", "b1"]), "one input per output (5 outputs)"),
        (lambda item: item["returns"].pop("db2"), "returns maps each of"),
        (lambda item: item.update(slots=["a", "b"], output="a"), "no slots or output"),
    ],
    ids=["unknown output", "wrt list too short", "a shape missing", "slots too"],
)
def test_a_chain_item_that_does_not_add_up_is_a_rubric_error(tmp_path, change, words):
    with pytest.raises(RubricError, match=r"equations\[8\]") as raised:
        load_rubric(chain_rubric(tmp_path, change))
    assert words in str(raised.value)


def test_the_report_of_a_check_validates_and_says_it_is_not_counted(graded):
    _, document = graded(CORPUS / "buggy/eq13_mask_inverted.py")
    assert json.loads(json.dumps(document)) == document
    assert all("counted" not in eq for eq in document["equations"] if eq["id"] != "backprop")
    assert QUIZ4_RUBRIC.is_file()


def test_stacked_differences_of_the_loss_equal_the_entry_by_entry_ones(quiz4):
    from grader.assignment.reference import load_reference
    from grader.grading.cases import build_cases
    from grader.grading.differences import finite_difference

    reference = load_reference(quiz4)
    eq = next(eq for eq in quiz4.equations if eq.outputs)
    assert eq.finite_difference.stacked
    for case in build_cases(quiz4, reference, 5, equations=[eq])["backprop"]:
        for fd in eq.output_differences():
            stacked, _ = finite_difference(reference.two_layer_loss, fd, case.inputs, quiz4.settings.fd_step)
            alone = dataclasses.replace(fd, stacked=False)
            each, _ = finite_difference(reference.two_layer_loss, alone, case.inputs, quiz4.settings.fd_step)
            assert np.allclose(stacked, each, rtol=0, atol=1e-7), fd.wrt
