"""Grading the ``layers`` content in-process, without the engine: cases, items and their outcomes.

A stand-in for the grader, written only to check the assignment's content (the
reference, the mistake catalog and the fixture corpus) on its own: it draws cases
with the features rubrics/layers.yaml's cases have (affine x of 2, 3 and 4
dimensions, ReLU inputs with exact zeros, N = 1 and N > 1, batchnorm from an empty
``bn_param``, in test mode with given statistics and after train calls on the same dict, with a low variance
and a large eps, seeded dropout in both modes, conv with stride 1 to 3, pad 0 to 2
and a 1 x 1 kernel, square, non-square and 1 x 1 pools, overlapping and not), calls a module's functions the
way the cache contract says (a backward gets the cache its own module's forward
made, and an upstream gradient shaped like the reference forward's output) and
compares every item with the reference at rtol 1e-5 of the case's magnitude.

Trusted code only: the fixtures and the catalog run in this process.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np

REPO = Path(__file__).resolve().parent.parent
RTOL, ATOL = 1e-5, 1e-8


def load(path: Path) -> ModuleType:
    """Import a file under a name of its own (fixtures share function names, never module names)."""
    spec = importlib.util.spec_from_file_location(f"_layers_{abs(hash(str(path)))}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REF = load(REPO / "solutions" / "layers.py")
MISTAKES = load(REPO / "solutions" / "layers_mistakes.py")
FUNCTIONS = (
    "affine_forward affine_backward relu_forward relu_backward softmax_loss batchnorm_forward batchnorm_backward "
    "dropout_forward dropout_backward conv_forward_naive conv_backward_naive max_pool_forward_naive "
    "max_pool_backward_naive"
).split()


@dataclass(frozen=True)
class Item:
    """One graded value: a function's slot (or its only return), or an entry it leaves in a dict argument."""

    function: str
    slot: int | None = None
    forward: str | None = None  # a backward's forward: its cache comes from the same module
    key: str | None = None  # graded entry of the last argument (bn_param) after the call
    train_only: bool = False


ITEMS = {
    "affine_forward.out": Item("affine_forward", 0),
    "affine_backward.dx": Item("affine_backward", 0, "affine_forward"),
    "affine_backward.dw": Item("affine_backward", 1, "affine_forward"),
    "affine_backward.db": Item("affine_backward", 2, "affine_forward"),
    "relu_forward.out": Item("relu_forward", 0),
    "relu_backward": Item("relu_backward", None, "relu_forward"),
    "softmax_loss.loss": Item("softmax_loss", 0),
    "softmax_loss.dx": Item("softmax_loss", 1),
    "batchnorm_forward.out": Item("batchnorm_forward", 0),
    "batchnorm_forward.running_mean": Item("batchnorm_forward", None, key="running_mean", train_only=True),
    "batchnorm_forward.running_var": Item("batchnorm_forward", None, key="running_var", train_only=True),
    "batchnorm_backward.dx": Item("batchnorm_backward", 0, "batchnorm_forward", train_only=True),
    "batchnorm_backward.dgamma": Item("batchnorm_backward", 1, "batchnorm_forward", train_only=True),
    "batchnorm_backward.dbeta": Item("batchnorm_backward", 2, "batchnorm_forward", train_only=True),
    "dropout_forward.out": Item("dropout_forward", 0),
    "dropout_backward": Item("dropout_backward", None, "dropout_forward"),
    "conv_forward_naive.out": Item("conv_forward_naive", 0),
    "conv_backward_naive.dx": Item("conv_backward_naive", 0, "conv_forward_naive"),
    "conv_backward_naive.dw": Item("conv_backward_naive", 1, "conv_forward_naive"),
    "conv_backward_naive.db": Item("conv_backward_naive", 2, "conv_forward_naive"),
    "max_pool_forward_naive.out": Item("max_pool_forward_naive", 0),
    "max_pool_backward_naive": Item("max_pool_backward_naive", None, "max_pool_forward_naive"),
}


@dataclass(frozen=True, eq=False)  # cases compare by identity: each is drawn once per seed
class Case:
    """A forward call's arguments; ``warmup`` names a train call on the same bn_param before a test call."""

    args: tuple
    warmup: tuple | None = None
    train: bool = True


def _no_ties(rng, shape):
    """Distinct values at least 0.05 apart, shuffled: every pooling window has one maximum."""
    size = int(np.prod(shape))
    return (rng.permutation(size) * 0.05 - size * 0.025 + rng.uniform(0, 0.01)).reshape(shape)


