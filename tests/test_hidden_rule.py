"""The hidden-case rule: nothing a student sees about a hidden case depends on what the submission chose.

A hostile file answers every visible case right and, on hidden cases, spells a choice
(made from the hidden input and a salt) in each way it could reach the feedback: the
constant factor it is off by, the line it raises on, the built-in exception class, a
wrong shape made of the case's own dimensions, which input it edits in place, sys.exit's
argument, the signal that kills it and its exit code. Each choice stays within one category
(an exception, a 3-d array, a signal without a cause of its own), so graded with two
salts on the same hidden cases, everything a student can read must be byte for byte the
same; and every field a hidden case reaches in the report is walked and held to the
grader's vocabulary: the sentences feedback can say from a category alone.
"""

from __future__ import annotations

import itertools
import json
import re

import pytest

from conftest import grade
from grader.frontends.gradescope.results import equation_markdown, summary_markdown
from grader.frontends.terminal import render_report
from grader.grading import feedback, feedback_chain, feedback_verdicts, hints
from grader.grading.chain import producers
from grader.grading.report import report_to_dict
from grader.sandbox.outcomes import CallOutcome, CallStatus
from grader.untrusted.protocol import BAD_RETURN_PROBLEMS

SEED = 20261201
LEAKY = '''
import signal
import sys
import os

import numpy as np

SALT = {salt}
SEEN = {{}}
FACTOR = []


def hidden(name):
    """Hidden from the third call on: a function's own visible case, then the chained one's."""
    SEEN[name] = SEEN.get(name, 0) + 1
    return SEEN[name] > 2


def pick(x, n):
    """A choice spelled from the hidden input and the salt."""
    return (int(abs(float(np.ravel(x)[0])) * 1e6) + SALT) % n


def grad_X(dY, W):
    if hidden("X"):
        FACTOR.append(FACTOR[0] if FACTOR else 3 + pick(dY, 1000) / 1000 + SALT)
        return FACTOR[0] * (dY @ W.T)
    return dY @ W.T


def raise_a():
    raise ValueError("a")  # LEAKLINE a


def raise_b():
    raise ValueError("b")  # LEAKLINE b


def raise_c():
    raise ValueError("c")  # LEAKLINE c


def grad_S(P, y):
    if hidden("S"):
        (raise_a, raise_b, raise_c)[pick(P, 3)]()
    dS = P.copy()
    dS[np.arange(P.shape[0]), y] -= 1.0
    return dS


def grad_W2(H, dS):
    if hidden("W2"):
        raise (KeyError, IndexError, ZeroDivisionError)[pick(H, 3)]("%d" % pick(H, 10**6))
    return H.T @ dS


def grad_b2(dS):
    if hidden("b2"):
        n, c = dS.shape  # a 3-d array of the case's own dimensions, in an order it picks
        return np.zeros(((n, c, c), (c, n, c))[pick(dS, 2)])
    return dS.sum(axis=0, keepdims=True)


def grad_H(dS, W2):
    answer = dS @ W2.T
    if hidden("H"):
        (dS, W2)[pick(dS, 2)][...] = 0.0
    return answer


def grad_Z(dH, Z):
    if hidden("Z"):
        sys.exit(pick(dH, 10**6))
    return np.where(Z > 0, dH, 0.0)


def grad_W1(X, dZ):
    if hidden("W1"):
        signal.raise_signal((signal.SIGUSR1, signal.SIGUSR2, signal.SIGALRM)[pick(X, 3)])
    return X.T @ dZ


def grad_b1(dZ):
    if hidden("b1"):
        os._exit(10 + pick(dZ, 100))
    return dZ.sum(axis=0, keepdims=True)
'''
# What the old feedback said for these files, and must not say for a hidden case.
OLD_LEAKS = ("constant factor of", "LEAKLINE", " at line", "KeyError", "IndexError", "ZeroDivisionError")
OLD_LEAKS += ("returned shape", "changed its input", "sys.exit(", "SIGUSR", "SIGALRM", "with code")


@pytest.fixture(scope="module")
def graded(quiz4, tmp_path_factory):
    """The hostile file graded with two salts on the same hidden cases: (report, document) each."""
    runs = []
    for salt in (0, 1):
        path = tmp_path_factory.mktemp(f"salt{salt}") / "quiz4.py"
        path.write_text(LEAKY.format(salt=salt))
        runs.append(grade(path, quiz4, seed=SEED))
    return runs


