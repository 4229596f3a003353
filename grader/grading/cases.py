"""Which test cases an item has: how many, from which seeds and streams, probes, variants, sizes.

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

Each case's inputs and both oracles' answers are built in ``case.py``.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Mapping
from types import ModuleType

import numpy as np

from grader.assignment.rubric import CASE_PROBES, Equation, Rubric
from grader.errors import RubricError
from grader.grading.case import Case, build_case, draw_case, probe_dims
from grader.grading.draws import dim_rules, dims_used, repeated_sizes


def derive_hidden_seed(rubric_seed: int, submission_sha256: str) -> int:
    """The default hidden seed: the rubric's seed mixed with the submission's hash."""
    digest = hashlib.sha256(f"{rubric_seed}:{submission_sha256}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def equation_rng(seed: int, equation_id: str, stream: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(f"{stream}:{equation_id}".encode())]))


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
