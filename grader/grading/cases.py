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
``labels_one_class`` (every label the same class).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType

import numpy as np

from grader.assignment.rubric import CASE_PROBES, Equation, FiniteDifference, InputSpec, Rubric
from grader.errors import ReferenceModuleError

# Offsets from a kink, in units of the input's scale, in the order they are placed: an
# input with few entries still gets both sides at the thresholds students pick (1e-3,
# 1e-6) and the kink itself.
KINK_OFFSETS = (1e-3, -1e-3, 1e-6, 0.0, -1e-6, 1e-2, -1e-2, 1e-4, -1e-4, 1e-8, -1e-8, 1e-5, -1e-5, 1e-1, -1e-1)


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
    scale: float | None = None  # the error measure's scale (magnitude()); None: the answer's largest entry
    probe: str | None = None

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
    rng: np.random.Generator,
    names: list[str],
    ranges: Mapping[str, tuple[int, int]],
    fixed: Mapping[str, int],
    floors: Mapping[str, int] | None = None,
) -> dict[str, int]:
    """Dimensions that differ pairwise where the ranges allow, so a swapped axis can't pass.

    ``floors`` raises a range's lower end (a label probe needs at least two labels).
    """
    dims = dict(fixed)
    for name in names:
        if name in dims:
            continue
        low, high = ranges[name]
        low = min(high, max(low, (floors or {}).get(name, low)))
        choices = [v for v in range(low, high + 1) if v not in dims.values()]
        dims[name] = int(rng.choice(choices)) if choices else int(rng.integers(low, high + 1))
    return dims


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
    if spec.kind == "derived":
        return np.asarray(getattr(reference, spec.derive)(*(done[n] for n in spec.derive_from)))
    shape = resolve_shape(spec.shape, dims)
    if spec.kind == "labels":
        return probe_labels(
            rng, rng.integers(0, dims[spec.classes], size=shape, dtype=np.int64), dims[spec.classes], probe
        )
    if spec.kind == "uniform":
        values = rng.uniform(spec.low, spec.high, size=shape)
    else:
        values = rng.standard_normal(shape) * spec.scale
    if spec.exact_zeros > 0 and values.size:
        count = max(1, int(round(spec.exact_zeros * values.size)))
        values.flat[rng.choice(values.size, size=count, replace=False)] = 0.0
    if kink is not None and kink[0] == spec.name and values.size:
        values = near_kinks(rng, values, kink[1], spec.scale if spec.kind == "normal" else spec.high - spec.low)
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


def magnitude(expected: np.ndarray, args: list[np.ndarray]) -> float:
    """The scale of the error measure: the largest entry of the answer or of a real-valued argument.

    Rounding follows what a computation went through, not only where it ended: eq. (9)
    on a confident row subtracts 1 from P = 0.9997, and the answer's largest entry
    (3e-4) is far below the size of the numbers float32 rounded (1).
    """
    sizes = [float(np.max(np.abs(a))) for a in (expected, *args) if a.size and a.dtype.kind == "f"]
    return max(sizes, default=0.0)


def probe_dims(
    rubric: Rubric, equation: Equation, rng: np.random.Generator, fixed: Mapping[str, int], probe: str | None
) -> dict[str, int]:
    names = dims_used(equation)
    ranges = rubric.settings.dims
    if probe == "square":
        return square_dims(names, ranges, rng)
    floors = {}
    if probe in ("labels_repeat", "labels_one_class"):
        floors = {d: 2 for spec in equation.inputs if spec.kind == "labels" for d in spec.shape if isinstance(d, str)}
    return draw_dims(rng, names, ranges, fixed, floors)


def build_case(
    rubric: Rubric,
    equation: Equation,
    reference: ModuleType,
    rng: np.random.Generator,
    index: int,
    visible: bool,
    fixed: Mapping[str, int],
    probe: str | None = None,
) -> Case:
    dims = probe_dims(rubric, equation, rng, fixed, probe)
    fd = equation.finite_difference
    kink = (fd.kink_input, fd.kink_at) if probe == "kinks" and fd.kink_input is not None else None
    inputs: dict[str, np.ndarray] = {}
    where = f"{rubric.path}: {equation.id}"
    # Instructor code and rubric cross-references fail here, not in a student's grade.
    try:
        for spec in equation.inputs:
            inputs[spec.name] = draw_input(rng, spec, dims, inputs, reference, kink, probe)
        for value in inputs.values():
            value.setflags(write=False)
        args = [inputs[name].copy() for name in equation.args]
        expected = np.asarray(getattr(reference, equation.function)(*args), dtype=np.float64)
        fd_expected, fd_mask = finite_difference(getattr(reference, fd.forward), fd, inputs, rubric.settings.fd_step)
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
            f"{rubric.path}: {equation.id}.finite_difference differentiates {fd.wrt!r} "
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
        scale=magnitude(expected, [inputs[name] for name in equation.args]),
        probe=probe,
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

    The last regular hidden case sets the rubric's batch dimension to 1, so code that
    assumes a batch of several examples (or averages where it should sum) is caught
    there. Then one hidden case per probe, each from its own stream: how many cases an
    equation has depends on its rubric entry only, and adding a probe changes no other case.
    """
    settings = rubric.settings
    cases: dict[str, tuple[Case, ...]] = {}
    for equation in equations or rubric.equations:
        visible_rng = equation_rng(rubric.seed, equation.id, "visible")
        shown = range(settings.visible_cases) if visible else ()
        built = [build_case(rubric, equation, reference, visible_rng, i, True, {}) for i in shown]
        if hidden:
            hidden_rng = equation_rng(hidden_seed, equation.id, "hidden")
            batch = settings.batch_dim if settings.batch_dim in dims_used(equation) else None
            for j in range(settings.hidden_cases):
                fixed = {batch: 1} if batch and j == settings.hidden_cases - 1 else {}
                built.append(
                    build_case(rubric, equation, reference, hidden_rng, settings.visible_cases + j, False, fixed)
                )
            # probes are hidden cases: a rubric with none (cases.hidden: 0) grades what students see
            for k, probe in enumerate(case_probes(equation) if settings.hidden_cases else ()):
                rng = equation_rng(hidden_seed, equation.id, f"probe:{probe}")
                index = settings.visible_cases + settings.hidden_cases + k
                built.append(build_case(rubric, equation, reference, rng, index, False, {}, probe))
        cases[equation.id] = tuple(built)
    return cases
