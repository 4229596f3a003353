"""What grading needs of a rubric before any submission: its trusted modules, visible cases and call count.

The reference, the mistake catalog and the visible cases depend on the rubric alone
(visible cases come from the rubric's seed; hidden ones from each submission's). An
entry point that grades many submissions against one rubric (a batch worker) prepares
once and passes the ``Preparation`` to every ``grade_submission``; one that grades a
single file lets ``grade_submission`` prepare its own. The visible cases' sizes, which
every submission's hidden cases must differ from (``cases.differ_from_visible``), are
read off these cases rather than replayed.

``call_count`` is how many calls a submission's grade makes, known before any case is
built, so the child can be started (its CPU limit set from it) while the cases are.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType

import numpy as np

from grader.assignment.reference import load_mistakes, load_reference
from grader.assignment.rubric import Rubric
from grader.grading.case import Case
from grader.grading.cases import build_cases, case_probes


@dataclass(frozen=True, eq=False)
class Preparation:
    """One rubric's reference and mistake modules, loaded, and its visible cases, built (arrays read-only)."""

    rubric: Rubric
    reference: ModuleType
    mistakes: ModuleType | None
    visible: Mapping[str, tuple[Case, ...]]


def prepare(rubric: Rubric) -> Preparation:
    """Load the rubric's trusted modules and build its visible cases (ReferenceModuleError if they fail)."""
    reference = load_reference(rubric)
    mistakes = load_mistakes(rubric)
    visible = build_cases(rubric, reference, 0, hidden=False)
    for cases in visible.values():
        for case in cases:
            freeze(case)
    return Preparation(rubric, reference, mistakes, MappingProxyType(visible))


def freeze(case: Case) -> None:
    """Make a case's answers read-only: shared by every grade of a worker, none may change them for the next."""
    arrays = [case.expected, case.fd_expected, case.fd_mask]
    arrays += [a for part in case.parts for a in (part.expected, part.fd_expected, part.fd_mask)]
    for array in arrays:
        if isinstance(array, np.ndarray):
            array.setflags(write=False)


def call_count(rubric: Rubric) -> int:
    """How many calls a grade makes (``pipeline.call_order``'s length), from the rubric alone.

    Every case of every item (visible, hidden, one per probe and per variant), and
    the ``repeat_call`` probe's second call of an item's first case.
    """
    settings = rubric.settings
    total = 0
    for eq in rubric.equations:
        hidden = settings.hidden_cases + len(case_probes(eq)) + len(eq.variants) if settings.hidden_cases else 0
        cases = settings.visible_cases + hidden
        total += cases + (1 if eq.repeat_call and cases and settings.hidden_cases else 0)
    return total
