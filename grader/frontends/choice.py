"""Which file of a submission folder to grade: one rule for the batch roster and the autograder runners.

A student's upload is a folder (Gradescope's ``/autograder/submission``, one folder of a
class export, a repository) that may hold helpers, old attempts, macOS metadata and
caches beside the file to grade. The rule, the same wherever a folder is graded:

1. the candidates are the ``.py`` files and notebooks (``.ipynb``) at most ``MAX_FOLDER_DEPTH`` folders down,
   outside hidden, cache and metadata folders (the bound also keeps a hostile upload
   thousands of folders deep from costing more than a few);
2. the file named as the rubric's ``submission_filename`` wins (``hw.py`` or ``hw.ipynb`` for
   either, the rubric's own suffix first): the one at the top level,
   else the only one of that name anywhere; then the only one of that name ignoring case;
   else the only candidate. None, or several at the step that decided, is a problem for
   the student to fix, with the names to choose from;
3. the chosen path must be a regular file inside the folder: a symbolic link out of it
   (``answer.py -> the reference``) or a named pipe is never opened.

Nothing here reads a file's content, and nothing raises for what a student uploaded: the
choice is data, worded for a class roster (plain text) or for the student (Markdown).
"""

from __future__ import annotations

import enum
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from grader.frontends.markdown import code_span, escape_markdown
from grader.grading.notebook import accepted_names, is_submission_name
from grader.grading.report import display_text

MAX_FOLDER_DEPTH = 6
SKIPPED_FOLDERS = frozenset({"__pycache__", "__MACOSX", ".git", ".ipynb_checkpoints", "node_modules"})
SHOWN = 5  # names listed when several files could be meant


def listing(names: list[str]) -> str:
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


class Problem(enum.Enum):
    NO_FILE = "no_file"
    SEVERAL_NAMED = "several_named"  # several files carry the rubric's name
    SEVERAL = "several"  # several .py files or notebooks, none named as the rubric asks
    UNSAFE = "unsafe"  # the one file is a link out of the folder, a pipe, ...


@dataclass(frozen=True)
class FileChoice:
    """The file to grade in ``folder`` (``path``), or (``path`` None) what kind of problem stops it, about which files."""

    folder: Path
    wanted: str | None
    path: Path | None
    kind: Problem | None = None
    candidates: tuple[Path, ...] = ()  # for SEVERAL*: the files it could be; for UNSAFE: the one file
    reason: str = ""  # for UNSAFE: what is wrong with it (see file_problem)

    def names(self) -> list[str]:
        return [display_text(p.relative_to(self.folder).as_posix()) for p in self.candidates]

    def plain(self, where: str) -> str:
        """The problem in a class roster's words (``where`` is the folder as the instructor knows it); "" if none."""
        names = self.names()
        listed = listing(names)
        where = display_text(where)
        if self.kind is Problem.NO_FILE:
            return f"no .py file or notebook in {where}/"
        if self.kind is Problem.SEVERAL_NAMED:
            return f"{len(names)} files named {self.wanted} in {where}/ ({listed}): keep only the one to grade"
        if self.kind is Problem.SEVERAL:
            hint = f" and none is named {self.wanted}" if self.wanted else ""
            return f"{len(names)} .py files or notebooks in {where}/ ({listed}){hint}: keep only the one to grade"
        if self.kind is Problem.UNSAFE:
            return f"{where}/{names[0]} {self.reason}"
        return ""

    @property
    def problem(self) -> str:
        """The problem in the student's words, as Markdown (file names in code spans); "" if none."""
        names = [code_span(name) for name in self.names()]
        listed = listing(names)
        upload = f"Upload your {code_span(self.wanted)}" if self.wanted else "Upload your .py file or notebook"
        unclear = "so it is not clear which to grade. Submit again with"
        if self.kind is Problem.NO_FILE:
            return f"No Python file was found in your submission. {upload} and submit again."
        if self.kind is Problem.SEVERAL_NAMED:
            named = f"{len(names)} files named {code_span(self.wanted)}"
            return f"Your submission has {named} ({listed}), {unclear} only one of them."
        if self.kind is Problem.SEVERAL and self.wanted:
            return (
                f"Your submission has {len(names)} .py files or notebooks ({listed}) and none is named "
                f"{code_span(self.wanted)}, "
                f"{unclear} the file to grade named {code_span(self.wanted)} (or only that file)."
            )
        if self.kind is Problem.SEVERAL:
            return (
                f"Your submission has {len(names)} .py files or notebooks ({listed}), {unclear} only the file to grade."
            )
        if self.kind is Problem.UNSAFE:
            return f"{names[0]} {escape_markdown(self.reason)}. {upload} itself."
        return ""


def file_problem(path: Path, confine: Path | None = None) -> str:
    """Why ``path`` cannot be graded as a file, or "" when it can be read safely.

    Checked before anything opens the file: a named pipe would block the reader, and a
    symbolic link in a student's folder that leads out of it (``answer.py -> /etc/shadow``)
    could make the grader read, and a syntax error quote, a file the student should
    never see. Links the instructor made at the top of a class folder are followed.
    """
    try:
        target = path.resolve(strict=True)
        mode = target.stat().st_mode
    except FileNotFoundError:
        return "is a broken symbolic link"
    except (OSError, RuntimeError) as err:  # RuntimeError: a loop of links
        return f"cannot be inspected ({getattr(err, 'strerror', None) or 'a loop of symbolic links'})"
    if confine is not None and not target.is_relative_to(confine.resolve()):
        return "is a symbolic link to a file outside the student's folder; copy the file in instead"
    if stat.S_ISDIR(mode):
        return "is a folder, not a .py file"
    if not stat.S_ISREG(mode):
        return "is not a regular file (a pipe, socket or device)"
    return ""


def python_files(folder: Path) -> list[Path]:
    """The ``.py`` files and notebooks under ``folder`` (not in hidden or skipped folders, not deeper than the bound), shallowest first."""
    found = []
    for here, dirs, files in os.walk(folder):  # does not follow symbolic links to folders
        depth = len(Path(here).relative_to(folder).parts)
        dirs[:] = [] if depth >= MAX_FOLDER_DEPTH else [d for d in dirs if d not in SKIPPED_FOLDERS and d[:1] != "."]
        found += [Path(here) / f for f in files if is_submission_name(f) and not f.startswith(".")]
    return sorted(found, key=lambda p: (len(p.relative_to(folder).parts), p.relative_to(folder).as_posix()))


def choose_file(folder: Path, wanted: str | None) -> FileChoice:
    """The file to grade in ``folder`` by the rule above, or the problem with it."""
    candidates = python_files(folder)
    pool, named = candidates, False
    if wanted:
        names = accepted_names(wanted)  # hw.py or hw.ipynb, the rubric's own name first
        same_cases = [lambda got, name=name: got == name for name in names]
        any_case = [lambda got, name=name: got.lower() == name.lower() for name in names]
        for same in same_cases + any_case:
            matching = [p for p in candidates if same(p.name)]
            if matching:
                pool, named = [p for p in matching if p.parent == folder] or matching, True
                break
    if not pool:
        return FileChoice(folder, wanted, None, Problem.NO_FILE)
    if len(pool) > 1:
        return FileChoice(folder, wanted, None, Problem.SEVERAL_NAMED if named else Problem.SEVERAL, tuple(pool))
    reason = file_problem(pool[0], confine=folder)
    if reason:
        return FileChoice(folder, wanted, None, Problem.UNSAFE, (pool[0],), reason)
    return FileChoice(folder, wanted, pool[0])
