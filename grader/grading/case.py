"""One test case: the inputs of one call sequence of an item, and the two oracles' answers for them.

A case draws its dimensions, then its inputs, from the random stream it is given;
``cases.py`` says which cases an item has (seeds, streams, probes, variants, sizes).
A probe shapes the dimensions or values drawn (``square``, ``kinks``, ``labels_repeat``,
``labels_one_class``); a variant overrides the item's inputs, setup calls or returns.

A case's expected value comes from running its call plan (``calls.py``: setup calls,
then the graded call) on the reference; the finite-difference oracle differentiates
the reference forward the rubric names (``differences.py``). Instructor code and
rubric cross-references fail here, as a configuration error, not in a student's grade.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np

from grader.assignment.consistency import effective
from grader.assignment.rubric import Equation, Rubric, Variant
from grader.errors import ReferenceModuleError
from grader.grading.calls import CallPlan, module_lookup, run_plan
from grader.grading.differences import agreeing_entries, finite_difference, magnitude
from grader.grading.draws import (
    axis_names,
    dim_rules,
    dims_used,
    draw_case_dims,
    draw_input,
    resolve_shape,
    square_dims,
)


@dataclass(frozen=True, eq=False)
class Part:
    """One named output of a case that grades several (``outputs``), with both oracles' answers for it."""

    name: str
    expected: np.ndarray
    fd_expected: np.ndarray | None
    fd_mask: np.ndarray | None
    scale: float


@dataclass(frozen=True, eq=False)
class Case:
    """One call sequence of one item, with both oracles' answers (``fd_expected`` None: the reference alone)."""

    equation_id: str
    index: int
    visible: bool
    dims: Mapping[str, int]
    inputs: Mapping[str, Any]
    arg_names: tuple[str, ...]
    expected: np.ndarray
    fd_expected: np.ndarray | None
    fd_mask: np.ndarray | None
    scale: float | None = None  # the error measure's scale (magnitude()); None: the answer's largest entry
    probe: str | None = None
    plan: CallPlan | None = None
    variant: str | None = None
    # An item with outputs: each output's answers; ``expected`` is then all of them flattened
    # and joined, as the child sends them back (what bounds the reply's size).
    parts: tuple[Part, ...] = ()

    @property
    def args(self) -> tuple:
        return tuple(self.inputs[name] for name in self.arg_names)

    @property
    def shown_inputs(self) -> tuple[str, ...]:
        """The inputs a visible case's report shows: the call's and its setup calls', not a setup result."""
        return self.arg_names if self.plan is None else plan_inputs(self.plan, self.inputs)


def plan_inputs(plan: CallPlan, inputs: Mapping[str, Any]) -> tuple[str, ...]:
    """The inputs a call plan passes, setup calls first, in order of first use (quiz 4's: its args)."""
    if plan.simple:
        return plan.args
    names = [n for step in plan.setup for n in step.args] + list(plan.args)
    return tuple(dict.fromkeys(n for n in names if n in inputs))


def probe_dims(
    rubric: Rubric,
    equation: Equation,
    rng: np.random.Generator,
    fixed: Mapping[str, int],
    probe: str | None,
    variant: Variant | None = None,
    avoid: Mapping[str, frozenset[int]] | None = None,
) -> dict[str, int]:
    rules = dim_rules(rubric, equation, variant)
    inputs = effective(equation, variant)[0]
    returns = equation.returns_for(variant)
    names = dims_used(equation, inputs, rules, returns)
    if probe == "square":
        return square_dims(names, rubric.settings.dims, rng)
    floors = {}
    if probe in ("labels_repeat", "labels_one_class"):
        floors = {d: 2 for spec in inputs if spec.kind == "labels" for d in spec.shape if isinstance(d, str)}
    where = f"{rubric.path}: {equation.id}" + (f" (variant {variant.name})" if variant else "")
    axes = axis_names(inputs, returns)
    return draw_case_dims(rng, names, rules, equation.require, fixed, floors, where, axes, avoid)


def draw_case(
    rubric: Rubric,
    equation: Equation,
    reference: ModuleType,
    rng: np.random.Generator,
    fixed: Mapping[str, int],
    probe: str | None = None,
    variant: Variant | None = None,
    avoid: Mapping[str, frozenset[int]] | None = None,
) -> tuple[dict[str, int], dict[str, Any]]:
    """A case's dimensions and inputs (arrays read-only), without the oracles' answers."""
    dims = probe_dims(rubric, equation, rng, fixed, probe, variant, avoid)
    fd = equation.finite_difference
    kink = (fd.kink_input, fd.kink_at) if fd and probe == "kinks" and fd.kink_input is not None else None
    inputs: dict[str, Any] = {}
    try:  # a derived input calls instructor code: its failure is a configuration error
        for spec in effective(equation, variant)[0]:
            inputs[spec.name] = draw_input(rng, spec, dims, inputs, reference, kink, probe)
    except Exception as err:  # noqa: BLE001
        raise ReferenceModuleError(
            f"{rubric.path}: {equation.id}: cannot build a case: {type(err).__name__}: {err}"
        ) from err
    for value in inputs.values():
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return dims, inputs


