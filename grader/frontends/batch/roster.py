"""The class roster: which submissions a batch grades, whose they are, and which file to grade.

Three layouts are understood:

* a folder of ``.py`` files, one per student (the file's stem names the submission);
* a folder of per-student folders (the folder names the submission; the file graded is
  the one named like the rubric's ``submission_filename``, or the only ``.py`` file);
* a Gradescope "Export Submissions" zip or its unpacked folder: ``submission_metadata.yml``
  beside one folder per submission, mapped to each submitter's name, email and SID.

Nothing here reads a submission's content, and nothing here raises for a single bad
entry: a submission without a gradable file still gets a ``Submission`` whose
``problem`` says why, so the batch can write a report that explains it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import yaml

from grader.errors import GraderError
from grader.frontends.choice import SKIPPED_FOLDERS, choose_file, file_problem
from grader.grading.pipeline import MAX_SUBMISSION_BYTES

GRADESCOPE_METADATA = "submission_metadata.yml"
MAX_METADATA_BYTES = 64 * 1024 * 1024
MAX_ZIP_MEMBERS = 200_000
UNPACKED_MARKER = ".unpacked-from"


class RosterError(GraderError):
    """The batch input cannot be read as a class (not a single submission's fault)."""


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


class _TolerantLoader(yaml.SafeLoader):
    """Gradescope writes Ruby-flavoured YAML; unknown ``!tags`` are read as plain data."""


def _untagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_TolerantLoader.add_multi_constructor("!", _untagged)
_TolerantLoader.add_multi_constructor("tag:", _untagged)


def _field(record: dict, key: str):
    """Gradescope's keys are Ruby symbols (``:submitters``); accept them with or without the colon."""
    return record.get(f":{key}", record.get(key)) if isinstance(record, dict) else None


def read_gradescope_metadata(path: Path) -> dict[str, dict[str, str]]:
    """Folder name -> {name, email, sid} from ``submission_metadata.yml`` (group members joined by "; ")."""
    try:
        if path.stat().st_size > MAX_METADATA_BYTES:
            raise RosterError(f"{path}: is over {MAX_METADATA_BYTES // 2**20} MiB; is this a Gradescope export?")
        raw = yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=_TolerantLoader)  # noqa: S506
    except (OSError, yaml.YAMLError) as err:
        raise RosterError(f"{path}: cannot read the Gradescope metadata ({err})") from err
    if not isinstance(raw, dict):
        raise RosterError(f"{path}: expected a mapping of submission folders to their submitters")
    people: dict[str, dict[str, str]] = {}
    for folder, record in raw.items():
        submitters = _field(record, "submitters") or []
        if not isinstance(submitters, list):
            submitters = []
        who = {}
        for key in ("name", "email", "sid"):
            values = [str(_field(s, key)) for s in submitters if _field(s, key) not in (None, "")]
            who[key] = "; ".join(values)
        people[str(folder)] = who
    return people


def find_metadata(folder: Path) -> Path | None:
    """``submission_metadata.yml`` at the top of the folder or one level down (the zip's export folder)."""
    direct = folder / GRADESCOPE_METADATA
    if direct.is_file():
        return direct
    nested = sorted(p / GRADESCOPE_METADATA for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    found = [p for p in nested if p.is_file()]
    return found[0] if len(found) == 1 else None


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
    """A folder of ``.py`` files and/or per-student folders."""
    items = sorted(
        (p for p in root.iterdir() if not p.name.startswith(".") and p.name not in SKIPPED_FOLDERS),
        key=lambda p: natural_key(p.name),
    )
    items = [p for p in items if p.suffix == ".py" or p.is_dir()]
    names = [p.stem if p.suffix == ".py" and not p.is_dir() else p.name for p in items]
    return [entry(sub_id, item, root, wanted) for sub_id, item in zip(unique_ids(names), items)]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def member_path(name: str) -> PurePosixPath | None:
    """A zip member's relative path, or None when it would escape the folder it is unpacked into."""
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or any(part in ("..", "") for part in path.parts) or ":" in path.parts[0]:
        return None
    return path


def unpack_export(archive: Path, dest: Path) -> Path:
    """Unpack the ``.py`` files and the metadata of a Gradescope zip into ``dest``, once.

    Only what the batch needs is unpacked (PDFs and notebooks are not), each file capped
    just over the submission size limit so an oversized file is still reported as such;
    symbolic links and paths that would escape ``dest`` are skipped. A marker records
    the zip's sha256, so a rerun reuses the folder and a new export replaces it.
    """
    try:
        digest = sha256_file(archive)
    except OSError as err:
        raise RosterError(f"{archive}: cannot read the zip ({err.strerror})") from err
    marker = dest / UNPACKED_MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=dest.parent))
    try:
        with zipfile.ZipFile(archive) as zipped:
            members = zipped.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise RosterError(f"{archive}: has {len(members)} entries, more than {MAX_ZIP_MEMBERS}")
            for info in members:
                relative = member_path(info.filename)
                if relative is None:
                    continue
                folder = relative if info.is_dir() else relative.parent
                staging.joinpath(*folder.parts).mkdir(parents=True, exist_ok=True)  # a folder with no .py still shows
                if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
                    continue
                if relative.suffix != ".py" and relative.name != GRADESCOPE_METADATA:
                    continue
                cap = MAX_METADATA_BYTES if relative.name == GRADESCOPE_METADATA else MAX_SUBMISSION_BYTES + 1
                target = staging.joinpath(*relative.parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zipped.open(info) as source, open(target, "wb") as sink:
                    sink.write(source.read(cap))
        (staging / UNPACKED_MARKER).write_text(digest + "\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staging, dest)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, ValueError) as err:
        raise RosterError(f"{archive}: not a zip file the grader can read ({err})") from err
    except OSError as err:
        raise RosterError(f"{archive}: cannot unpack into {dest} ({err})") from err
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


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
            f"{source}: no submissions found; expected .py files, one folder per student, "
            f"or a Gradescope export ({GRADESCOPE_METADATA} with one folder per submission)"
        )
    return sorted(submissions, key=lambda s: natural_key(s.id)), root
