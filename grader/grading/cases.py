"""Test cases: inputs drawn per equation, and the two oracles' answers for them.

Every equation draws its own inputs from its own random stream, so no equation's
expected output is ever another's input (a bug in eq. (9) costs points only there,
and dS, the answer to eq. (9), never sits in a child's memory as an input).

Seeds: visible cases come from the rubric's seed alone (every student sees the same
ones); hidden cases come from a hidden seed, by default derived from the rubric's seed
and the submission's sha256, so a grade is reproducible but hidden cases differ
between students.

Probes: the regular cases have pairwise distinct dimensions (so a missing transpose
can't pass) and generic values, which is exactly what lets a shortcut through
(`if dY.shape[1] == W.shape[0]`, a mask `Z > 1e-3`). Each probe the rubric lists for
an equation adds one hidden case, from its own random stream, that breaks one kind of
shortcut: ``square`` (every dimension equal), ``kinks`` (values on both sides of the
kink, down to 1e-8 away, and on it), ``labels_repeat`` (a label that occurs twice) and
``labels_one_class`` (every label the same class). Then one hidden case per variant
the rubric lists (``variants:``, fixed overrides such as a test-mode call or a stride
of 2), each from its own stream too, so every listed situation is graded.

A case's expected value comes from running its call plan (``calls.py``: setup calls,
then the graded call) on the reference; the finite-difference oracle differentiates
the reference forward the rubric names (``differences.py``).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any

import numpy as np

from grader.assignment.consistency import effective
from grader.assignment.rubric import CASE_PROBES, Equation, Rubric, Variant
from grader.errors import ReferenceModuleError
from grader.grading.calls import CallPlan, module_lookup, run_plan
from grader.grading.differences import finite_difference, magnitude
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


def derive_hidden_seed(rubric_seed: int, submission_sha256: str) -> int:
    """The default hidden seed: the rubric's seed mixed with the submission's hash."""
    digest = hashlib.sha256(f"{rubric_seed}:{submission_sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def equation_rng(seed: int, equation_id: str, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(f"{stream}:{equation_id}".encode())]))


def probe_dims(
    rubric: Rubric,
    equation: Equation,
    rng: np.random.Generator,
    fixed: Mapping[str, int],
    probe: str | None,
    variant: Variant | None = None,
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
    return draw_case_dims(rng, names, rules, equation.require, fixed, floors, where, axis_names(inputs, returns))


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
) -> Case:
    dims = probe_dims(rubric, equation, rng, fixed, probe, variant)
    specs, setup, arg_names = effective(equation, variant)
    plan = CallPlan.of(equation, setup, arg_names)
    fd = equation.finite_difference
    kink = (fd.kink_input, fd.kink_at) if fd and probe == "kinks" and fd.kink_input is not None else None
    inputs: dict[str, Any] = {}
    where = f"{rubric.path}: {equation.id}"
    # Instructor code and rubric cross-references fail here, not in a student's grade.
    try:
        for spec in specs:
            inputs[spec.name] = draw_input(rng, spec, dims, inputs, reference, kink, probe)
        for value in inputs.values():
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
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


def case_probes(equation: Equation) -> tuple[str, ...]:
    """The probes that add a hidden case, in the rubric's order (``repeat_call`` adds a call, not a case)."""
    return tuple(p for p in equation.probes if p in CASE_PROBES)


def build_cases(
    rubric: Rubric, reference: ModuleType, hidden_seed: int, hidden: bool = True, equations=None, visible: bool = True
) -> dict[str, tuple[Case, ...]]:
    """All cases per equation id: visible ones first, then (unless ``hidden`` is False) hidden ones.

    ``visible=False`` leaves the visible cases out (they depend on the rubric's seed
    alone, so a sweep over hidden seeds builds them once).

    The last regular hidden case sets the rubric's batch dimension to 1 (unless the
    item says ``batch_of_one: false``), so code that assumes a batch of several
    examples (or averages where it should sum) is caught there. Then one hidden case
    per probe and one per variant, each from its own stream: how many cases an item
    has depends on its rubric entry only, and adding a probe changes no other case.
    """
    settings = rubric.settings
    cases: dict[str, tuple[Case, ...]] = {}
    for equation in equations or rubric.equations:
        visible_rng = equation_rng(rubric.seed, equation.id, "visible")
        shown = range(settings.visible_cases) if visible else ()
        built = [build_case(rubric, equation, reference, visible_rng, i, True, {}) for i in shown]
        if hidden:
            hidden_rng = equation_rng(hidden_seed, equation.id, "hidden")
            used = dims_used(equation, None, dim_rules(rubric, equation))
            batch = settings.batch_dim if settings.batch_dim in used and equation.batch_of_one else None
            for j in range(settings.hidden_cases):
                fixed = {batch: 1} if batch and j == settings.hidden_cases - 1 else {}
                built.append(
                    build_case(rubric, equation, reference, hidden_rng, settings.visible_cases + j, False, fixed)
                )
            # probes are hidden cases: a rubric with none (cases.hidden: 0) grades what students see
            extra = [(p, None) for p in case_probes(equation)] + [(None, v) for v in equation.variants]
            for k, (probe, variant) in enumerate(extra if settings.hidden_cases else ()):
                stream = f"probe:{probe}" if variant is None else f"variant:{variant.name}"
                rng = equation_rng(hidden_seed, equation.id, stream)
                index = settings.visible_cases + settings.hidden_cases + k
                built.append(build_case(rubric, equation, reference, rng, index, False, {}, probe, variant))
        cases[equation.id] = tuple(built)
    return cases