def build_case(
    rubric: Rubric,
    equation: Equation,
    reference: ModuleType,
    rng: np.random.Generator,
    index: int,
    visible: bool,
    fixed: Mapping[str, int],
    probe: str | None = None,
    variant: Variant | None = None,
    avoid: Mapping[str, frozenset[int]] | None = None,
) -> Case:
    dims, inputs = draw_case(rubric, equation, reference, rng, fixed, probe, variant, avoid)
    _, setup, arg_names = effective(equation, variant)
    if equation.outputs:
        return build_chain_case(rubric, equation, reference, index, visible, dims, inputs, probe, variant)
    plan = CallPlan.of(equation, setup, arg_names)
    fd = equation.finite_difference
    where = f"{rubric.path}: {equation.id}"
    # Instructor code and rubric cross-references fail here, not in a student's grade.
    try:
        expected = np.asarray(run_plan(plan, inputs, module_lookup(reference)), dtype=np.float64)
        fd_expected, fd_mask = None, None
        if fd is not None:
            slot = fd.slot
            if isinstance(slot, str):
                slot = rubric.function_slots[fd.forward].index(slot)
            forward = getattr(reference, fd.forward)
            fd_expected, fd_mask = finite_difference(forward, fd, inputs, rubric.settings.fd_step, slot)
    except Exception as err:  # noqa: BLE001 - any failure of instructor code is a configuration error
        raise ReferenceModuleError(f"{where}: cannot build a case: {type(err).__name__}: {err}") from err
    want = resolve_shape(equation.returns_for(variant), dims)
    if expected.shape != want:
        raise ReferenceModuleError(
            f"{rubric.reference}: {equation.function} returned shape {expected.shape}, "
            f"but the rubric's {equation.id}.returns says {want}"
        )
    if fd_expected is not None and fd_expected.shape != want:
        raise ReferenceModuleError(
            f"{rubric.path}: {equation.id}.finite_difference differentiates {fd.wrt!r} "
            f"of shape {fd_expected.shape}, but the answer has shape {want}"
        )
    used = [inputs[name] for name in plan_inputs(plan, inputs)]
    return Case(
        equation_id=equation.id,
        index=index,
        visible=visible,
        dims=MappingProxyType(dims),
        inputs=MappingProxyType(inputs),
        arg_names=arg_names,
        expected=expected,
        fd_expected=fd_expected,
        fd_mask=fd_mask,
        scale=magnitude(expected, used),
        probe=probe,
        plan=plan,
        variant=variant.name if variant else None,
    )


def build_chain_case(
    rubric: Rubric,
    equation: Equation,
    reference: ModuleType,
    index: int,
    visible: bool,
    dims: dict[str, int],
    inputs: dict[str, Any],
    probe: str | None,
    variant: Variant | None,
) -> Case:
    """A case of an item with several outputs: the reference's sequence gives each, and each is
    differentiated on its own (``wrt`` paired with ``outputs``).

    Finite differences of a forward with a kink (a ReLU inside a whole network) are wrong
    where a step crosses it: an entry where they disagree with the reference's own answer
    is left out of that comparison, as a kink is for a single item.
    """
    _, setup, arg_names = effective(equation, variant)
    plan = CallPlan.of(equation, setup, arg_names)
    where = f"{rubric.path}: {equation.id}"
    try:
        values = [np.asarray(v, dtype=np.float64) for v in run_plan(plan, inputs, module_lookup(reference))]
        used = [inputs[name] for name in plan_inputs(plan, inputs)]
        forward = getattr(reference, equation.finite_difference.forward) if equation.finite_difference else None
        parts = []
        for name, value, fd in zip(equation.outputs, values, equation.output_differences()):
            want = resolve_shape(equation.output_shapes[name], dims)
            if value.shape != want:
                raise ReferenceModuleError(
                    f"{rubric.reference}: the sequence of {equation.id} gives {name} of shape {value.shape}, "
                    f"but the rubric's {equation.id}.returns.{name} says {want}"
                )
            scale = magnitude(value, used)
            fd_expected, fd_mask = None, None
            if fd is not None:
                fd_expected, _ = finite_difference(forward, fd, inputs, rubric.settings.fd_step)
                if fd_expected.shape != want:
                    raise ReferenceModuleError(
                        f"{rubric.path}: {equation.id}.finite_difference differentiates {fd.wrt!r} "
                        f"of shape {fd_expected.shape}, but {name} has shape {want}"
                    )
                fd_mask = agreeing_entries(value, fd_expected, rubric.settings.fd_tolerance, scale)
            parts.append(Part(name, value, fd_expected, fd_mask, scale))
    except ReferenceModuleError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure of instructor code is a configuration error
        raise ReferenceModuleError(f"{where}: cannot build a case: {type(err).__name__}: {err}") from err
    return Case(
        equation_id=equation.id,
        index=index,
        visible=visible,
        dims=MappingProxyType(dims),
        inputs=MappingProxyType(inputs),
        arg_names=arg_names,
        expected=np.concatenate([part.expected.ravel() for part in parts]),
        fd_expected=None,
        fd_mask=None,
        scale=max(part.scale for part in parts),
        probe=probe,
        plan=plan,
        variant=variant.name if variant else None,
        parts=tuple(parts),
    )
