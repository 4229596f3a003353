"""Every sentence a student reads about how a call went, and the rule of what a hidden case may say.

The sandbox reports codes and facts (a status, a signal name, an exit code, a problem
kind, a line number, the submission's own exception text); the checks and the
diagnosis report verdicts, measures and categories. This module words them, for the
report, the terminal, Gradescope and the batch pages alike, and it is the one place
that applies the hidden-case rule:

    For a hidden case, student-visible text holds only the grader's own words and
    numbers that do not depend on what the submission returned or raised: the
    function's and the rubric's names, the expected shape, counts of cases, the
    rubric's limits, and fixed categories ("raised an exception", "returned an array
    of another shape", "changed an input in place").

With a hidden input in hand a submission chooses its exception class and message, the
line it fails on, the shape it returns, its exit code, the signal that ends it, the
factor its answer is off by and which inputs it edits; it could spell the input in any
of them, so for a hidden case none is repeated. What a hidden case does say is one of a
few fixed categories (a status, a signal cause from ``SIGNAL_CAUSES``, a bad-return
kind, a shape lead, numpy's shape-mismatch words), a count, or a catalogued mistake
matched by value: each is the grader's sentence, worth a bit or two, like the
pass/fail count that any grader reveals. This module words the sandbox's codes about a
call that produced no array, and a file that never imported; ``feedback_verdicts.py``
words the verdicts on an answer and an equation's summary, and its ``case_fields``
applies the same rule to a case's fields in the report. Visible cases keep the full detail: their inputs are
shown anyway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from grader.grading import hints
from grader.grading.names import near_name
from grader.sandbox.budget import SAME_DEATHS
from grader.sandbox.outcomes import CallOutcome, CallStatus

# How a process ended, by signal: the fixed categories a hidden case may name too.
SIGNAL_CAUSES = {
    "SIGSEGV": "crashed with a segmentation fault (often unbounded recursion)",
    "SIGBUS": "crashed with a bus error",
    "SIGABRT": "aborted",
    "SIGXCPU": "ran out of CPU time",
    "SIGKILL": "was killed (the CPU time limit, or the memory limit)",
    "SIGXFSZ": "wrote more output than the limit allows",
    "SIGFPE": "crashed with a floating-point exception",
}
OTHER_SIGNAL = "was killed by a signal"
# Why a return value can't be graded (the child's problem codes, protocol.BAD_RETURN_PROBLEMS):
# fixed words for hidden cases, and for visible ones when the child sent no detail.
BAD_RETURN_WORDS = {
    "none": "returned None; expected a numpy array (did you forget `return`?)",
    "complex": "returned an array of complex numbers; expected an array of real numbers",
    "dtype": "returned an array whose dtype is not a real number type; expected an array of real numbers",
    "not_rectangular": "returned a sequence that is not a rectangular array of real numbers",
    "unconvertible": "returned a value that could not be converted to numbers",
    "type": "returned something that is not a numpy array",
    # a tuple return or a dict entry, worded with the item's slots by ``hints.tuple_fault`` / ``missing_entry``
    "not_tuple": "did not return the tuple of values this part asks for",
    "arity": "did not return as many values as this part asks for",
    "missing_key": "did not leave the entry this part grades in its dict argument",
}
# The same with the child's detail (a dtype, a type name, an exception class), for visible cases.
BAD_RETURN_DETAIL = {
    "dtype": "returned an array of dtype {detail}; expected an array of real numbers",
    "not_rectangular": "returned a {detail} that is not a rectangular array of real numbers",
    "unconvertible": "returned a value that could not be converted to numbers ({detail})",
    "type": "returned {detail}; expected a numpy array",
}
# Where the parent found a function it could not call (``structure.placements``), said with `missing`.
PLACEMENT_WORDS = {
    "main_guard": (
        'it is defined only under `if __name__ == "__main__":`, which does not run when the grader imports '
        "your file: define it at the top level"
    ),
    "class": (
        "it is defined only inside class {owner}, and the grader calls top-level functions: define it at "
        "the top level, outside the class"
    ),
    "function": (
        "it is defined only inside the function {owner}, so it does not exist until that runs: define it "
        "at the top level"
    ),
}
NOTEBOOK_NOTICE = (
    "Your file is a Jupyter notebook (JSON) saved with a .py name, not a Python script: submit it "
    "with its .ipynb name (the grader reads notebooks), or export it as a script (in Jupyter, "
    "File > Download as > Python (.py))."
)
NOT_GRADED = "not graded: "


# -- one call -------------------------------------------------------------------------------


def during(outcome: CallOutcome, function: str) -> str:
    return "while importing the file" if outcome.phase == "import" else f"while running {function}"


def line_place(where: Mapping) -> str:
    """A line of the submission: "line 3", or in a notebook "cell 7, line 3" (``where``'s ``cell`` facts)."""
    if where.get("cell"):
        return f"cell {where['cell']}, line {where['cell_line']}" if where.get("cell_line") else f"cell {where['cell']}"
    return f"line {where['lineno']}"


def place(outcome: CallOutcome, hidden: bool) -> str:
    """' at line N: `code`' for a visible fault (the line's text is the parent's copy of the file)."""
    where = outcome.where or {}
    if hidden or not where.get("lineno"):
        return ""
    code = f": `{where['line']}`" if where.get("line") else ""
    return f" at {line_place(where)}{code}"


def signal_cause(name: str | None, hidden: bool) -> str:
    if name in SIGNAL_CAUSES:
        return SIGNAL_CAUSES[name]
    return OTHER_SIGNAL if hidden or not name else f"was killed by {name}"


def bad_return(problem: str | None, detail: str, hidden: bool) -> str:
    """Why a value can't be graded; the child's detail only for a visible case."""
    problem = problem if problem in BAD_RETURN_WORDS else "type"
    if detail and not hidden and problem in BAD_RETURN_DETAIL:
        return BAD_RETURN_DETAIL[problem].format(detail=detail)
    return BAD_RETURN_WORDS[problem]


def exception(outcome: CallOutcome, function: str, hidden: bool, facts: tuple[str, dict] | None = None) -> str:
    """A raised exception: class, message and line for a visible case, the category for a hidden one."""
    lead = hints.mismatch_lead(outcome.message or "", None if hidden else facts, not hidden)
    if hidden:
        if outcome.error_type == "RecursionError":
            return f"{function} recursed too deeply (RecursionError)"
        return f"{function} raised an exception{lead}"
    text = f" ({outcome.message})" if outcome.message else ""
    return f"{function} raised {outcome.error_type}{text}{place(outcome, hidden)}{lead}"


def process_end(outcome: CallOutcome, function: str, hidden: bool) -> str:
    """A child that died, exited or broke the protocol, in the grader's words."""
    when = during(outcome, function)
    if outcome.status == CallStatus.CRASHED:
        if outcome.error_type is None:
            return f"the process stopped answering {when}"
        return f"the process {signal_cause(outcome.error_type, hidden)} {when}"
    if outcome.status == CallStatus.EXITED:
        if outcome.exit_code is None:  # the child caught SystemExit
            who = "the file" if outcome.phase == "import" else function
            return f"{who} called sys.exit" + ("" if hidden else f"({outcome.message})")
        code = "" if hidden or outcome.exit_code is None else f" with code {outcome.exit_code}"
        return f"the process exited{code} {when} (sys.exit, os._exit or similar)"
    detail = "" if hidden or not outcome.detail else f": {outcome.detail}"
    return f"the process sent a malformed reply{detail}"


def not_run(outcome: CallOutcome, function: str) -> str:
    """A case the sandbox refused to run (``grader/sandbox/budget.py``): the grader's limit, in its words."""
    if outcome.problem == "same_deaths":
        return (
            f"not run: {function} ended its process the same way {SAME_DEATHS} times in a row, "
            "so it was not started again for the remaining cases"
        )
    return (
        f"not run: the submission used up its {outcome.limit or 0:g} s time limit "
        "(for every import and call together) before this case"
    )


def call_fault(
    outcome: CallOutcome,
    function: str,
    hidden: bool,
    facts: tuple[str, dict] | None = None,
    others: Sequence[str] = (),
    placement: tuple[str, str] | None = None,
) -> str:
    """A student-facing sentence for a call that produced no array.

    ``facts`` is what a visible case's shape mismatch established; ``others`` the
    functions the rubric asks for besides this one (never suggested in its place);
    ``placement`` where the parent found the function in the source, if not at the top.
    """
    status = outcome.status
    if status == CallStatus.NOT_RUN:
        return not_run(outcome, function)
    if outcome.phase == "import" and status != CallStatus.MISSING:
        return not_imported(outcome, hidden)
    if status == CallStatus.NOT_IMPLEMENTED:
        return f"{function} is not implemented yet (it raises NotImplementedError)"
    if status == CallStatus.EXCEPTION:
        return exception(outcome, function, hidden, facts)
    if status == CallStatus.MEMORY:
        return f"{function} ran out of memory{place(outcome, hidden)}"
    if status == CallStatus.BAD_RETURN:
        return f"{function} {bad_return(outcome.problem, outcome.detail, hidden)}"
    if status == CallStatus.TIMEOUT:
        return f"{function} did not return within the {outcome.limit or 0:g} s limit"
    if status == CallStatus.MISSING:
        return missing(function, outcome.names, hidden, others, placement)
    if status in (CallStatus.CRASHED, CallStatus.EXITED, CallStatus.PROTOCOL):
        return process_end(outcome, function, hidden)
    return f"{function} failed ({status.value})"


# -- a file that could not be imported ----------------------------------------------------


def import_reason(outcome: CallOutcome, hidden: bool) -> str:
    """Why the import failed, in full for an import no hidden input can have reached."""
    status = outcome.status
    if status == CallStatus.TIMEOUT:
        return f"importing the file took longer than {outcome.limit or 0:g} s"
    if status == CallStatus.MEMORY:
        return f"it ran out of memory{place(outcome, hidden)}"
    if status == CallStatus.EXITED and outcome.exit_code is None:
        return "it called sys.exit" + ("" if hidden else f"({outcome.message})")
    if status in (CallStatus.CRASHED, CallStatus.EXITED, CallStatus.PROTOCOL):
        return process_end(outcome, "", hidden)
    if hidden:
        return "it raised an exception"
    text = f": {outcome.message}" if outcome.message else ""
    return f"{outcome.error_type}{text}{place(outcome, hidden)}"


def not_imported(outcome: CallOutcome, hidden: bool) -> str:
    """A case's message when the file never imported: short, the reason is said once (``file_notice``)."""
    if outcome.status == CallStatus.TIMEOUT:
        return f"{NOT_GRADED}{import_reason(outcome, True)}"
    return f"{NOT_GRADED}the file could not be imported (the reason is at the top of the feedback)"


def file_notice(outcome: CallOutcome | None, hidden: bool) -> str:
    """Feedback about the file as a whole, said once above the equations ("" when there is none)."""
    if outcome is None or outcome.phase != "import":
        return ""
    return f"Your file could not be imported: {import_reason(outcome, hidden)}."


def missing(
    function: str,
    names: Sequence[str],
    hidden: bool,
    others: Sequence[str] = (),
    placement: tuple[str, str] | None = None,
) -> str:
    """No such function: where the source has it instead, or a near name while no hidden input has been
    sent (a re-import could spell one)."""
    if placement is not None:
        kind, owner = placement
        return (
            f"no function named {function!r} at the top level of your file: {PLACEMENT_WORDS[kind].format(owner=owner)}"
        )
    close = None if hidden else near_name(function, names, others)
    hint = f"; did you mean {close!r}? The name must be exactly {function!r}" if close else ""
    return f"no function named {function!r} in your file{hint}"


def forbidden(function: str, module: str, where: Mapping) -> str:
    """A forbidden import, found in the source before anything ran (``where``: its line, as ``place`` reads it)."""
    return (
        f"{function} uses `{module}` ({line_place(where)}), which this assignment does not allow: "
        "the exercise is to derive the gradient yourself, with numpy"
    )


def skipped_after_timeout(function: str) -> str:
    return f"not run: an earlier case of {function} timed out"
