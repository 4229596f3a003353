"""An autograder platform's folder: one root, found, read and locked down the same way by both runners.

Gradescope runs the grader under ``/autograder`` and PrairieLearn under ``/grade``. Both
put the instructor's files (the grader, the rubric, the reference, a manifest naming the
rubric) in one folder and the student's in another, and read ``results/results.json``,
which must always be written. Each runner names its own folders
(``gradescope/runner.py``'s ``AutograderPaths``, ``prairielearn/runner.py``'s
``GradePaths``); this module is what they share: which root (``--root``, else the
runner's environment variable, which the tests set, else the platform's default), the
results file, the manifest, and the permissions that keep the sandbox uid away from the
grader's files and the grade.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.errors import RubricError
from grader.files import close_to_others


def root_folder(root: str | Path | None, env: str, default: str) -> Path:
    """``root``, else ``$env``, else ``default``, made absolute (the runner may be started anywhere)."""
    return Path(os.path.abspath(root or os.environ.get(env) or default))


class Under:
    """A path under a layout's root, read as an attribute: ``source = Under("source")``."""

    def __init__(self, *parts: str) -> None:
        self.parts = parts

    def __get__(self, layout: AutograderRoot | None, owner: type | None = None) -> Path:
        return self if layout is None else layout.root.joinpath(*self.parts)


@dataclass(frozen=True)
class AutograderRoot:
    """A platform's layout under one root (its default there, a temporary folder in tests).

    Each runner's subclass names its platform's folders with ``Under``.
    """

    root: Path
    results = Under("results")
    results_file = Under("results", "results.json")


def secure_layout(paths: AutograderRoot, private: Iterable[Path]) -> None:
    """As root: the results folder root's and closed to writes, each ``private`` folder root-only.

    The sandbox already hides the rubric and reference folders and runs student code as
    another uid; this makes the same true of plain file permissions, whatever the
    platform's image did. Not root (a test, an instructor's laptop): the results folder
    is only made.
    """
    paths.results.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return
    os.chown(paths.results, 0, 0)
    os.chmod(paths.results, 0o755)
    for folder in private:
        if folder.is_dir():
            close_to_others(folder)


def manifest_rubric(manifest: Path, what: str, rebuild: str) -> Path:
    """The rubric named by ``manifest`` (``{"rubric": path}``, relative to its folder); a RubricError saying
    ``what`` could not be read and to ``rebuild`` otherwise."""
    try:
        return manifest.parent / json.loads(manifest.read_text(encoding="utf-8"))["rubric"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise RubricError(f"{manifest}: cannot read {what} ({err}); {rebuild}") from err
