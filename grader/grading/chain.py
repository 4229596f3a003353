"""Items with several outputs (an end-to-end check): one verdict per output, and what a failure means.

The child sends every output of one call sequence back in one reply (``outputs``:
setup results and the graded call's own); each is checked on its own, exactly as a
single item's answer is (``check_case``, with the output's own answers from both
oracles), and the case passes when every output does. Its message says which outputs
disagree. The item's diagnosis then looks at the functions the sequence calls: one
that failed its own item is to be fixed first; when every one of them passed on its
own and the sequence still fails, the pieces disagree on a convention, which is what
the check is for. The words are ``feedback_chain``'s.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

from grader.assignment.rubric import Equation, Settings
from grader.grading import feedback, feedback_chain, hints
from grader.grading.case import Case
from grader.grading.checks import CALL_TO_CASE, CaseStatus, CheckResult, check_case
from grader.grading.scoring import Diagnosis, EquationResult, EquationStatus
from grader.grading.shapes import mismatch_facts
from grader.sandbox.outcomes import CallOutcome, CallStatus

# Faults the child reports from inside one call, so the call is known.
PLACED = (
    CallStatus.EXCEPTION,
    CallStatus.NOT_IMPLEMENTED,
    CallStatus.BAD_RETURN,
    CallStatus.MISSING,
    CallStatus.MEMORY,
    CallStatus.EXITED,
)


def producers(equation: Equation) -> dict[str, str]:
    """The function whose call binds each output: a setup step's, or the graded call's (``as``)."""
    made = {name: step.call for step in equation.setup if step.call for name in step.bind}
    if equation.bind is not None:
        made[equation.bind] = equation.function
    return {name: made.get(name, equation.function) for name in equation.outputs}


def split(outcome: CallOutcome, case: Case) -> list[CallOutcome]:
    """Each output's own outcome: its shape, and its values cut from the joined payload."""
    offset, outcomes = 0, []
    for shape in outcome.parts:
        size = math.prod(shape)
        value = None if outcome.value is None else outcome.value[offset : offset + size].reshape(shape)
        outcomes.append(dataclasses.replace(outcome, value=value, shape=shape, parts=()))
        offset += size
    return outcomes


def check_outputs(equation: Equation, case: Case, outcome: CallOutcome, settings: Settings) -> CheckResult:
    """The verdict on one case of an item with outputs: each output checked on its own."""
    hidden = not case.visible
    common = {
        "index": case.index,
        "visible": case.visible,
        "expected_shape": (),
        "mutated": outcome.mutated,
        "elapsed": outcome.elapsed,
    }
    made = producers(equation)
    if outcome.status != CallStatus.OK:
        return broken_chain(equation, case, outcome, made, hidden, common)
    verdicts = []
    for part, got in zip(case.parts, split(outcome, case)):
        alone = dataclasses.replace(
            case,
            expected=part.expected,
            fd_expected=part.fd_expected,
            fd_mask=part.fd_mask,
            scale=part.scale,
            parts=(),
        )
        if got.value is None and got.shape == part.expected.shape:
            # the reply was too large to read, for another output's sake: this one can't be compared
            verdict = CheckResult(
                index=case.index,
                visible=case.visible,
                status=CaseStatus.WRONG_SHAPE,
                credit=0.0,
                message=feedback_chain.unread(made[part.name]),
                expected_shape=part.expected.shape,
            )
        else:
            verdict = check_case(dataclasses.replace(equation, function=made[part.name]), alone, got, settings)
        verdicts.append((part.name, verdict))
    failing = [
        (name, v.message) for name, v in verdicts if v.status not in (CaseStatus.PASSED, CaseStatus.SHAPE_CREDIT)
    ]
    credited = [name for name, v in verdicts if v.status == CaseStatus.SHAPE_CREDIT]
    if failing:
        status = next(v.status for _, v in verdicts if v.status not in (CaseStatus.PASSED, CaseStatus.SHAPE_CREDIT))
        message = feedback_chain.disagreeing(failing, len(verdicts))
    elif credited:
        status, message = CaseStatus.SHAPE_CREDIT, feedback_chain.shape_credited(credited, verdicts)
    else:
        status, message = CaseStatus.PASSED, ""
    return CheckResult(
        status=status,
        credit=min(v.credit for _, v in verdicts),  # a case is as good as its worst output
        message=message,
        oracle_disagreement=next((v.oracle_disagreement for _, v in verdicts if v.oracle_disagreement), None),
        parts=tuple(verdicts),
        **common,
    )


