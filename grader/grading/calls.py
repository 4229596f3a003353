"""Call sequences: the setup calls and the graded call of one case, run in the parent on trusted code.

The child runs a case's sequence on the submission (``grader/untrusted/child.py``);
the parent runs the same sequence on the reference to get the expected value, and
on a catalogued mistake (which replaces the graded function everywhere in the
sequence, setup calls included) to name what went wrong. Each call gets fresh
writable copies of the arrays; a dict input is copied once per sequence and then
shared, so what a training-mode call leaves in a parameter dict the next call sees. A setup
result (a cache) is passed on as it is and never leaves the process it was made in.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from grader.assignment.items import Equation, SetupStep


class SequenceError(Exception):
    """A call of the sequence returned something the plan can't use (wrong arity, no such dict entry)."""


@dataclass(frozen=True)
class CallPlan:
    """What one case calls: setup steps, then ``function(*args)``, and which value of it is graded."""

    function: str
    args: tuple[str, ...]
    setup: tuple[SetupStep, ...] = ()
    slots: tuple[str, ...] = ()
    slot: int | None = None
    argument: str | None = None
    key: str | None = None
    outputs: tuple[str, ...] = ()  # several graded values by name: setup results, or ``bind``
    bind: str | None = None  # the graded call's own result's name, for ``outputs``

    @classmethod
    def of(cls, equation: Equation, setup: tuple[SetupStep, ...], args: tuple[str, ...]) -> CallPlan:
        return cls(
            function=equation.function,
            args=args,
            setup=setup,
            slots=equation.slots,
            slot=equation.slot_index,
            argument=equation.output_argument,
            key=equation.output_key,
            outputs=equation.outputs,
            bind=equation.bind,
        )

    @property
    def simple(self) -> bool:
        """One call of arrays returning one array: quiz 4's kind, whose requests stay as they were."""
        return not (self.setup or self.slots or self.argument or self.outputs)

    def request(self) -> dict:
        """The plan as extra fields of the child's call request (instructor data only; none when simple)."""
        if self.simple:
            return {}
        plan: dict = {"call": list(self.args)}
        if self.setup:
            plan["setup"] = [step.as_request() for step in self.setup]
        if self.slots:
            plan["slots"] = len(self.slots)
            if self.slot is not None:
                plan["slot"] = self.slot
        if self.argument is not None:
            plan["argument"] = self.args.index(self.argument)
            plan["key"] = self.key
        if self.outputs:
            plan["outputs"] = list(self.outputs)
            if self.bind is not None:
                plan["as"] = self.bind
        return plan

    def setup_function(self, index: int | None) -> str | None:
        """The function of setup step ``index`` (as the parent's own plan says), if that is a call."""
        if index is None or not 0 <= index < len(self.setup):
            return None
        return self.setup[index].call


def fresh(value: Any) -> Any:
    """A value as one call receives it: a writable copy of an array, the same object otherwise."""
    return np.array(value) if isinstance(value, np.ndarray) else value


def unpack(result: Any, count: int, function: str) -> tuple:
    if not isinstance(result, (tuple, list)):
        raise SequenceError(f"{function} returned {type(result).__name__}, not a tuple of {count}")
    if len(result) != count:
        raise SequenceError(f"{function} returned {len(result)} values, expected {count}")
    return tuple(result)


def run_plan(plan: CallPlan, inputs: Mapping[str, Any], lookup: Callable[[str], Callable]) -> Any:
    """Run the setup steps and the graded call; returns the graded value (raises what the code raises).

    With ``outputs``, a tuple of the named values, in the plan's order.
    """
    names = {name: copy.deepcopy(value) if isinstance(value, dict) else value for name, value in inputs.items()}
    for step in plan.setup:
        if step.update is not None:
            names[step.update].update(copy.deepcopy(dict(step.values)))
            continue
        result = lookup(step.call)(*(fresh(names[n]) for n in step.args))
        if len(step.bind) == 1:
            names[step.bind[0]] = result
        elif step.bind:
            names.update(zip(step.bind, unpack(result, len(step.bind), step.call)))
    args = [fresh(names[n]) for n in plan.args]
    value = lookup(plan.function)(*args)
    if plan.outputs:
        if plan.bind is not None:
            names[plan.bind] = value
        return tuple(names[n] for n in plan.outputs)
    if plan.slots:
        value = unpack(value, len(plan.slots), plan.function)
    if plan.argument is not None:
        holder = args[plan.args.index(plan.argument)]
        if not isinstance(holder, dict) or plan.key not in holder:
            raise SequenceError(f"{plan.function} left no {plan.key!r} in {plan.argument}")
        return holder[plan.key]
    return value if plan.slot is None else value[plan.slot]


def module_lookup(module: Any, fallback: Any = None, replace: tuple[str, Callable] | None = None):
    """Functions by name: ``replace`` first, then the module, then ``fallback`` (the reference)."""

    def lookup(name: str) -> Callable:
        if replace is not None and name == replace[0]:
            return replace[1]
        found = getattr(module, name, None)
        if found is None and fallback is not None:
            found = getattr(fallback, name)
        if found is None:
            raise AttributeError(name)
        return found

    return lookup