def _zeros(rng, shape, fraction=0.25):
    x = rng.normal(size=shape)
    x[rng.random(shape) < fraction] = 0.0
    return x


@functools.cache
def cases(function: str, seed: int) -> tuple[Case, ...]:
    """The cases of one forward function (a backward item uses its forward's cases); drawn once per seed."""
    rng = np.random.default_rng([seed, FUNCTIONS.index(function)])
    n = lambda *s: rng.normal(size=s)  # noqa: E731
    if function == "affine_forward":
        shapes = [(4, 5), (1, 6), (3, 2, 4), (2, 3, 2, 2), (5, 3, 1, 2)]
        return [Case((n(*s), n(int(np.prod(s[1:])), 3 + i % 2), n(3 + i % 2))) for i, s in enumerate(shapes)]
    if function == "relu_forward":
        return [Case((_zeros(rng, s),)) for s in [(4, 5), (1, 7), (3, 2, 4), (2, 3, 2, 2)]]
    if function == "softmax_loss":
        return [Case((2.0 * n(N, C), rng.integers(0, C, N))) for N, C in [(5, 4), (1, 3), (7, 2), (3, 6), (6, 5)]]
    if function == "batchnorm_forward":
        D = 4
        g, b = lambda: 1 + 0.5 * n(D), lambda: n(D)  # noqa: E731
        stats = lambda: {"running_mean": n(D), "running_var": rng.uniform(0.5, 2, D)}  # noqa: E731
        return [
            Case((3 + 2 * n(6, D), g(), b(), {"mode": "train"})),
            Case((n(5, D), g(), b(), {"mode": "train", "momentum": 0.8, "eps": 1e-4, **stats()})),
            Case((1 + 1e-3 * n(6, D), g(), b(), {"mode": "train"})),
            Case((n(4, D), g(), b(), {"mode": "train", "eps": 0.5, **stats()})),
            Case((n(5, D), g(), b(), {"mode": "test", **stats()}), train=False),
            Case((n(3, D), g(), b(), {"mode": "test"}), warmup=(2 + n(6, D),), train=False),
            Case((n(5, D), g(), b(), {"mode": "test", "momentum": 0.7, **stats()}), warmup=(n(4, D),), train=False),
        ]
    if function == "dropout_forward":
        shapes = [(4, 5), (3, 2, 4), (6, 3), (2, 2, 3, 3)]
        train = [
            Case((n(*s), {"p": p, "mode": "train", "seed": 11 + i}))
            for i, (s, p) in enumerate(zip(shapes, (0.3, 0.6, 0.8, 0.45)))
        ]
        test = [
            Case((n(4, 5), {"p": 0.6, "mode": "test", "seed": 5}), train=False),
            Case((n(3, 3), {"p": 0.3, "mode": "test", "seed": 3}), train=False),
        ]
        return train + test
    if function == "conv_forward_naive":
        # (N, C, H, W, F, HH, WW, stride, pad)
        shapes = [
            (2, 3, 5, 6, 2, 3, 3, 1, 1),
            (1, 2, 7, 6, 3, 3, 2, 2, 1),
            (2, 1, 6, 6, 2, 2, 2, 2, 0),
            (1, 3, 4, 5, 2, 3, 3, 1, 2),
            (2, 2, 7, 8, 2, 3, 2, 3, 1),
            (1, 2, 5, 5, 3, 2, 2, 1, 0),
            (2, 2, 4, 5, 2, 1, 1, 2, 1),
        ]
        return [
            Case((n(N, C, H, W), n(F, C, HH, WW), n(F), {"stride": s, "pad": p}))
            for N, C, H, W, F, HH, WW, s, p in shapes
        ]
    if function == "max_pool_forward_naive":
        # (N, C, H, W, pool_height, pool_width, stride)
        shapes = [
            (2, 3, 4, 4, 2, 2, 2),
            (1, 2, 7, 6, 3, 2, 2),
            (2, 2, 5, 6, 2, 3, 1),
            (1, 3, 6, 6, 3, 3, 2),
            (2, 1, 7, 5, 2, 2, 3),
            (1, 2, 4, 5, 1, 1, 1),
        ]
        return [
            Case((_no_ties(rng, (N, C, H, W)), {"pool_height": ph, "pool_width": pw, "stride": s}))
            for N, C, H, W, ph, pw, s in shapes
        ]
    raise KeyError(function)


