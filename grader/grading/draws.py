"""Drawing one case: its dimensions (ranges, expressions, constraints) and its inputs.

Dimensions differ pairwise where the ranges allow, so a swapped axis can't pass;
derived ones are computed from the drawn ones, and a draw that breaks one of the
item's ``require`` relations (or makes a derived size below 1) is drawn again, a
bounded number of times. ``avoid`` keeps given sizes out of a draw (the visible
cases', when a seed's hidden cases all repeat one: see ``repeated_sizes``). Inputs are arrays (normal, uniform, labels, derived from
others by a reference function, optionally without ties or with exact zeros) or
hyperparameters: ints, floats, strings and dicts of them, as plain Python values.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np

from grader.assignment.items import DimRule, Equation, InputSpec, Variant
from grader.assignment.rubric import Rubric
from grader.errors import RubricError

# Offsets from a kink, in units of the input's scale, in the order they are placed: an
# input with few entries still gets both sides at the thresholds students pick (1e-3,
# 1e-6) and the kink itself.
KINK_OFFSETS = (1e-3, -1e-3, 1e-6, 0.0, -1e-6, 1e-2, -1e-2, 1e-4, -1e-4, 1e-8, -1e-8, 1e-5, -1e-5, 1e-1, -1e-1)
MAX_DRAWS = 200  # tries to satisfy an item's `require` before the rubric is called unsatisfiable


def dim_rules(rubric: Rubric, equation: Equation, variant: Variant | None = None) -> dict[str, DimRule]:
    """Every dimension rule in force for an item's case: settings, then the item's, then the variant's."""
    rules = {name: DimRule(low, high) for name, (low, high) in rubric.settings.dims.items()}
    rules.update(rubric.settings.derived)
    rules.update(equation.dims)
    if variant is not None:
        rules.update(variant.dims)
    return rules


def spec_dims(spec: InputSpec) -> list[str]:
    found = [d for d in (*spec.shape, spec.classes, spec.dim) if isinstance(d, str)]
    for entry in spec.entries:
        found.extend(spec_dims(entry))
    return found


def dims_used(
    equation: Equation,
    inputs: tuple[InputSpec, ...] | None = None,
    rules: Mapping[str, DimRule] | None = None,
    returns: tuple[str | int, ...] | None = None,
) -> list[str]:
    """The named dimensions an item's shapes, hyperparameters and constraints mention, in first-use order.

    With ``rules``, a derived dimension brings the names its expression uses after it.
    """
    names: list[str] = []
    pending = [d for spec in (inputs or equation.inputs) for d in spec_dims(spec)]
    pending += [d for d in (equation.returns if returns is None else returns) if isinstance(d, str)]
    pending += [name for expression in equation.require for name in expression.names]
    while pending:
        dim = pending.pop(0)
        if dim in names:
            continue
        names.append(dim)
        rule = (rules or {}).get(dim)
        if rule is not None and rule.expression is not None:
            pending.extend(rule.expression.names)
    return names


def draw_dims(
    rng: np.random.Generator,
    names: list[str],
    ranges: Mapping[str, tuple[int, int]],
    fixed: Mapping[str, int],
    floors: Mapping[str, int] | None = None,
    axes: set[str] | None = None,
    avoid: Mapping[str, frozenset[int]] | None = None,
) -> dict[str, int]:
    """Dimensions that differ pairwise where the ranges allow, so a swapped axis can't pass.

    ``floors`` raises a range's lower end (a label probe needs at least two labels).
    ``axes`` are the names that size an array; any other (a stride, a padding, a pool
    size that only a dict hyperparameter or an expression uses) is drawn uniformly from
    its range, so it is not pushed to the values no axis took. ``avoid`` gives sizes a
    dimension must not take, which wins over pairwise distinctness where the range
    can't give both.
    """
    dims = dict(fixed)
    for name in names:
        if name in dims:
            continue
        low, high = ranges[name]
        low = min(high, max(low, (floors or {}).get(name, low)))
        banned = (avoid or {}).get(name, frozenset())
        allowed = [v for v in range(low, high + 1) if v not in banned]
        if axes is not None and name not in axes:
            dims[name] = int(rng.choice(allowed)) if banned and allowed else int(rng.integers(low, high + 1))
            continue
        taken = dims.values() if axes is None else [v for k, v in dims.items() if k in axes]
        choices = [v for v in allowed if v not in taken] or (allowed if banned else [])
        dims[name] = int(rng.choice(choices)) if choices else int(rng.integers(low, high + 1))
    return dims


def draw_case_dims(
    rng: np.random.Generator,
    names: list[str],
    rules: Mapping[str, DimRule],
    require: tuple,
    fixed: Mapping[str, int],
    floors: Mapping[str, int] | None,
    where: str,
    axes: set[str] | None = None,
    avoid: Mapping[str, frozenset[int]] | None = None,
) -> dict[str, int]:
    """Drawn dimensions, then derived ones, drawn again until every ``require`` relation holds."""
    derived = [n for n in names if rules[n].expression is not None and n not in fixed]
    drawn = [n for n in names if n not in derived]
    ranges = {n: (rules[n].low, rules[n].high) for n in drawn if n not in fixed}
    for _ in range(MAX_DRAWS):
        dims = draw_dims(rng, drawn, ranges, fixed, floors, axes, avoid)
        try:
            for _ in derived:  # in dependency order, however the rubric lists them
                for name in derived:
                    if name not in dims and all(u in dims for u in rules[name].expression.names):
                        dims[name] = rules[name].expression.evaluate(dims)
            if len(dims) < len(names):
                raise RubricError(
                    f"{where}: the derived dimensions {sorted(set(names) - set(dims))} depend on each other"
                )
            if all(dims[n] >= 1 for n in derived) and all(r.evaluate(dims) for r in require):
                return {n: dims[n] for n in (*fixed, *names) if n in dims}
        except ZeroDivisionError:
            continue
    raise RubricError(
        f"{where}: no draw of the dimensions in {MAX_DRAWS} satisfied the item's require (and sizes >= 1)"
    )


