"""One submission's costs as a whole: a wall-clock budget, and no restarts for a child that keeps dying.

The per-call and import limits bound one call; a submission can still cost them again
and again: each crash restarts the child, which imports the file again. So every
``Sandbox`` also has a budget for all its imports and calls together
(``submission_time_limit``), and a function whose calls ended the child the same way
``SAME_DEATHS`` times in a row is not given a fresh child again. Cases refused either way come
back as ``CallStatus.NOT_RUN`` with the reason as a code (``problem``: ``time_limit``,
with the limit, or ``same_deaths``); ``grader/grading/feedback.py`` words it, so the
report says why they were not run in the grader's own words.

A function's deaths don't stop the others (each item is graded on its own); the
budget does, as it must for the cost to be bounded.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

from grader.sandbox.outcomes import CallOutcome, CallStatus

SAME_DEATHS = 2  # identical deaths in a row of one function's calls before it is not restarted for it


class Budget:
    """The wall clock left to a submission and the deaths seen per function; the sandbox asks before each call."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self.end = clock() + seconds
        self.deaths: Counter[tuple] = Counter()
        self.stopped: set[str] = set()

    def extend(self, seconds: float) -> None:
        """End ``seconds`` later: time the parent spent on its own work (before the first call, while a
        begun child imported; waiting on an import run again) is not the submission's."""
        self.end += max(0.0, seconds)

    def deadline(self, own: float) -> float:
        """A call's or import's deadline, cut to the end of the budget."""
        return min(own, self.end)

    def cut(self, deadline: float) -> bool:
        """Did the budget, not the call's own limit, end a wait that ran to ``deadline``?"""
        return deadline >= self.end

    def spent(self) -> CallOutcome:
        return CallOutcome(CallStatus.NOT_RUN, problem="time_limit", limit=self.seconds)

    def refusal(self, function: str) -> CallOutcome | None:
        """Why ``function`` must not be called now, as the outcome to report; None when it may be."""
        if self.clock() >= self.end:
            return self.spent()
        if function in self.stopped:
            return CallOutcome(CallStatus.NOT_RUN, problem="same_deaths")
        return None

    def answered(self, function: str) -> None:
        """A call of ``function`` was answered: it does not keep dying, so its count starts again."""
        for key in [key for key in self.deaths if key[0] == function]:
            del self.deaths[key]

    def record(self, function: str, outcome: CallOutcome) -> CallOutcome:
        """Count ``outcome`` if the child died in it; returns it unchanged.

        "The same way" is the kind of death, not its details: any exit code is an exit (a
        submission can't dodge the rule by changing it), a signal is its name.
        """
        died = outcome.status == CallStatus.CRASHED or (
            outcome.status == CallStatus.EXITED and outcome.exit_code is not None
        )
        if died:  # an EXITED without a code caught SystemExit: the child lives on
            key = (function, outcome.status, outcome.error_type)
            self.deaths[key] += 1
            if self.deaths[key] >= SAME_DEATHS:
                self.stopped.add(function)
        return outcome
