"""The class roster: which submissions a batch grades, whose they are, and which file to grade.

Three layouts are understood:

* a folder of ``.py`` files or notebooks, one per student (the file's stem names the submission);
* a folder of per-student folders (the folder names the submission; the file graded is
  the one named like the rubric's ``submission_filename``, as ``.py`` or ``.ipynb``, or
  the only such file);
* a Gradescope "Export Submissions" zip or its unpacked folder: ``submission_metadata.yml``
  beside one folder per submission, mapped to each submitter's name, email and SID
  (reading the zip and the metadata safely is ``export.py``'s job).

Nothing here reads a submission's content, and nothing here raises for a single bad
entry: a submission without a gradable file still gets a ``Submission`` whose
``problem`` says why, so the batch can write a report that explains it.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.errors import RosterError
from grader.frontends.batch.export import (
    GRADESCOPE_METADATA,
    find_metadata,
    looks_like_zip,
    read_gradescope_metadata,
    unpack_export,
)
from grader.frontends.choice import SKIPPED_FOLDERS, choose_file, file_problem
from grader.grading.notebook import is_submission_name


@dataclass(frozen=True)
class Submission:
    """One student's (or group's) entry: where its file is and who it belongs to.

    ``id`` is unique within the class and safe as a file name (it names the report);
    ``path`` is None when no file could be picked, and ``problem`` then says why.
    """

    id: str
    source: str  # the file or folder, relative to the batch input
    path: Path | None
    name: str = ""
    email: str = ""
    sid: str = ""
    problem: str = ""

    def metadata(self) -> dict[str, str]:
        """What goes into the report's ``submission.metadata`` (and from there the gradebook)."""
        return {"id": self.id, "name": self.name, "email": self.email, "sid": self.sid, "source": self.source}


def safe_id(name: str) -> str:
    """A file-name-safe id: letters, digits and ``._@+-`` kept, anything else becomes ``_``."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]", "_", name).lstrip(".")
    return cleaned[:120] or "submission"


def unique_ids(names: Iterable[str]) -> list[str]:
    """Safe ids in the same order, with ``-2``, ``-3``... added where two names clean to the same id."""
    seen: set[str] = set()
    ids = []
    for name in names:
        base = safe_id(name)
        candidate, n = base, 1
        while candidate.lower() in seen:  # case-insensitive: reports may land on a case-insensitive disk
            n += 1
            candidate = f"{base}-{n}"
        seen.add(candidate.lower())
        ids.append(candidate)
    return ids


def natural_key(text: str) -> tuple:
    """Sort ``s2`` before ``s10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


def pick_file(folder: Path, wanted: str | None, root: Path) -> tuple[Path | None, str]:
    """The file to grade in a student's folder, or (None, why not): the rule every front end shares."""
    choice = choose_file(folder, wanted)
    return choice.path, choice.plain(folder.relative_to(root).as_posix())


def entry(sub_id: str, item: Path, root: Path, wanted: str | None, **who: str) -> Submission:
    """A submission for a top-level file or folder of the class."""
    source = item.relative_to(root).as_posix()
    if item.is_dir():
        path, problem = pick_file(item, wanted, root)
        return Submission(sub_id, source, path, problem=problem, **who)
    problem = file_problem(item)
    return Submission(
        sub_id, source, None if problem else item, problem=f"{source} {problem}" if problem else "", **who
    )


def gradescope_submissions(metadata: Path, root: Path, wanted: str | None) -> list[Submission]:
    """One submission per folder the metadata lists; folders it does not list are graded unnamed."""
    export = metadata.parent
    people = read_gradescope_metadata(metadata)
    folders = {
        p.name for p in export.iterdir() if p.is_dir() and not p.name.startswith(".") and p.name not in SKIPPED_FOLDERS
    }
    names = sorted(set(people) | folders, key=natural_key)
    result = []
    for sub_id, name in zip(unique_ids(names), names):
        who = people.get(name, {})
        item = export / name
        if name not in folders:
            source = item.relative_to(root).as_posix()
            problem = f"the export lists {name} but has no folder for it"
            result.append(Submission(sub_id, source, None, problem=problem, **who))
        else:
            result.append(entry(sub_id, item, root, wanted, **who))
    return result


def folder_submissions(root: Path, wanted: str | None) -> list[Submission]:
    """A folder of ``.py`` files or notebooks and/or per-student folders."""
    items = sorted(
        (p for p in root.iterdir() if not p.name.startswith(".") and p.name not in SKIPPED_FOLDERS),
        key=lambda p: natural_key(p.name),
    )
    items = [p for p in items if is_submission_name(p.name) or p.is_dir()]
    names = [p.name if p.is_dir() else p.stem for p in items]
    return [entry(sub_id, item, root, wanted) for sub_id, item in zip(unique_ids(names), items)]


def find_submissions(
    source: Path, wanted: str | None, unpack_to: Path, outdir: Path | None = None
) -> tuple[list[Submission], Path]:
    """Every submission in the batch input, sorted by id, and the folder their sources are relative to.

    ``wanted`` is the rubric's ``submission_filename``; ``unpack_to`` is where a zip is
    unpacked; ``outdir``, when it lies inside a class folder, is not taken for a student.
    """
    if not source.exists():
        raise RosterError(f"{source}: no such file or folder")
    skip = None
    if source.is_file():
        if not zipfile.is_zipfile(source) and looks_like_zip(source):
            raise RosterError(
                f"{source}: is not a readable zip file (damaged or incomplete?); download the Gradescope "
                "export again, or give the folder it unpacks to"
            )
        if not zipfile.is_zipfile(source):
            raise RosterError(
                f"{source}: is a single file; grade it with `grade {source}`, or give a folder of "
                "submissions or a Gradescope export zip"
            )
        source = unpack_export(source, unpack_to)
    elif outdir is not None:
        skip = outdir.resolve()
    root = source.resolve()
    metadata = find_metadata(root)
    submissions = gradescope_submissions(metadata, root, wanted) if metadata else folder_submissions(root, wanted)
    if skip is not None:
        submissions = [s for s in submissions if not (root / s.source).resolve().is_relative_to(skip)]
    if not submissions:
        raise RosterError(
            f"{source}: no submissions found; expected .py files or notebooks, one folder per student, "
            f"or a Gradescope export ({GRADESCOPE_METADATA} with one folder per submission)"
        )
    return sorted(submissions, key=lambda s: natural_key(s.id)), root
