"""The copies of feedback's words that the untrusted side must keep say exactly what feedback says.

The child can't import the grader, so it sends codes (``protocol.BAD_RETURN_PROBLEMS``)
and facts; the student's self-check can't either, and words its visible-case verdicts
itself, promising the autograder's words. Each copy is checked here against
``grader/grading/feedback.py`` on the same values.
"""

from __future__ import annotations

import numpy as np
import pytest

from grader.grading import feedback, feedback_verdicts
from grader.sandbox.outcomes import CallOutcome, CallStatus
from grader.untrusted import child
from grader.untrusted.protocol import BAD_RETURN_PROBLEMS
from grader.untrusted.student import selfcheck_faults, selfcheck_oracle


class Ragged(list):
    pass


RETURNS = {
    "none": None,
    "complex": np.ones(3, dtype=complex),
    "object dtype": np.array([object()]),
    "text dtype": np.array(["a"]),
    "ragged list": [[1.0], [2.0, 3.0]],
    "ragged subclass": Ragged([[1.0], [2.0, 3.0]]),
    "string": "a string",
    "dict": {"a": 1},
}


@pytest.mark.parametrize("value", RETURNS.values(), ids=RETURNS.keys())
def test_a_value_the_child_refuses_is_worded_by_feedback_as_the_selfcheck_words_it(value):
    arr, problem, detail = child.to_float64(value)
    assert arr is None and problem in BAD_RETURN_PROBLEMS
    words = feedback.bad_return(problem, detail, hidden=False)
    assert selfcheck_oracle.to_float64(value) == (None, words)


def test_the_child_sends_only_problems_the_protocol_and_feedback_know():
    assert set(feedback.BAD_RETURN_WORDS) == BAD_RETURN_PROBLEMS
    sent = {child.to_float64(value)[1] for value in RETURNS.values()}
    assert sent <= BAD_RETURN_PROBLEMS


def test_a_value_the_child_accepts_is_float64_in_both_copies():
    for value in (np.arange(6).reshape(2, 3), [[1, 2], [3, 4]], 3.5, np.float32(2)):
        arr, problem, _ = child.to_float64(value)
        theirs, words = selfcheck_oracle.to_float64(value)
        assert problem is None and words is None and np.array_equal(arr, theirs) and arr.dtype == theirs.dtype


def raised(err: BaseException) -> BaseException:
    try:
        raise err
    except BaseException as caught:  # noqa: BLE001
        return caught


@pytest.mark.parametrize(
    "err, outcome",
    [
        (NotImplementedError(), CallOutcome(CallStatus.NOT_IMPLEMENTED)),
        (SystemExit(3), CallOutcome(CallStatus.EXITED, message=repr(3))),
        (SystemExit("bye"), CallOutcome(CallStatus.EXITED, message=repr("bye"))),
        (ValueError("boom"), CallOutcome(CallStatus.EXCEPTION, error_type="ValueError", message="boom")),
        (KeyError(), CallOutcome(CallStatus.EXCEPTION, error_type="KeyError")),
    ],
    ids=["not-implemented", "exit-int", "exit-text", "exception", "exception-without-text"],
)
def test_an_exception_is_worded_by_the_selfcheck_as_feedback_words_it_for_a_visible_case(err, outcome):
    status, words = selfcheck_faults.describe_exception("grad_X", raised(err), "elsewhere.py")
    assert words == feedback.call_fault(outcome, "grad_X", hidden=False)
    if status == "not_implemented":
        assert outcome.status == CallStatus.NOT_IMPLEMENTED


def test_the_child_sends_sys_exits_argument_and_feedback_words_it():
    reply = child.describe_exception(raised(SystemExit(3)), "quiz4.py")
    assert reply["status"] == "exit" and reply["message"] == "3"
    said = feedback.call_fault(CallOutcome(CallStatus.EXITED, message=reply["message"]), "grad_S", hidden=False)
    assert said == "grad_S called sys.exit(3)"


def test_shape_timeout_and_missing_words_match_the_selfcheck():
    want = (2, 3)
    expected = np.arange(6.0).reshape(want)
    mask = np.ones(want, dtype=bool)
    settings = {"fd_tolerance": {"rtol": 1e-5, "atol": 1e-8}}
    judged = {
        "transposed": selfcheck_oracle.judge("f", expected.T.copy(), expected, mask, settings)["message"],
        "size_one_axes": selfcheck_oracle.judge("f", np.zeros((2, 1, 3)), expected, mask, settings)["message"],
        "credit": selfcheck_oracle.judge("f", expected.reshape(1, 2, 3), expected, mask, settings)["message"],
        "nan": selfcheck_oracle.judge("f", np.full(want, np.nan), expected, mask, settings)["message"],
        "wrong": selfcheck_oracle.judge("f", expected + 1, expected, mask, settings)["message"],
    }
    assert judged["transposed"] == feedback_verdicts.wrong_shape("f", (3, 2), want, "transposed", hidden=False)
    assert judged["size_one_axes"] == feedback_verdicts.wrong_shape("f", (2, 1, 3), want, "size_one_axes", hidden=False)
    assert judged["credit"] == feedback_verdicts.shape_credit("f", (1, 2, 3), want, hidden=False)
    assert judged["nan"] == feedback_verdicts.not_finite("f")
    assert judged["wrong"] == feedback_verdicts.wrong_values("f", None)

    class Module:
        grad_w1 = staticmethod(lambda: None)

    assert selfcheck_faults.missing_message("grad_W1", Module) == feedback.missing("grad_W1", ["grad_w1"], hidden=False)
    timeout = CallOutcome(CallStatus.TIMEOUT, limit=2.0)
    assert feedback.call_fault(timeout, "f", hidden=False) == "f did not return within the 2 s limit"


NEAR_NAMES = [
    ("grad_b2", ["gradB2", "grad_W2", "grad_X"]),  # case and underscores folded: gradB2
    ("grad_b1", ["grad_X", "grad_S", "grad_W1", "grad_W2"]),  # a shared prefix is no likeness
    ("grad_W1", ["grad_w1"]),
    ("grad_W1", ["grad_W2"]),  # another required function is never offered
    ("grad_b2", ["gradW2"]),  # nor one misnamed the same way
    ("grad_S", ["grad_s_"]),
    ("grad_Z", ["grad_Zz", "helper"]),  # one letter more
]


@pytest.mark.parametrize("function, names", NEAR_NAMES)
def test_the_self_check_offers_the_same_near_name_as_the_grader(function, names):
    required = ["grad_X", "grad_S", "grad_W2", "grad_b2", "grad_H", "grad_Z", "grad_W1", "grad_b1"]
    module = type("Module", (), {n: staticmethod(lambda: None) for n in names})
    others = [f for f in required if f != function]
    assert selfcheck_faults.missing_message(function, module, others) == feedback.missing(
        function, names, False, others
    )


def test_near_names_fold_case_and_underscores_and_never_offer_a_required_name():
    others = ["grad_W2", "grad_X", "grad_W1"]
    assert "did you mean 'gradB2'?" in feedback.missing("grad_b2", ["gradW2", "gradB2", "grad_W2"], False, others)
    assert "did you mean" not in feedback.missing("grad_b1", ["grad_X", "grad_W1"], False, others)
    assert "did you mean" not in feedback.missing("grad_W1", ["grad_W2"], False, ["grad_W2"])
    assert "did you mean" not in feedback.missing("grad_b2", ["gradW2"], False, others)