def item_cases(item_id: str, seed: int) -> tuple[Case, ...]:
    item = ITEMS[item_id]
    every = cases(item.forward or item.function, seed)
    return tuple(c for c in every if c.train) if item.train_only else every


def call(module, item_id: str, case: Case, seed: int):
    """The graded value of one item on one case, as the module computes it (raises what it raises)."""
    item = ITEMS[item_id]
    args = copy.deepcopy(case.args)
    forward = getattr(module, item.forward or item.function)
    if case.warmup is not None:  # a train call on the same dict first, then the graded test call
        param = args[3]
        param["mode"] = "train"
        forward(*copy.deepcopy(case.warmup), *args[1:3], param)
        param["mode"] = "test"
    result = _tuple(forward(*args), 2, forward)
    if item.forward is not None:
        dout = _upstream(item, case, seed)
        result = getattr(module, item.function)(dout, result[1])
        if item.slot is not None:
            result = _tuple(result, 3, item.function)
    if item.key is not None:
        return args[-1].get(item.key)
    return result if item.slot is None else result[item.slot]


class BadReturn(Exception):
    """A function returned no tuple where the API has one, or one of the wrong length: a wrong answer, not a crash."""


def _tuple(result, count: int, function) -> tuple:
    if not isinstance(result, (tuple, list)) or len(result) != count:
        raise BadReturn(f"{function}: expected a tuple of {count}")
    return tuple(result)


def _upstream(item: Item, case: Case, seed: int) -> np.ndarray:
    """dout for a backward: shaped like the REFERENCE forward's output, the same for every module."""
    shape = np.shape(expected(f"{item.forward}.out", case, seed))
    return np.random.default_rng([seed, 99, len(shape), *shape]).normal(size=shape)


@functools.cache
def _expected(item_id: str, case_index: int, function: str, seed: int):
    return call(REF, item_id, cases(function, seed)[case_index], seed)


def expected(item_id: str, case: Case, seed: int):
    """The reference's value of an item on a case, computed once (cases are drawn once per seed)."""
    function = ITEMS[item_id].forward or ITEMS[item_id].function
    return _expected(item_id, cases(function, seed).index(case), function, seed)


def with_function(name: str, function) -> SimpleNamespace:
    """The reference with one function replaced (how a catalog mistake is graded: its backward gets the reference's cache)."""
    return SimpleNamespace(**{f: function if f == name else getattr(REF, f) for f in FUNCTIONS})


def magnitude(case: Case, expected) -> float:
    arrays = [np.asarray(expected, dtype=float)] + [np.asarray(a) for a in case.args if isinstance(a, np.ndarray)]
    return max(float(np.max(np.abs(a))) if a.size else 0.0 for a in arrays)


def compare(got, expected, scale: float) -> str:
    """'ok', 'shape' (right values in a shape that differs only by size-1 axes) or 'wrong'."""
    try:
        got = np.asarray(got, dtype=float)
    except (TypeError, ValueError):
        return "wrong"
    expected = np.asarray(expected, dtype=float)
    same = lambda a: bool(np.all(np.abs(a - expected) <= ATOL + RTOL * scale))  # noqa: E731
    if got.shape == expected.shape:
        return "ok" if same(got) else "wrong"
    squeezed = tuple(d for d in got.shape if d != 1) == tuple(d for d in expected.shape if d != 1)
    return "shape" if squeezed and same(got.reshape(expected.shape)) else "wrong"


def outcome(module, item_id: str, case: Case, seed: int) -> str:
    """How one case of one item comes out: a compare() word, 'raise', 'not_implemented' or 'missing'."""
    item = ITEMS[item_id]
    if not all(callable(getattr(module, f, None)) for f in (item.function, item.forward) if f):
        return "missing"
    want = expected(item_id, case, seed)
    try:
        got = call(module, item_id, case, seed)
    except NotImplementedError:
        return "not_implemented"
    except BadReturn:
        return "wrong"
    except Exception:  # noqa: BLE001 - a submission's crash is an outcome
        return "raise"
    return compare(got, want, magnitude(case, want))


def status(outcomes: list[str]) -> str:
    """The grader's status word for an item from its cases' outcomes."""
    kinds = set(outcomes)
    for word in ("missing", "not_implemented"):
        if kinds == {word}:
            return word
    if kinds == {"ok"}:
        return "passed"
    if kinds == {"shape"}:
        return "shape_credit"
    if kinds == {"raise"}:
        return "error"
    return "partial" if kinds & {"ok", "shape"} else "failed"
