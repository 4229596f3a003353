"""Rubrics: the data that describes an assignment, loaded, validated and frozen.

A rubric is YAML checked against ``grader/schemas/rubric.schema.json`` and then for
consistency (every argument is a declared input, every dimension has a range, every
named function exists in the reference). Any problem becomes one ``RubricError`` line
naming the file and the key path, e.g. ``rubrics/x.yaml: equations[3].points: must be
a number``.
"""

from __future__ import annotations

import functools
import hashlib
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from grader.assignment.cache import cache_key, read_cached, store_cached
from grader.assignment.consistency import check_consistency, check_probes, function_slots
from grader.assignment.items import (
    DimRule,
    Equation,
    FiniteDifference,
    InputSpec,
    Mistake,
    SetupStep,
    Variant,
    parse_dim_rules,
    parse_equation,
    parse_input,
)
from grader.errors import RubricError
from grader.schemas import SCHEMA_DIR, validate_against_schema

__all__ = [
    "DimRule",
    "Equation",
    "FiniteDifference",
    "InputSpec",
    "Mistake",
    "Rubric",
    "Settings",
    "SetupStep",
    "Tolerance",
    "Variant",
    "check_probes",
    "load_rubric",
    "parse_equation",
    "parse_input",
]

# jsonschema and yaml are imported where they are used: together they take longer to
# import than a whole `grade` run with a cached rubric (see grader/assignment/cache.py) needs.

VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
# Probes an equation can ask for (``probes:``): each of these adds one hidden case
# (grader/grading/cases.py) ...
CASE_PROBES = ("square", "kinks", "labels_repeat", "labels_one_class")
# ... and this one calls the function a second time on the first visible case.
CALL_PROBES = ("repeat_call",)


@dataclass(frozen=True)
class Tolerance:
    """A case's output agrees when |got - expected| <= atol + rtol * max|expected| entrywise."""

    rtol: float
    atol: float


@dataclass(frozen=True)
class Settings:
    visible_cases: int = 1
    hidden_cases: int = 4
    dims: Mapping[str, tuple[int, int]] = field(default_factory=lambda: MappingProxyType({}))
    derived: Mapping[str, DimRule] = field(default_factory=lambda: MappingProxyType({}))  # dims from expressions
    batch_dim: str | None = None
    tolerance: Tolerance = Tolerance(rtol=1e-5, atol=1e-8)
    fd_step: float = 1e-6
    fd_tolerance: Tolerance = Tolerance(rtol=1e-5, atol=1e-6)
    time_limit: float = 2.0
    import_time_limit: float = 10.0
    memory_limit_mb: int = 1024
    output_limit_kb: int = 1024
    processes_limit: int = 64
    submission_time_limit: float = 60.0
    submission_memory_mb: int = 2048
    shape_credit: float = 0.5
    mutation_penalty: float = 0.0
    forbidden_imports: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rubric:
    path: Path
    sha256: str
    assignment: str
    title: str
    reference: Path
    template: Path
    mistakes_module: Path | None
    submission_filename: str | None
    seed: int
    settings: Settings
    equations: tuple[Equation, ...]

    @property
    def max_score(self) -> float:
        return sum(eq.points for eq in self.equations)

    @functools.cached_property
    def function_slots(self) -> dict[str, tuple[str, ...]]:
        """Each graded function's return slots (``finite_difference.slot`` names one of them)."""
        return function_slots(self.equations)

    @functools.cached_property
    def assignment_sha256(self) -> str:
        """One hash of every file that decides a grade: the rubric, reference, catalog and template.

        A report is current only while this matches: fixing the reference must regrade.
        Read once per loaded rubric (a batch asks for it once per submission).
        """
        digest = hashlib.sha256(self.sha256.encode())
        for path in (self.reference, self.mistakes_module, self.template):
            if path is not None:
                digest.update(hashlib.sha256(path.read_bytes()).digest())
        return digest.hexdigest()


def parse_settings(raw: dict) -> Settings:
    cases = raw.get("cases", {})
    tol = raw.get("tolerance", {})
    fd = raw.get("finite_difference", {})
    defaults = Settings()
    rules = parse_dim_rules(raw.get("dims", {}), "settings.dims")
    return Settings(
        visible_cases=cases.get("visible", defaults.visible_cases),
        hidden_cases=cases.get("hidden", defaults.hidden_cases),
        dims=MappingProxyType({k: (r.low, r.high) for k, r in rules.items() if r.expression is None}),
        derived=MappingProxyType({k: r for k, r in rules.items() if r.expression is not None}),
        batch_dim=raw.get("batch_dim"),
        tolerance=Tolerance(tol.get("rtol", defaults.tolerance.rtol), tol.get("atol", defaults.tolerance.atol)),
        fd_step=fd.get("step", defaults.fd_step),
        fd_tolerance=Tolerance(fd.get("rtol", defaults.fd_tolerance.rtol), fd.get("atol", defaults.fd_tolerance.atol)),
        time_limit=float(raw.get("time_limit", defaults.time_limit)),
        import_time_limit=float(raw.get("import_time_limit", defaults.import_time_limit)),
        memory_limit_mb=raw.get("memory_limit_mb", defaults.memory_limit_mb),
        output_limit_kb=raw.get("output_limit_kb", defaults.output_limit_kb),
        processes_limit=raw.get("processes_limit", defaults.processes_limit),
        submission_time_limit=float(raw.get("submission_time_limit", defaults.submission_time_limit)),
        submission_memory_mb=raw.get("submission_memory_mb", defaults.submission_memory_mb),
        shape_credit=float(raw.get("shape_credit", defaults.shape_credit)),
        mutation_penalty=float(raw.get("mutation_penalty", defaults.mutation_penalty)),
        forbidden_imports=tuple(raw.get("forbidden_imports", ())),
    )


