"""A Gradescope "Export Submissions" archive: its zip, unpacked safely, and its ``submission_metadata.yml``.

Both come from outside (a download, a colleague) and are read as hostile: the zip's
members may clash, escape the folder or be corrupt, and each bad member costs only
itself; the YAML may be Ruby-flavoured, deeply nested or alias-bombed, and every field
read from it is bounded. What roster.py needs of an export comes from here.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

import yaml

from grader.errors import RosterError
from grader.grading.notebook import is_submission_name, max_bytes

GRADESCOPE_METADATA = "submission_metadata.yml"
MAX_METADATA_BYTES = 64 * 1024 * 1024
MAX_ZIP_MEMBERS = 200_000
UNPACKED_MARKER = ".unpacked-from"
MAX_FIELD_CHARS = 200  # per person and value (a name, an email, a SID), as for a Gradescope submission
MAX_JOINED_CHARS = 1000  # per metadata field, a whole group's values joined
MAX_FOLDER_CHARS = 255  # a folder name the metadata lists: no longer than a file name may be
MAX_ALIAS_NODES = 10_000  # what YAML aliases may add, counted as the nodes they repeat
ZIP_MAGIC = b"PK"


class _TolerantLoader(yaml.SafeLoader):
    """Gradescope writes Ruby-flavoured YAML; unknown ``!tags`` are read as plain data.

    Aliases are allowed (Ruby's writer uses them for repeated objects) but what they
    repeat is counted, node by node, and a file whose aliases would add more than
    ``MAX_ALIAS_NODES`` is refused: 465 bytes of nested aliases ("billion laughs")
    would otherwise stand for gigabytes of names.
    """

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.alias_nodes = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            node = self.anchors.get(self.peek_event().anchor)
            if node is not None:
                self.alias_nodes += expanded_size(node, MAX_ALIAS_NODES - self.alias_nodes + 1)
                if self.alias_nodes > MAX_ALIAS_NODES:
                    raise yaml.YAMLError(f"its aliases expand to over {MAX_ALIAS_NODES} entries")
        return super().compose_node(parent, index)


def expanded_size(node: yaml.Node, limit: int) -> int:
    """How many nodes ``node`` stands for, aliases repeated, counting no further than ``limit``."""
    count, stack = 0, [node]
    while stack and count < limit:
        item = stack.pop()
        count += 1
        if isinstance(item, yaml.SequenceNode):
            stack.extend(item.value)
        elif isinstance(item, yaml.MappingNode):
            stack.extend(part for pair in item.value for part in pair)
    return count


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


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, marked with an ellipsis where cut."""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _scalar(value) -> str:
    """A submitter's name, email or SID as text; anything that is not a plain value counts as absent."""
    if isinstance(value, (str, int, float, datetime.date)) and not isinstance(value, bool):
        return clip(str(value), MAX_FIELD_CHARS)
    return ""


def yaml_problem(err: yaml.YAMLError) -> str:
    """PyYAML's several-line message as one line: what is wrong, and where."""
    if isinstance(err, yaml.MarkedYAMLError):
        mark = err.problem_mark or err.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = err.problem or err.context or "malformed"
        return clip(" ".join(f"{what}{where}".split()), MAX_FIELD_CHARS)
    return clip(" ".join(str(err).split()), MAX_FIELD_CHARS)


def read_gradescope_metadata(path: Path) -> dict[str, dict[str, str]]:
    """Folder name -> {name, email, sid} from ``submission_metadata.yml`` (group members joined by "; ")."""
    try:
        if path.stat().st_size > MAX_METADATA_BYTES:
            raise RosterError(f"{path}: is over {MAX_METADATA_BYTES // 2**20} MiB; is this a Gradescope export?")
        raw = yaml.load(path.read_text(encoding="utf-8", errors="replace"), Loader=_TolerantLoader)  # noqa: S506
    except OSError as err:
        raise RosterError(f"{path}: cannot read the Gradescope metadata ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise RosterError(f"{path}: not valid Gradescope metadata ({yaml_problem(err)})") from err
    except RecursionError as err:
        raise RosterError(f"{path}: not valid Gradescope metadata (nested too deeply)") from err
    if not isinstance(raw, dict):
        raise RosterError(f"{path}: expected a mapping of submission folders to their submitters")
    people: dict[str, dict[str, str]] = {}
    for folder, record in raw.items():
        submitters = _field(record, "submitters") or []
        if not isinstance(submitters, list):
            submitters = []
        who = {}
        for key in ("name", "email", "sid"):
            values = [text for text in (_scalar(_field(s, key)) for s in submitters) if text]
            who[key] = clip("; ".join(values), MAX_JOINED_CHARS)
        people[clip(str(folder), MAX_FOLDER_CHARS) if _scalar(folder) else "submission"] = who
    return people


def find_metadata(folder: Path) -> Path | None:
    """``submission_metadata.yml`` at the top of the folder or one level down (the zip's export folder)."""
    direct = folder / GRADESCOPE_METADATA
    if direct.is_file():
        return direct
    nested = sorted(p / GRADESCOPE_METADATA for p in folder.iterdir() if p.is_dir() and not p.is_symlink())
    found = [p for p in nested if p.is_file()]
    return found[0] if len(found) == 1 else None


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


def unpack_member(zipped: zipfile.ZipFile, info: zipfile.ZipInfo, staging: Path) -> None:
    """Unpack one member the batch needs into ``staging``; a bad member raises ``BadMember``."""
    relative = member_path(info.filename)
    if relative is None:
        return
    folder = relative if info.is_dir() else relative.parent
    try:
        staging.joinpath(*folder.parts).mkdir(parents=True, exist_ok=True)  # a folder with no .py still shows
        if info.is_dir() or stat.S_ISLNK(info.external_attr >> 16):
            return
        if not is_submission_name(relative.name) and relative.name != GRADESCOPE_METADATA:
            return
        cap = MAX_METADATA_BYTES if relative.name == GRADESCOPE_METADATA else max_bytes(relative) + 1
        target = staging.joinpath(*relative.parts)
        try:
            with zipped.open(info) as source, open(target, "wb") as sink:
                sink.write(source.read(cap))
        except BaseException:
            if target.is_file():
                target.unlink()  # never a truncated file that would be graded as if whole
            raise
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as err:
        raise BadMember("a file and a folder of the same name") from err
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, EOFError, zlib.error) as err:
        raise BadMember(str(err)) from err


class BadMember(Exception):
    """One zip member cannot be unpacked (a name clash, a bad checksum, an encrypted entry)."""


def unpack_export(archive: Path, dest: Path) -> Path:
    """Unpack the ``.py`` files, notebooks and the metadata of a Gradescope zip into ``dest``, once.

    Only what the batch needs is unpacked (PDFs are not), each file capped
    just over the submission size limit so an oversized file is still reported as such;
    symbolic links and paths that would escape ``dest`` are skipped, and so is a member
    that cannot be unpacked (a file and a folder of the same name, a corrupt entry): it
    costs that member only, whose student's entry then says what is missing. A marker
    records the zip's sha256, so a rerun reuses the folder and a new export replaces it.
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
                try:
                    unpack_member(zipped, info, staging)
                except BadMember:
                    continue
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


def looks_like_zip(path: Path) -> bool:
    """Named ``.zip`` or starting like one: meant as an export, whether or not it can be read."""
    if path.suffix.lower() == ".zip":
        return True
    try:
        with open(path, "rb") as handle:
            return handle.read(len(ZIP_MAGIC)) == ZIP_MAGIC
    except OSError:
        return False
