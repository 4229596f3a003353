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

Sizes: for every drawn dimension, at least one hidden case has a size the visible
cases don't, so code that hard-codes the visible case's width (or stride) fails
somewhere. Where a seed's hidden cases (probes and variants included) all repeat a
visible size, the first regular hidden case is drawn again, from its own stream,
avoiding the visible sizes (``differ_from_visible``): only such seeds change.

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
from grader.errors import ReferenceModuleError, RubricError
from grader.grading.calls import CallPlan, module_lookup, run_plan
from grader.grading.differences import agreeing_entries, finite_difference, magnitude
from grader.grading.draws import (
    axis_names,
    dim_rules,
    dims_used,
    draw_case_dims,
    draw_input,
    repeated_sizes,
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


def visible_sizes(rubric: Rubric, equation: Equation, reference: ModuleType) -> dict[str, frozenset[int]]:
    """The sizes each dimension takes in the visible cases (their draws replayed, no oracle run).

    A case draws its sizes first, so the last one's inputs need not be drawn.
    """
    count = rubric.settings.visible_cases
    rng = equation_rng(rubric.seed, equation.id, "visible")
    drawn = [draw_case(rubric, equation, reference, rng, {})[0] for _ in range(count - 1)]
    drawn += [probe_dims(rubric, equation, rng, {}, None)] if count else []
    return {name: frozenset(dims[name] for dims in drawn) for name in drawn[0]} if drawn else {}


def sizes_of(cases: tuple[Case, ...] | list[Case]) -> dict[str, frozenset[int]]:
    """The sizes each dimension takes in these cases (of visible cases: what ``visible_sizes`` replays)."""
    return {name: frozenset(case.dims[name] for case in cases) for name in cases[0].dims} if cases else {}


def differ_from_visible(
    rubric: Rubric,
    equation: Equation,
    reference: ModuleType,
    hidden_seed: int,
    hidden: list[Case],
    fixed: Mapping[str, int],
    seen: Mapping[str, frozenset[int]] | None = None,
) -> list[Case]:
    """The hidden cases, the first one drawn again if some dimension has only visible sizes in all of them.

    ``fixed`` is what the first hidden case fixed (the batch size, when it is the only
    regular one), which the new draw keeps. The new draw avoids the visible sizes of
    every dimension the other hidden cases don't vary, and satisfies the item's
    ``require``; where no such draw exists, the cases stay as they were. Probe and
    variant cases count (their sizes are hidden sizes too) but are never drawn again.
    ``seen``: the visible sizes, when the caller has them (else they are replayed).
    """
    seen = visible_sizes(rubric, equation, reference) if seen is None else seen
    rules = dim_rules(rubric, equation)
    if not repeated_sizes(seen, [case.dims for case in hidden], rules):
        return hidden
    rng = equation_rng(hidden_seed, equation.id, "differ_from_visible")
    avoid = repeated_sizes(seen, [case.dims for case in hidden[1:]], rules)
    try:
        again = build_case(rubric, equation, reference, rng, hidden[0].index, False, fixed, avoid=avoid)
    except RubricError:  # `require` rules the visible sizes in: better a repeated size than none
        return hidden
    return [again, *hidden[1:]]


def case_probes(equation: Equation) -> tuple[str, ...]:
    """The probes that add a hidden case, in the rubric's order (``repeat_call`` adds a call, not a case)."""
    return tuple(p for p in equation.probes if p in CASE_PROBES)


def build_cases(
    rubric: Rubric,
    reference: ModuleType,
    hidden_seed: int,
    hidden: bool = True,
    equations=None,
    visible: bool = True,
    shown: Mapping[str, tuple[Case, ...]] | None = None,
) -> dict[str, tuple[Case, ...]]:
    """All cases per equation id: visible ones first, then (unless ``hidden`` is False) hidden ones.

    ``visible=False`` leaves the visible cases out (they depend on the rubric's seed
    alone, so a sweep over hidden seeds builds them once); ``shown`` gives them built
    already (``preparation.prepare``: a batch worker builds them once for its class).

    The last regular hidden case sets the rubric's batch dimension to 1 (unless the
    item says ``batch_of_one: false``), so code that assumes a batch of several
    examples (or averages where it should sum) is caught there. Then one hidden case
    per probe and one per variant, each from its own stream: how many cases an item
    has depends on its rubric entry only, and adding a probe changes no other case.
    Last, ``differ_from_visible``: every drawn dimension gets a size the visible cases lack.
    """
    settings = rubric.settings
    cases: dict[str, tuple[Case, ...]] = {}
    for equation in equations or rubric.equations:
        if shown is not None:
            built = list(shown[equation.id]) if visible else []
        else:
            visible_rng = equation_rng(rubric.seed, equation.id, "visible")
            count = range(settings.visible_cases) if visible else ()
            built = [build_case(rubric, equation, reference, visible_rng, i, True, {}) for i in count]
        # probes are hidden cases: a rubric with none (cases.hidden: 0) grades what students see
        if hidden and settings.hidden_cases:
            hidden_rng = equation_rng(hidden_seed, equation.id, "hidden")
            used = dims_used(equation, None, dim_rules(rubric, equation))
            batch = settings.batch_dim if settings.batch_dim in used and equation.batch_of_one else None
            last = settings.hidden_cases - 1
            fixes = [{batch: 1} if batch and j == last else {} for j in range(settings.hidden_cases)]
            secret = [
                build_case(rubric, equation, reference, hidden_rng, settings.visible_cases + j, False, fixed)
                for j, fixed in enumerate(fixes)
            ]
            extra = [(p, None) for p in case_probes(equation)] + [(None, v) for v in equation.variants]
            for k, (probe, variant) in enumerate(extra):
                stream = f"probe:{probe}" if variant is None else f"variant:{variant.name}"
                rng = equation_rng(hidden_seed, equation.id, stream)
                index = settings.visible_cases + settings.hidden_cases + k
                secret.append(build_case(rubric, equation, reference, rng, index, False, {}, probe, variant))
            seen = sizes_of(built) if visible else None  # else replayed
            built += differ_from_visible(rubric, equation, reference, hidden_seed, secret, fixes[0], seen)
        cases[equation.id] = tuple(built)
    return cases