def broken_chain(
    equation: Equation, case: Case, outcome: CallOutcome, made: Mapping[str, str], hidden: bool, common: dict
) -> CheckResult:
    """No values came back: a call of the sequence failed, or an output could not be sent."""
    status = CALL_TO_CASE.get(outcome.status, CaseStatus.ERROR)
    plan = case.plan
    function = equation.function
    if outcome.phase == "import":  # the file never imported: said as for every item
        return CheckResult(status=status, credit=0.0, message=feedback.call_fault(outcome, function, hidden), **common)
    died = outcome.exit_code is not None  # the child's exit status, not a SystemExit it reported
    if outcome.setup is None and (outcome.status not in PLACED or died):
        # a time limit, a crash, the child's death: the reply can't say which call it was in
        return CheckResult(
            status=status, credit=0.0, message=feedback.call_fault(outcome, feedback_chain.WHOLE, hidden), **common
        )
    if outcome.setup is not None and plan is not None and outcome.setup < len(plan.setup):
        function = plan.setup[outcome.setup].call or function
        if status == CaseStatus.MISSING:
            status = CaseStatus.ERROR  # the item's own function is there; a piece of the chain is not
    if outcome.status == CallStatus.BAD_RETURN and outcome.problem in ("arity", "not_tuple"):
        step = plan.setup[outcome.setup] if outcome.setup is not None else None
        fault = hints.tuple_fault(function, outcome.problem, outcome.detail, step.bind if step else (), hidden)
    elif outcome.output is not None and outcome.output < len(equation.outputs):
        name = equation.outputs[outcome.output]
        return CheckResult(
            status=status,
            credit=0.0,
            message=feedback_chain.output_fault(name, feedback.call_fault(outcome, made[name], hidden)),
            **common,
        )
    else:  # what numpy's shape message establishes on a visible case, as for a single item
        facts = None if hidden else mismatch_facts(outcome.message or "", case, equation)
        fault = feedback.call_fault(outcome, function, hidden, facts)
    return CheckResult(status=status, credit=0.0, message=feedback_chain.stopped(function, fault), **common)


def diagnose_chain(
    equation: Equation,
    checks: Sequence[CheckResult],
    results: Sequence[EquationResult],
) -> Diagnosis | None:
    """What a failed end-to-end item says about its pieces, from the other items' results.

    A piece that failed its own item is named first (the chain can't be right before it
    is); when every piece passed on its own, the failure is a convention mismatch
    between them. Outputs are named by the rubric, so this is safe for hidden cases.
    """
    failed = [c for c in checks if c.status not in (CaseStatus.PASSED, CaseStatus.SKIPPED)]  # shape credit too
    if not failed or all(c.message.startswith(feedback.NOT_GRADED) for c in failed):
        return None  # nothing ran: the file's own notice says why
    wrong = {
        name for c in failed for name, v in c.parts if v.status not in (CaseStatus.PASSED, CaseStatus.SHAPE_CREDIT)
    }
    outputs = [name for name in equation.outputs if name in wrong]
    own: dict[str, list[EquationResult]] = {}
    for result in results:
        if result.equation is not equation and not result.equation.outputs:
            own.setdefault(result.equation.function, []).append(result)
    pieces = [f for f in equation.functions if f in own]
    broken = [f for f in pieces if any(r.status != EquationStatus.PASSED for r in own[f])]
    if broken:
        items = [r.equation.id for f in broken for r in own[f] if r.status != EquationStatus.PASSED]
        return Diagnosis("lead", feedback_chain.fix_pieces_first(broken, items))
    return Diagnosis("lead", feedback_chain.convention_mismatch(pieces, outputs))
