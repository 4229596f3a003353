"""Which of the file's names the student meant, when the rubric's function is missing.

The rule ``feedback.missing`` words (and ``untrusted/student/selfcheck_faults.py`` repeats, without
importing the grader): equal once case and underscores are folded, else one edit away;
never a name the rubric asks for elsewhere, however spelt, and never a likeness that is
only a shared prefix.
"""

from __future__ import annotations

from collections.abc import Sequence


def fold(name: str) -> str:
    """A name as a student may mistype it: case and underscores don't count (myFunc1 is my_func1)."""
    return name.replace("_", "").lower()


def one_edit_apart(a: str, b: str) -> bool:
    """One letter inserted, deleted, replaced, or two neighbours swapped."""
    if a == b or abs(len(a) - len(b)) > 1:
        return a == b
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]])
    short, long_ = sorted((a, b), key=len)
    return any(long_[:i] + long_[i + 1 :] == short for i in range(len(long_)))


def near_name(function: str, names: Sequence[str], others: Sequence[str] = ()) -> str | None:
    """The file's name the student most likely meant: equal once folded, else one edit away.

    A name the rubric asks for elsewhere is never offered (f_w1 is not a typo of f_b1),
    and a shared prefix alone is no likeness.
    """
    taken = {fold(o) for o in others}  # a misspelt required function is not a typo of this one
    candidates = [n for n in names if n != function and fold(n) not in taken]
    target = fold(function)
    for test in (lambda n: fold(n) == target, lambda n: len(target) > 3 and one_edit_apart(fold(n), target)):
        found = sorted(n for n in candidates if test(n))
        if found:
            return found[0]
    return None
