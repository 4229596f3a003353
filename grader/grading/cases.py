"""Test cases: inputs drawn per equation, and the two oracles' answers for them.

Every equation draws its own inputs from its own random stream, so no equation's
expected output is ever another's input (a bug in eq. (9) costs points only there,
and dS, the answer to eq. (9), never sits in a child's memory as an input).

Seeds: visible cases come from the rubric's seed alone (every student sees the same
ones); hidden cases come from a hidden seed, by default derived from the rubric's seed
and the submission's sha256, so a grade is reproducible but hidden cases differ
between students.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType

import numpy as np

from grader.assignment.rubric import Equation, FiniteDifference, InputSpec, Rubric
from grader.errors import ReferenceModuleError


@dataclass(frozen=True, eq=False)
class Case:
    """One call of one equation's function, with both oracles' answers."""

    equation_id: str
    index: int
    visible: bool
    dims: Mapping[str, int]
    inputs: Mapping[str, np.ndarray]
    arg_names: tuple[str, ...]
    expected: np.ndarray
    fd_expected: np.ndarray
    fd_mask: np.ndarray

    @property
    def args(self) -> tuple[np.ndarray, ...]:
        return tuple(self.inputs[name] for name in self.arg_names)


def derive_hidden_seed(rubric_seed: int, submission_sha256: str) -> int:
    """The default hidden seed: the rubric's seed mixed with the submission's hash."""
    digest = hashlib.sha256(f"{rubric_seed}:{submission_sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def equation_rng(seed: int, equation_id: str, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(f"{stream}:{equation_id}".encode())]))


def dims_used(equation: Equation) -> list[str]:
    """The named dimensions an equation's shapes mention, in first-use order."""
    names: list[str] = []
    for spec in equation.inputs:
        for dim in (*spec.shape, *([spec.classes] if spec.classes else [])):
            if isinstance(dim, str) and dim not in names:
                names.append(dim)
    for dim in equation.returns:
        if isinstance(dim, str) and dim not in names:
            names.append(dim)
    return names


def draw_dims(
    rng: np.random.Generator, names: list[str], ranges: Mapping[str, tuple[int, int]], fixed: Mapping[str, int]
) -> dict[str, int]:
    """Dimensions that differ pairwise where the ranges allow, so a swapped axis can't pass."""
    dims = dict(fixed)
    for name in names:
        if name in dims:
            continue
        low, high = ranges[name]
        choices = [v for v in range(low, high + 1) if v not in dims.values()]
        dims[name] = int(rng.choice(choices)) if choices else int(rng.integers(low, high + 1))
    return dims


def resolve_shape(shape: tuple[str | int, ...], dims: Mapping[str, int]) -> tuple[int, ...]:
    return tuple(dims[d] if isinstance(d, str) else int(d) for d in shape)


def draw_input(rng: np.random.Generator, spec: InputSpec, dims: Mapping[str, int], done: dict, reference: ModuleType):
    if spec.kind == "derived":
        return np.asarray(getattr(reference, spec.derive)(*(done[n] for n in spec.derive_from)))
    shape = resolve_shape(spec.shape, dims)
    if spec.kind == "labels":
        return rng.integers(0, dims[spec.classes], size=shape, dtype=np.int64)
    if spec.kind == "uniform":
        values = rng.uniform(spec.low, spec.high, size=shape)
    else:
        values = rng.standard_normal(shape) * spec.scale
    if spec.exact_zeros > 0 and values.size:
        count = max(1, int(round(spec.exact_zeros * values.size)))
        values.flat[rng.choice(values.size, size=count, replace=False)] = 0.0
    return values