def student_text(report) -> dict:
    """Everything a student reads: the report's equations and notice, the terminal, Gradescope."""
    document = report_to_dict(report)
    return {
        "equations": json.dumps(document["equations"], ensure_ascii=False, sort_keys=True),
        "notice": document["notice"],
        "terminal": render_report(report, width=100).split("\n", 3)[3],  # after the file's name and hash
        "gradescope": [equation_markdown(result, report) for result in report.equations],
        "summary": summary_markdown(report, "quiz4.py"),
    }


def test_every_leak_way_is_actually_taken_on_the_hidden_cases(graded):
    (_, document), _ = graded
    statuses = {eq["id"]: eq["status"] for eq in document["equations"]}
    assert statuses == {
        "eq1": "partial",
        "eq9": "partial",
        "eq10": "partial",
        "eq11": "partial",
        "eq12": "passed",
        "eq13": "partial",
        "eq14": "partial",
        "eq15": "partial",
        "backprop": "partial",  # the chain's visible case passes; each hidden one takes one of the ways
    }
    chain = next(eq for eq in document["equations"] if eq["id"] == "backprop")
    hidden = [case for case in chain["cases"] if not case["visible"]]
    assert {case["status"] for case in hidden} - {"passed"}, hidden
    eq12 = next(eq for eq in document["equations"] if eq["id"] == "eq12")
    assert "mutated_inputs" in eq12["flags"] and any(c["mutated"] for c in eq12["cases"] if not c["visible"])


def test_what_a_student_reads_is_the_same_whatever_the_submission_chose_on_hidden_cases(graded):
    (first, _), (second, _) = graded
    assert student_text(first) == student_text(second)


def test_no_old_leak_is_in_anything_a_student_reads(graded):
    (report, _), _ = graded
    text = json.dumps(student_text(report), ensure_ascii=False)
    for leak in OLD_LEAKS:
        assert leak not in text


def hidden_vocabulary(function: str, want: tuple[int, ...], rubric) -> set[str]:
    """Every sentence feedback can say about one hidden case of ``function``, from categories alone.

    The outcomes carry sentinels where the submission's own text, line, detail, exit code
    and names would be: a hidden sentence that quoted any of them would show a sentinel.
    """
    s = rubric.settings
    facts = {"message": "SENTINEL-TEXT", "where": {"lineno": 4242, "line": "SENTINEL-LINE"}, "detail": "SENTINEL"}
    outcomes = [CallOutcome(st, **facts) for st in CallStatus if st not in (CallStatus.OK, CallStatus.MISSING)]
    outcomes += [CallOutcome(CallStatus.BAD_RETURN, problem=p, **facts) for p in BAD_RETURN_PROBLEMS]
    signals = [*feedback.SIGNAL_CAUSES, "SIGUSR1", None]
    outcomes += [CallOutcome(CallStatus.CRASHED, error_type=sig, **facts) for sig in signals]
    outcomes += [CallOutcome(CallStatus.EXITED, exit_code=code, **facts) for code in (None, 4242)]
    outcomes += [CallOutcome(CallStatus.EXCEPTION, error_type=t, **facts) for t in ("RecursionError", "Sentinel")]
    outcomes += [CallOutcome(CallStatus.EXCEPTION, error_type="E", message="shapes not aligned", where=None)]
    outcomes += [CallOutcome(CallStatus.TIMEOUT, limit=s.time_limit), CallOutcome(CallStatus.MISSING, names=("x",))]
    outcomes += [CallOutcome(st, phase="import", limit=s.import_time_limit, **facts) for st in CallStatus]
    words = {feedback.call_fault(o, function, hidden=True) for o in outcomes}
    words |= {
        feedback_verdicts.wrong_shape(function, (4242,), want, lead, True)
        for lead in (None, "rank", *feedback_verdicts.SHAPE_LEADS)
    }
    words |= {feedback_verdicts.shape_credit(function, (4242,), want, True), feedback_verdicts.not_finite(function), ""}
    for disagreement in (
        None,
        "matches the reference but not finite differences",
        "matches finite differences but not the reference",
    ):
        words.add(feedback_verdicts.wrong_values(function, disagreement))
    words.add(feedback.skipped_after_timeout(function))
    assert not any("SENTINEL" in w or "4242" in w for w in words), "a hidden sentence quoted the submission"
    return words


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def allowed_numbers(eq: dict, rubric) -> set[str]:
    """Numbers a hidden equation's feedback may hold: counts, the label's, the limits', the expected shapes'."""
    s = rubric.settings
    numbers = {str(n) for n in range(len(eq["cases"]) + 1)}
    numbers |= set(NUMBER.findall(eq["label"])) | set(NUMBER.findall(f"{s.time_limit:g} {s.import_time_limit:g}"))
    numbers |= {str(d) for case in eq["cases"] for d in case["expected_shape"]}
    numbers |= {
        str(d) for case in eq["cases"] for out in case.get("outputs", {}).values() for d in out["expected_shape"]
    }
    numbers |= set(NUMBER.findall(f"{s.mutation_penalty:.0%}"))
    return numbers


