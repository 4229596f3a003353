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
from typing import TYPE_CHECKING, Any

from grader.assignment.cache import cache_key, read_cached, store_cached
from grader.errors import RubricError
from grader.schemas import SCHEMA_DIR, validate_against_schema

if TYPE_CHECKING:
    pass

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
class InputSpec:
    """How one named input is generated: drawn (normal, uniform, labels) or derived."""

    name: str
    kind: str = "normal"
    shape: tuple[str | int, ...] = ()
    scale: float = 1.0
    low: float = 0.0
    high: float = 1.0
    classes: str | None = None
    exact_zeros: float = 0.0
    derive: str | None = None
    derive_from: tuple[str, ...] = ()


@dataclass(frozen=True)
class FiniteDifference:
    """What the finite-difference oracle differentiates: sum(upstream * forward(args)) wrt one arg."""

    forward: str
    args: tuple[str, ...]
    wrt: str
    upstream: str | None = None
    kink_input: str | None = None
    kink_at: float = 0.0


@dataclass(frozen=True)
class Mistake:
    id: str
    function: str
    hint: str


@dataclass(frozen=True)
class Equation:
    id: str
    label: str
    function: str
    points: float
    visibility: str
    inputs: tuple[InputSpec, ...]
    args: tuple[str, ...]
    returns: tuple[str | int, ...]
    finite_difference: FiniteDifference
    mistakes: tuple[Mistake, ...] = ()
    probes: tuple[str, ...] = ()

    @property
    def repeat_call(self) -> bool:
        return "repeat_call" in self.probes


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
    return Settings(
        visible_cases=cases.get("visible", defaults.visible_cases),
        hidden_cases=cases.get("hidden", defaults.hidden_cases),
        dims=MappingProxyType({k: (int(v[0]), int(v[1])) for k, v in raw.get("dims", {}).items()}),
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


def parse_input(name: str, raw: dict) -> InputSpec:
    return InputSpec(
        name=name,
        kind="derived" if "derive" in raw else raw.get("kind", "normal"),
        shape=tuple(raw.get("shape", ())),
        scale=float(raw.get("scale", 1.0)),
        low=float(raw.get("low", 0.0)),
        high=float(raw.get("high", 1.0)),
        classes=raw.get("classes"),
        exact_zeros=float(raw.get("exact_zeros", 0.0)),
        derive=raw.get("derive"),
        derive_from=tuple(raw.get("from", ())),
    )


def parse_equation(raw: dict) -> Equation:
    fd = raw["finite_difference"]
    kinks = fd.get("kinks") or {}
    return Equation(
        id=raw["id"],
        label=raw["label"],
        function=raw["function"],
        points=float(raw["points"]),
        visibility=raw.get("visibility", "visible"),
        inputs=tuple(parse_input(name, spec) for name, spec in raw["inputs"].items()),
        args=tuple(raw["args"]),
        returns=tuple(raw["returns"]),
        finite_difference=FiniteDifference(
            forward=fd["forward"],
            args=tuple(fd["args"]),
            wrt=fd["wrt"],
            upstream=fd.get("upstream"),
            kink_input=kinks.get("input"),
            kink_at=float(kinks.get("at", 0.0)),
        ),
        mistakes=tuple(Mistake(m["id"], m["function"], m["hint"]) for m in raw.get("mistakes", ())),
        probes=tuple(raw.get("probes", ())),
    )


def check_consistency(rubric: Rubric, source: str) -> None:
    """Cross-references the schema cannot express, each reported with its key path."""

    def fail(where: str, message: str) -> None:
        raise RubricError(f"{source}: {where}: {message}")

    dims = rubric.settings.dims
    for where, (low, high) in dims.items():
        if low > high:
            fail(f"settings.dims.{where}", f"the range [{low}, {high}] is empty")
    if rubric.settings.batch_dim is not None and rubric.settings.batch_dim not in dims:
        fail("settings.batch_dim", f"{rubric.settings.batch_dim!r} is not one of settings.dims")
    seen: set[str] = set()
    for i, eq in enumerate(rubric.equations):
        at = f"equations[{i}]"
        if eq.id in seen:
            fail(f"{at}.id", f"{eq.id!r} is used twice")
        seen.add(eq.id)
        declared: list[str] = []
        for spec in eq.inputs:
            for dim in (*spec.shape, *([spec.classes] if spec.classes else [])):
                if isinstance(dim, str) and dim not in dims:
                    fail(f"{at}.inputs.{spec.name}", f"dimension {dim!r} has no range in settings.dims")
            if spec.kind == "labels" and spec.classes is None:
                fail(f"{at}.inputs.{spec.name}.classes", "is required for labels")
            for source_name in spec.derive_from:
                if source_name not in declared:
                    fail(f"{at}.inputs.{spec.name}.from", f"{source_name!r} must be an input declared above it")
            declared.append(spec.name)
        for key, names in (("args", eq.args), ("finite_difference.args", eq.finite_difference.args)):
            for name in names:
                if name not in declared:
                    fail(f"{at}.{key}", f"{name!r} is not one of this equation's inputs")
        fd = eq.finite_difference
        if fd.wrt not in fd.args:
            fail(f"{at}.finite_difference.wrt", f"{fd.wrt!r} must be one of finite_difference.args")
        for key, name in (("upstream", fd.upstream), ("kinks.input", fd.kink_input)):
            if name is not None and name not in declared:
                fail(f"{at}.finite_difference.{key}", f"{name!r} is not one of this equation's inputs")
        for dim in eq.returns:
            if isinstance(dim, str) and dim not in dims:
                fail(f"{at}.returns", f"dimension {dim!r} has no range in settings.dims")
        check_probes(eq, dims, lambda message, at=at: fail(f"{at}.probes", message))
    for key, path in (
        ("reference", rubric.reference),
        ("template", rubric.template),
        ("mistakes", rubric.mistakes_module),
    ):
        if path is not None and not path.is_file():
            fail(key, f"no file at {path}")


def check_probes(eq: Equation, dims: Mapping[str, tuple[int, int]], fail) -> None:
    """A probe the equation can't have is a rubric error, so every grade gets the same cases."""
    named = {d for spec in eq.inputs for d in (*spec.shape, spec.classes) if isinstance(d, str)}
    named |= {d for d in eq.returns if isinstance(d, str)}
    labels = [spec for spec in eq.inputs if spec.kind == "labels"]
    if "square" in eq.probes and named and max(dims[d][0] for d in named) > min(dims[d][1] for d in named):
        fail(f"square: the ranges of {', '.join(sorted(named))} have no size in common")
    if "kinks" in eq.probes:
        kink = eq.finite_difference.kink_input
        if kink is None:
            fail("kinks: needs finite_difference.kinks (the input and where its kink is)")
        if next(spec for spec in eq.inputs if spec.name == kink).kind == "derived":
            fail(f"kinks: {kink!r} is a derived input; the kinks probe places values in a drawn one")
    for probe in ("labels_repeat", "labels_one_class"):
        if probe in eq.probes:
            if not labels:
                fail(f"{probe}: the equation has no labels input")
            if any(isinstance(d, str) and dims[d][1] < 2 for spec in labels for d in spec.shape):
                fail(f"{probe}: needs room for two labels (a labels dimension whose range reaches 2)")


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
        equations=tuple(parse_equation(item) for item in document["equations"]),
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


def resolve_rubric_path(name: str | None) -> Path:
    """A rubric path from ``--rubric`` (a path or a bundled name), or the bundled default.

    The default is the single rubric bundled with the package, so ``grade file.py``
    works from a source checkout and from a wheel alike.
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
            names = ", ".join(p.stem for p in found)
            raise RubricError(f"several bundled rubrics ({names}): choose one with --rubric")
    raise RubricError("no bundled rubric found: pass --rubric PATH")
