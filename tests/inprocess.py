"""Grading without the sandbox, for properties over thousands of seeds.

The checks, diagnosis and scoring are the grader's own; only the call differs: the
fixture's function runs in this process, and its result is converted the way the
child converts it (to a C-ordered float64 array). Trusted fixtures only.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np

from grader.grading.case import Case
from grader.grading.checks import CheckResult, check_case, check_repeat
from grader.sandbox.outcomes import CallOutcome, CallStatus


def load_fixture(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"_fixture_{path.parent.name}_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def in_dtype(function: Callable, dtype) -> Callable:
    """``function`` run on its real-valued inputs cast to ``dtype`` (labels stay integers)."""

    def cast(*args):
        return function(*(a.astype(dtype) if a.dtype.kind == "f" else a for a in args))

    return cast


def call(function: Callable, case: Case) -> CallOutcome:
    args = [a.copy() for a in case.args]
    try:
        with np.errstate(all="ignore"):
            returned = function(*args)
            if returned is None:
                return CallOutcome(CallStatus.BAD_RETURN, message="returned None")
            value = np.array(returned, dtype="<f8", order="C")
    except NotImplementedError:
        return CallOutcome(CallStatus.NOT_IMPLEMENTED)
    except Exception as err:  # noqa: BLE001 - a fixture's fault is data, as in the sandbox
        return CallOutcome(CallStatus.EXCEPTION, message=str(err), error_type=type(err).__name__)
    return CallOutcome(CallStatus.OK, value=value, shape=value.shape)


def check(equation, case: Case, function: Callable, settings) -> CheckResult:
    """One case's verdict, with the repeat_call probe on the first case as the pipeline does it."""
    outcome = call(function, case)
    verdict = check_case(equation, case, outcome, settings)
    if equation.repeat_call and case.index == 0 and outcome.status == CallStatus.OK:
        verdict = check_repeat(case, verdict, outcome, call(function, case), settings, equation.function)
    return verdict
