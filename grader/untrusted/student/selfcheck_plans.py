"""The self-check's call plans: setup calls, tuple slots and dict entries, run on the student's machine.

A piece of the student bundle's self-check (``selfcheck.py``), numpy and the standard
library only. An item the bundle judges by its expected value (a forward's output, a
loss, a backward graded on the cache its own forward made, what a call leaves in a
dict argument) comes with the grader's call plan: the setup calls to make first, the
graded call's arguments, the slot of the returned tuple or the dict entry to compare.
This module runs that plan as the grader's child does (fresh writable copies of the
arrays for every call, a dict shared by the calls of one case, a setup call's results
kept in this process) and words what goes wrong in the grader's words
(``grader/grading/hints.py``: ``tuple_fault``, ``missing_entry``, ``setup_fault``, for a
visible case; ``tests/test_layers_engine.py`` checks they say the same).
"""

from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import numpy as np


def load_beside(name: str):
    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parent / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if __package__:  # imported from the grader's package (grader.untrusted.student)
    from . import selfcheck_faults as faults
    from . import selfcheck_oracle as oracle
else:  # the bundle's folder: beside selfcheck.py, loaded by path as it loads this file
    faults = sys.modules.get("selfcheck_faults") or load_beside("selfcheck_faults")
    oracle = sys.modules.get("selfcheck_oracle") or load_beside("selfcheck_oracle")


class ReturnProblem(Exception):
    """A return the plan can't use: not the tuple of its slots, or no such dict entry."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class SetupFailed(Exception):
    """A setup call failed (``error`` None: the function is not defined), so the graded call never ran."""

    def __init__(self, function: str, error: BaseException | None):
        super().__init__(function)
        self.function = function
        self.error = error


def encode_input(value) -> dict:
    """An input's JSON form: an array bit for bit, a hyperparameter as it is, a dict entry by entry."""
    if isinstance(value, np.ndarray):
        value = np.asarray(value)
        dtype = "int64" if value.dtype.kind in "iu" else "float64"
        return {"dtype": dtype, "shape": list(value.shape), "data": value.astype(dtype).tolist()}
    if isinstance(value, dict):
        return {"dict": {key: encode_input(entry) for key, entry in value.items()}}
    return {"value": value}


def decode_input(spec: dict):
    if "dict" in spec:
        return {key: decode_input(entry) for key, entry in spec["dict"].items()}
    if "value" in spec and "dtype" not in spec:
        return spec["value"]
    return np.array(spec["data"], dtype=spec["dtype"]).reshape(spec["shape"])


def tuple_fault(function: str, problem: str, detail: str, slots: list) -> str:
    """As ``hints.tuple_fault`` for a visible case."""
    want = f"{len(slots)} values ({', '.join(slots)})"
    if problem == "arity":
        count = int(detail)
        return (
            f"{function} returned {count} value{'s' if count != 1 else ''}, expected {len(slots)} ({', '.join(slots)})"
        )
    if problem == "not_tuple" and detail:
        return f"{function} returned {detail}, expected a tuple of {want}"
    return f"{function} did not return a tuple of {want}"


def missing_entry(function: str, argument: str, key: str) -> str:
    """As ``hints.missing_entry``."""
    return f"{function} left no {key!r} in {argument}; it must store it there (creating it when absent)"


def setup_fault(setup_function: str, function: str, needed: tuple, fault: str) -> str:
    """As ``hints.setup_fault``."""
    if setup_function == function:
        return f"an earlier call of {function} on the same inputs failed, so this one was not graded: {fault}"
    what = " and ".join(needed) if needed else "its result"
    return f"fix {setup_function} first: its {what} {'is' if len(needed) <= 1 else 'are'} needed to grade {function}; {fault}"


def kind_of(value) -> str:
    return (
        f"{type(value).__name__} of dtype {value.dtype} and shape {value.shape}"
        if isinstance(value, np.ndarray)
        else type(value).__name__
    )


def unpack(value, slots: list, function: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise ReturnProblem(tuple_fault(function, "not_tuple", kind_of(value), slots))
    if len(value) != len(slots):
        raise ReturnProblem(tuple_fault(function, "arity", str(len(value)), slots))
    return tuple(value)


def fresh(value):
    return np.array(value) if isinstance(value, np.ndarray) else value


def run_plan(module, function: str, plan: dict, inputs: dict):
    """The graded value of one case; raises SetupFailed, ReturnProblem, or what the graded call raised."""
    names = {key: copy.deepcopy(value) if isinstance(value, dict) else value for key, value in inputs.items()}
    for step in plan.get("setup", ()):
        if "update" in step:
            names[step["update"]].update(step["with"])
            continue
        call = getattr(module, step["function"], None)
        if not callable(call):
            raise SetupFailed(step["function"], None)
        try:
            result = call(*(fresh(names[n]) for n in step["args"]))
            bind = step.get("as") or []
            if len(bind) == 1:
                names[bind[0]] = result
            elif bind:
                names.update(zip(bind, unpack(result, bind, step["function"])))
        except Exception as err:  # noqa: BLE001 - the student's own setup call
            raise SetupFailed(step["function"], err) from err
    args = [fresh(names[n]) for n in plan["call"]]
    value = getattr(module, function)(*args)
    if plan.get("slots"):
        value = unpack(value, plan["slots"], function)
        if plan.get("slot") is not None:
            value = value[plan["slot"]]
    if plan.get("argument") is not None:
        holder = args[plan["call"].index(plan["argument"])]
        if not isinstance(holder, dict) or plan["key"] not in holder:
            raise ReturnProblem(missing_entry(function, plan["argument"], plan["key"]))
        value = holder[plan["key"]]
    return value


def needed_results(plan: dict, function: str) -> tuple:
    """The names a failed setup call would have bound that the graded call takes (its cache)."""
    for step in plan.get("setup", ()):
        if step.get("function") == function:
            return tuple(n for n in step.get("as") or () if n in plan["call"])
    return ()


def judge_planned(module, eq: dict, case: dict, inputs: dict, settings: dict, code, functions, run_with_limit) -> dict:
    """Run one visible case's call plan (setup calls first) and judge the graded value against the shipped one.

    ``code`` is the self-check's loaded submission (its files and line locator), ``functions``
    the items' function names, ``run_with_limit`` its wall-clock runner.
    """
    name = eq["function"]
    outcome, value = run_with_limit(lambda: run_plan(module, name, eq["plan"], inputs), settings["time_limit"])
    if outcome == "timeout":
        return {"status": "timeout", "message": f"{name} did not return within the {settings['time_limit']:g} s limit"}
    if outcome == "raised" and isinstance(value, ReturnProblem):
        return {"status": "bad_return", "message": value.message}
    if outcome == "raised" and isinstance(value, SetupFailed):
        setup = value.function
        if value.error is None:
            status, fault = "error", faults.missing_message(setup, module, functions)
        elif isinstance(value.error, ReturnProblem):
            status, fault = "bad_return", value.error.message
        else:
            status, fault = faults.describe_exception(setup, value.error, code.files, code.locate)
        status = "error" if status == "missing" else status
        message = setup_fault(setup, name, needed_results(eq["plan"], setup), fault)
        return {"status": status, "message": message}
    if outcome == "raised":
        status, message = faults.describe_exception(name, value, code.files, code.locate)
        return {"status": status, "message": message}
    expected = oracle.decode_array(case["expected"])
    judged = {"fd_tolerance": eq["tolerance"], "scale": case.get("scale"), "gradient": eq.get("gradient", True)}
    return oracle.judge(name, value, expected, np.ones(expected.shape, dtype=bool), judged)