def repeated_sizes(
    seen: Mapping[str, frozenset[int]], hidden: list[Mapping[str, int]], rules: Mapping[str, DimRule]
) -> dict[str, frozenset[int]]:
    """The drawn dimensions that take only the visible cases' sizes (``seen``) in every hidden case.

    A case without the dimension (a variant that reshapes it away) says nothing about it.
    Derived dimensions follow the drawn ones, and a dimension whose range holds no other
    size can't do better, so neither is reported.
    """
    return {
        name: sizes
        for name, sizes in seen.items()
        if rules[name].expression is None
        and any(v not in sizes for v in range(rules[name].low, rules[name].high + 1))
        and all(dims[name] in sizes for dims in hidden if name in dims)
    }


def axis_names(inputs: tuple[InputSpec, ...], returns: tuple) -> set[str]:
    """The dimensions that size an array directly: in an input's or the answer's shape, or a label count."""
    found = {d for spec in inputs for d in (*spec.shape, spec.classes) if isinstance(d, str)}
    return found | {d for d in returns if isinstance(d, str)}


def resolve_shape(shape: tuple[str | int, ...], dims: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(dims[d] if isinstance(d, str) else int(d) for d in shape)


def square_dims(names: list[str], ranges: Mapping[str, tuple[int, int]], rng: np.random.Generator) -> dict[str, int]:
    """Every dimension the same size, drawn from where all ranges overlap (2 or more if they allow)."""
    low = max(ranges[n][0] for n in names)
    high = min(ranges[n][1] for n in names)
    return dict.fromkeys(names, int(rng.integers(max(low, min(2, high)), high + 1)))


def near_kinks(rng: np.random.Generator, values: np.ndarray, at: float, scale: float) -> np.ndarray:
    """``values`` with entries placed on both sides of the kink, closest first, at random positions."""
    count = min(values.size, len(KINK_OFFSETS))
    positions = rng.choice(values.size, size=count, replace=False)
    out = values.copy()
    out.flat[positions] = at + scale * np.asarray(KINK_OFFSETS[:count])
    return out


def probe_labels(rng: np.random.Generator, labels: np.ndarray, classes: int, probe: str | None) -> np.ndarray:
    """Labels with one repeated (``labels_repeat``) or all of one class (``labels_one_class``)."""
    if probe == "labels_one_class":
        return np.full_like(labels, int(rng.integers(0, classes)))
    if probe == "labels_repeat" and labels.size >= 2:
        first, second = rng.choice(labels.size, size=2, replace=False)
        out = labels.copy()
        out.flat[second] = out.flat[first]
        return out
    return labels


def draw_value(rng: np.random.Generator, spec: InputSpec, dims: Mapping[str, int]) -> Any:
    """A hyperparameter as a plain Python value (it travels in the request's JSON header)."""
    if spec.kind == "value":
        return spec.value
    if spec.kind == "dim":
        return int(dims[spec.dim])
    if spec.kind == "dict":
        return {
            entry.name: draw_array(rng, entry, dims) if entry.is_array else draw_value(rng, entry, dims)
            for entry in spec.entries
        }
    if spec.choices:
        chosen = spec.choices[int(rng.integers(0, len(spec.choices)))]
        return int(chosen) if spec.kind == "int" else float(chosen) if spec.kind == "float" else chosen
    if spec.kind == "int":
        return int(rng.integers(int(spec.low), int(spec.high) + 1))
    return float(rng.uniform(spec.low, spec.high))


def without_ties(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Values in [-2 scale, 2 scale], pairwise at least 1.6 scale / size apart, in random order."""
    size = int(np.prod(shape))
    if not size:
        return np.zeros(shape)
    return ((rng.permutation(size) + rng.uniform(0.2, 0.8, size)) * (4 * scale / size) - 2 * scale).reshape(shape)


def draw_array(rng: np.random.Generator, spec: InputSpec, dims: Mapping[str, int]) -> np.ndarray:
    """A real-valued array: normal times ``scale``, uniform in [low, high], or without ties."""
    shape = resolve_shape(spec.shape, dims)
    if spec.distinct:
        return without_ties(rng, shape, spec.scale)
    if spec.kind == "uniform":
        return rng.uniform(spec.low, spec.high, size=shape)
    return rng.standard_normal(shape) * spec.scale


def draw_input(
    rng: np.random.Generator,
    spec: InputSpec,
    dims: Mapping[str, int],
    done: dict,
    reference: ModuleType,
    kink: tuple[str, float] | None = None,
    probe: str | None = None,
):
    """One input. ``kink`` (input name, kink) places values around the kink, for the ``kinks`` probe."""
    if not spec.is_array:
        return draw_value(rng, spec, dims)
    if spec.kind == "derived":
        return np.asarray(getattr(reference, spec.derive)(*(done[n] for n in spec.derive_from)))
    shape = resolve_shape(spec.shape, dims)
    if spec.kind == "labels":
        return probe_labels(
            rng, rng.integers(0, dims[spec.classes], size=shape, dtype=np.int64), dims[spec.classes], probe
        )
    values = draw_array(rng, spec, dims)
    if spec.exact_zeros > 0 and values.size:
        count = max(1, int(round(spec.exact_zeros * values.size)))
        values.flat[rng.choice(values.size, size=count, replace=False)] = 0.0
    if kink is not None and kink[0] == spec.name and values.size:
        values = near_kinks(rng, values, kink[1], spec.scale if spec.kind == "normal" else spec.high - spec.low)
    return values