def parse_yaml(raw_bytes: bytes, source: str) -> Any:
    import yaml

    try:
        # libyaml's loader where the wheel has it: 10x faster, same safe subset
        return yaml.load(raw_bytes, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(parse)"
        raise RubricError(f"{source}: {where}: not valid YAML ({getattr(err, 'problem', err)})") from err


# Part of every cache key: bump it when what a rubric's bytes parse to changes (the
# YAML loader, or what is stored), so no entry written the old way is read.
CACHE_FORMAT = b"rubric document: yaml safe load, v1"


def build_rubric(path: Path, raw_bytes: bytes, document: dict, source: str) -> Rubric:
    """A frozen Rubric from a document that matches the schema, after the cross-reference checks."""
    base = path.resolve().parent
    rubric = Rubric(
        path=path.resolve(),
        sha256=hashlib.sha256(raw_bytes).hexdigest(),
        assignment=document["assignment"],
        title=document.get("title", document["assignment"]),
        reference=(base / document["reference"]).resolve(),
        template=(base / document["template"]).resolve(),
        mistakes_module=(base / document["mistakes"]).resolve() if "mistakes" in document else None,
        submission_filename=document.get("submission_filename"),
        seed=document["seed"],
        settings=parse_settings(document.get("settings", {})),
        equations=tuple(parse_equation(item, f"equations[{i}]") for i, item in enumerate(document["equations"])),
    )
    check_consistency(rubric, source)
    return rubric


def load_rubric(path: str | Path) -> Rubric:
    """Read, validate and freeze a rubric; every problem is one RubricError line.

    A rubric whose exact bytes passed the schema check before is built from the
    cache (grader/assignment/cache.py) without PyYAML or jsonschema. An entry that doesn't
    build a consistent rubric counts as a miss, so the cache can only ever save time:
    every error a rubric gets comes from its own YAML.
    """
    path = Path(path)
    source = str(path)
    try:
        raw_bytes = path.read_bytes()
    except OSError as err:
        raise RubricError(f"{source}: cannot read the rubric ({err.strerror})") from err
    key = cache_key(CACHE_FORMAT, (SCHEMA_DIR / "rubric.schema.json").read_bytes(), raw_bytes)
    cached = read_cached("rubrics", key)
    if isinstance(cached, dict):
        try:
            return build_rubric(path, raw_bytes, cached, source)
        except (RubricError, LookupError, TypeError, ValueError, AttributeError, RecursionError):
            pass
    document = parse_yaml(raw_bytes, source)
    validate_against_schema(document, "rubric.schema.json", source)
    rubric = build_rubric(path, raw_bytes, document, source)
    store_cached("rubrics", key, document)
    return rubric


def bundled_rubric_dirs() -> list[Path]:
    """Where bundled rubrics live: the source checkout, then the installed data files."""
    return [
        Path(__file__).resolve().parent.parent.parent / "rubrics",
        Path(sys.prefix) / "share" / "grader" / "rubrics",
    ]


DEFAULT_MARKER = "DEFAULT"  # in a folder of bundled rubrics: the stem of the one to use when several are there


def resolve_rubric_path(name: str | None, submission: str | Path | None = None) -> Path:
    """A rubric path from ``--rubric`` (a path or a bundled name), or the bundled default.

    The default is the single rubric bundled with the package, so ``grade file.py``
    works from a source checkout and from a wheel alike. With several bundled rubrics,
    a submission picks the one whose ``submission_filename`` has its name (``layers.py``,
    ``layers.ipynb``); otherwise the folder's ``DEFAULT`` file names the default.
    """
    if name is not None:
        candidate = Path(name)
        if candidate.suffix in (".yaml", ".yml") or candidate.exists():
            return candidate
        for folder in bundled_rubric_dirs():
            if (folder / f"{name}.yaml").is_file():
                return folder / f"{name}.yaml"
        raise RubricError(f"{name}: no such rubric file, and no bundled rubric has that name")
    for folder in bundled_rubric_dirs():
        found = sorted(folder.glob("*.yaml"))
        if len(found) == 1:
            return found[0]
        if found:
            return choose_bundled(folder, found, submission)
    raise RubricError("no bundled rubric found: pass --rubric PATH")


def choose_bundled(folder: Path, found: list[Path], submission: str | Path | None) -> Path:
    if submission is not None:
        stem = Path(submission).stem
        for path in found:
            try:
                wanted = load_rubric(path).submission_filename
            except RubricError:
                continue
            if wanted is not None and Path(wanted).stem == stem:
                return path
    marker = folder / DEFAULT_MARKER
    default = marker.read_text().strip() if marker.is_file() else ""
    for path in found:
        if path.stem == default:
            return path
    names = ", ".join(p.stem for p in found)
    raise RubricError(f"several bundled rubrics ({names}): choose one with --rubric")