def finite_difference(
    forward: Callable, fd: FiniteDifference, inputs: Mapping[str, np.ndarray], step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Central differences in float64 of sum(upstream * forward(args)) (or the scalar forward).

    Returns the gradient with respect to ``fd.wrt`` and a mask of the entries to compare:
    entries within ``step`` of a kink (e.g. ReLU at 0) are left out, since there the
    one-sided slopes differ and finite differences measure neither.
    """
    if inputs[fd.wrt].dtype.kind != "f":
        raise ValueError(f"finite_difference.wrt {fd.wrt!r} is not a real-valued input (dtype {inputs[fd.wrt].dtype})")
    point = np.array(inputs[fd.wrt], dtype=np.float64)
    upstream = None if fd.upstream is None else inputs[fd.upstream]
    out = np.asarray(forward(*(inputs[name] for name in fd.args)))
    if upstream is not None and upstream.shape != out.shape:
        raise ValueError(f"upstream {fd.upstream!r} has shape {upstream.shape} but {fd.forward}(...) has {out.shape}")
    if upstream is None and out.shape != ():
        raise ValueError(f"{fd.forward}(...) returns shape {out.shape}: without `upstream` it must return a scalar")
    if fd.kink_input is not None and inputs[fd.kink_input].shape != point.shape:
        raise ValueError(f"kinks.input {fd.kink_input!r} must have the shape of {fd.wrt!r}, {point.shape}")

    values = [point if name == fd.wrt else inputs[name] for name in fd.args]  # `point` is perturbed in place

    def objective() -> float:
        out = forward(*values)
        return float((upstream * out).sum()) if upstream is not None else float(out)

    grad = np.zeros_like(point)
    for index in np.ndindex(point.shape):
        original = point[index]
        point[index] = original + step
        plus = objective()
        point[index] = original - step
        minus = objective()
        point[index] = original
        grad[index] = (plus - minus) / (2 * step)
    mask = np.ones(point.shape, dtype=bool)
    if fd.kink_input is not None:
        mask = np.abs(np.asarray(inputs[fd.kink_input], dtype=np.float64) - fd.kink_at) > step
    return grad, mask


def build_case(
    rubric: Rubric,
    equation: Equation,
    reference: ModuleType,
    rng: np.random.Generator,
    index: int,
    visible: bool,
    fixed: Mapping[str, int],
) -> Case:
    dims = draw_dims(rng, dims_used(equation), rubric.settings.dims, fixed)
    inputs: dict[str, np.ndarray] = {}
    where = f"{rubric.path}: {equation.id}"
    # Instructor code and rubric cross-references fail here, not in a student's grade.
    try:
        for spec in equation.inputs:
            inputs[spec.name] = draw_input(rng, spec, dims, inputs, reference)
        for value in inputs.values():
            value.setflags(write=False)
        args = [inputs[name].copy() for name in equation.args]
        expected = np.asarray(getattr(reference, equation.function)(*args), dtype=np.float64)
        fd_expected, fd_mask = finite_difference(
            getattr(reference, equation.finite_difference.forward),
            equation.finite_difference,
            inputs,
            rubric.settings.fd_step,
        )
    except Exception as err:  # noqa: BLE001 - any failure of instructor code is a configuration error
        raise ReferenceModuleError(f"{where}: cannot build a case: {type(err).__name__}: {err}") from err
    want = resolve_shape(equation.returns, dims)
    if expected.shape != want:
        raise ReferenceModuleError(
            f"{rubric.reference}: {equation.function} returned shape {expected.shape}, "
            f"but the rubric's {equation.id}.returns says {want}"
        )
    if fd_expected.shape != want:
        raise ReferenceModuleError(
            f"{rubric.path}: {equation.id}.finite_difference differentiates {equation.finite_difference.wrt!r} "
            f"of shape {fd_expected.shape}, but the answer has shape {want}"
        )
    return Case(
        equation_id=equation.id,
        index=index,
        visible=visible,
        dims=MappingProxyType(dims),
        inputs=MappingProxyType(inputs),
        arg_names=equation.args,
        expected=expected,
        fd_expected=fd_expected,
        fd_mask=fd_mask,
    )


def build_cases(
    rubric: Rubric, reference: ModuleType, hidden_seed: int, hidden: bool = True, equations=None
) -> dict[str, tuple[Case, ...]]:
    """All cases per equation id: visible ones first, then (unless ``hidden`` is False) hidden ones.

    The last hidden case sets the rubric's batch dimension to 1, so code that assumes
    a batch of several examples (or averages where it should sum) is caught there.
    """
    settings = rubric.settings
    cases: dict[str, tuple[Case, ...]] = {}
    for equation in equations or rubric.equations:
        visible_rng = equation_rng(rubric.seed, equation.id, "visible")
        built = [
            build_case(rubric, equation, reference, visible_rng, i, True, {}) for i in range(settings.visible_cases)
        ]
        if hidden:
            hidden_rng = equation_rng(hidden_seed, equation.id, "hidden")
            batch = settings.batch_dim if settings.batch_dim in dims_used(equation) else None
            for j in range(settings.hidden_cases):
                fixed = {batch: 1} if batch and j == settings.hidden_cases - 1 else {}
                built.append(
                    build_case(rubric, equation, reference, hidden_rng, settings.visible_cases + j, False, fixed)
                )
        cases[equation.id] = tuple(built)
    return cases