def test_every_field_a_hidden_case_reaches_in_the_report_holds_only_the_graders_words(graded, quiz4):
    (_, document), _ = graded
    catalog = {eq.id: eq for eq in quiz4.equations}
    allowed_keys = {"index", "visible", "status", "credit", "message", "expected_shape", "oracle_disagreement"}
    allowed_keys |= {*feedback_verdicts.SUBMISSION_FIELDS, "mutated_inputs", "mutated"}
    for eq in document["equations"]:
        hidden = [case for case in eq["cases"] if not case["visible"]]
        assert hidden, "the rubric has hidden cases"
        if catalog[eq["id"]].outputs:
            for case in hidden:
                assert set(case) <= allowed_keys | {"outputs"}, set(case) - allowed_keys
                assert all(case[field] is None for field in feedback_verdicts.SUBMISSION_FIELDS), case
                assert chain_message_holds_only_the_graders_words(case, catalog[eq["id"]], quiz4), case["message"]
            continue
        for case in hidden:
            assert set(case) <= allowed_keys, set(case) - allowed_keys
            assert all(case[field] is None for field in feedback_verdicts.SUBMISSION_FIELDS), case
            assert case["mutated_inputs"] == []
            vocabulary = hidden_vocabulary(eq["function"], tuple(case["expected_shape"]), quiz4)
            assert case["message"] in vocabulary, case["message"]
            assert case["oracle_disagreement"] in (None, *(w.split("answer ")[-1].split(":")[0] for w in vocabulary))
        visible_ok = all(c["status"] == "passed" for c in eq["cases"] if c["visible"])
        if visible_ok:  # all the equation says comes from its hidden cases: hold its numbers too
            said = eq["feedback"] + " " + ((eq["diagnosis"] or {}).get("text") or "")
            rubric_eq = catalog[eq["id"]]
            mistakes = " ".join(m.hint for m in rubric_eq.mistakes) + f" {rubric_eq.finite_difference.kink_at}"
            numbers = set(NUMBER.findall(said)) - allowed_numbers(eq, quiz4) - set(NUMBER.findall(mistakes))
            assert not numbers, f"{eq['id']}: {numbers} in {said!r}"


def chain_message_holds_only_the_graders_words(case: dict, eq, rubric) -> bool:
    """A hidden case of the end-to-end check: each output's words are a hidden sentence about the function
    that made it, and the case's message is ``feedback_chain``'s joining of them, or of a hidden call fault."""
    made = producers(eq)
    outputs = {n: v for n, v in case["outputs"].items() if v["status"] is not None}  # None: no values came back
    assert set(case["outputs"]) == set(eq.outputs)
    for name, verdict in outputs.items():
        assert set(verdict) <= {"status", "expected_shape", "message", "oracle_disagreement", "mutated_inputs"} | {
            *feedback_verdicts.SUBMISSION_FIELDS,
            "mutated",
        }, verdict
        assert all(verdict.get(field) is None for field in feedback_verdicts.SUBMISSION_FIELDS), verdict
        if verdict["message"] not in hidden_vocabulary(made[name], tuple(verdict["expected_shape"]), rubric):
            return False
    failing = [(n, v["message"]) for n, v in outputs.items() if v["status"] not in ("passed", "shape_credit")]
    if outputs:
        credited = [(n, v) for n, v in outputs.items() if v["status"] == "shape_credit"]
        joined = "; ".join(f"{n}: {v['message']}" for n, v in credited)
        return case["message"] in (feedback_chain.disagreeing(failing, len(outputs)) if failing else "", joined)
    calls = {feedback.call_fault(o, feedback_chain.WHOLE, True) for o in fault_outcomes(rubric)}
    for function in eq.functions:
        calls |= {feedback_chain.stopped(function, w) for w in hidden_vocabulary(function, (), rubric)}
    for name in eq.outputs:
        calls |= {feedback_chain.output_fault(name, w) for w in hidden_vocabulary(made[name], (), rubric)}
    return case["message"] in calls


def fault_outcomes(rubric) -> list[CallOutcome]:
    """Faults no single call of a chain can be blamed for: a time limit, a death, a broken reply."""
    s = rubric.settings
    outcomes = [CallOutcome(CallStatus.TIMEOUT, limit=s.time_limit), CallOutcome(CallStatus.PROTOCOL)]
    outcomes += [CallOutcome(CallStatus.NOT_RUN), CallOutcome(CallStatus.MEMORY)]
    outcomes += [CallOutcome(CallStatus.CRASHED, error_type=sig) for sig in [*feedback.SIGNAL_CAUSES, "SIGUSR1", None]]
    return outcomes + [CallOutcome(CallStatus.EXITED, exit_code=code) for code in (None, 4242)]


@pytest.mark.parametrize("problem", sorted(BAD_RETURN_PROBLEMS))
def test_every_bad_return_kind_the_child_may_send_has_fixed_words(problem):
    assert problem in feedback.BAD_RETURN_WORDS
    assert set(feedback.BAD_RETURN_DETAIL) <= BAD_RETURN_PROBLEMS


def test_a_shape_only_match_names_no_mistake_on_a_hidden_case():
    import numpy as np

    from grader.grading.checks import CaseStatus, CheckResult
    from grader.grading.diagnosis import reproduces

    wrong = np.zeros((3, 1))
    for visible, named in ((True, True), (False, False)):
        check = CheckResult(0, visible, CaseStatus.WRONG_SHAPE, 0.0, "", got_shape=(3, 1), value=None)
        assert reproduces(wrong, check, settings=None) is named


def test_the_factor_is_quoted_only_from_a_visible_case():
    assert "4.041" in hints.factor_lead("constant", factor=4.041)
    assert hints.factor_lead("constant", factor=None) == (
        "your answer is off by a constant factor: check for an extra scale factor"
    )


def test_hidden_sentences_never_depend_on_the_facts_behind_their_category():
    """Two outcomes of one category with different facts give one hidden sentence."""
    pairs = [
        (dict(error_type="KeyError", message="1"), dict(error_type="ValueError", message="2")),
        (dict(error_type="SIGUSR1"), dict(error_type="SIGTERM")),
        (dict(exit_code=3), dict(exit_code=4)),
        (dict(problem="dtype", detail="object"), dict(problem="dtype", detail="<U3")),
        (dict(where={"lineno": 3, "line": "x"}), dict(where={"lineno": 9, "line": "y"})),
        (dict(detail="declares shape (7,)"), dict(detail="declares shape (8,)")),
    ]
    for status, (a, b) in itertools.product(CallStatus, pairs):
        if status == CallStatus.OK:
            continue
        for phase in ("call", "import"):
            one = CallOutcome(status, phase=phase, **a)
            two = CallOutcome(status, phase=phase, **b)
            assert feedback.call_fault(one, "f", True) == feedback.call_fault(two, "f", True), (status, a, b)
            assert feedback.file_notice(one, True) == feedback.file_notice(two, True)


def test_a_near_name_is_suggested_only_while_no_hidden_input_has_been_sent():
    """A re-import after a hidden call could define a function named after an input."""
    assert "did you mean 'grad_w1'" in feedback.missing("grad_W1", ["grad_w1"], hidden=False)
    assert feedback.missing("grad_W1", ["grad_W1_123456"], hidden=True) == "no function named 'grad_W1' in your file"
