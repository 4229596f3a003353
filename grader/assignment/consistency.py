"""Cross-references the rubric schema cannot express, each reported with its key path.

Every argument is a declared input or a setup call's result, every dimension has a
range or an expression, every slot and dict entry an item grades is declared, and a
probe an item can't have is refused, so every grade of a rubric gets the same cases.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from grader.assignment.items import Equation, InputSpec, SetupStep, Variant
from grader.errors import RubricError

if TYPE_CHECKING:
    from grader.assignment.rubric import Rubric


def function_slots(equations: tuple[Equation, ...]) -> dict[str, tuple[str, ...]]:
    """Each function's return slots, as the items that grade it declare them."""
    return {eq.function: eq.slots for eq in equations if eq.slots}


def known_dims(rubric: Rubric, eq: Equation, variant: Variant | None = None) -> set[str]:
    names = set(rubric.settings.dims) | set(rubric.settings.derived) | set(eq.dims)
    return names | (set(variant.dims) if variant is not None else set())


def check_consistency(rubric: Rubric, source: str) -> None:
    def fail(where: str, message: str) -> None:
        raise RubricError(f"{source}: {where}: {message}")

    dims = rubric.settings.dims
    for where, (low, high) in dims.items():
        if low > high:
            fail(f"settings.dims.{where}", f"the range [{low}, {high}] is empty")
    if rubric.settings.batch_dim is not None and rubric.settings.batch_dim not in dims:
        fail("settings.batch_dim", f"{rubric.settings.batch_dim!r} is not one of settings.dims")
    slots_of: dict[str, tuple[str, ...]] = {}
    for i, eq in enumerate(rubric.equations):
        if eq.slots and slots_of.setdefault(eq.function, eq.slots) != eq.slots:
            fail(f"equations[{i}].slots", f"{eq.function} is declared with slots {slots_of[eq.function]} elsewhere")
    seen: set[str] = set()
    for i, eq in enumerate(rubric.equations):
        at = f"equations[{i}]"
        if eq.id in seen:
            fail(f"{at}.id", f"{eq.id!r} is used twice")
        seen.add(eq.id)
        check_item(rubric, eq, None, at, slots_of, fail)
        names = [v.name for v in eq.variants]
        for j, variant in enumerate(eq.variants):
            if variant.name in names[:j]:
                fail(f"{at}.variants[{j}].name", f"{variant.name!r} is used twice")
            check_item(rubric, eq, variant, at, slots_of, lambda w, m, n=variant.name: fail(f"{w} (variant {n})", m))
        check_probes(eq, dims, lambda message, at=at: fail(f"{at}.probes", message))
    for key, path in (
        ("reference", rubric.reference),
        ("template", rubric.template),
        ("mistakes", rubric.mistakes_module),
    ):
        if path is not None and not path.is_file():
            fail(key, f"no file at {path}")


def effective(eq: Equation, variant: Variant | None) -> tuple[tuple[InputSpec, ...], tuple[SetupStep, ...], tuple]:
    """An item's inputs, setup and arguments with a variant's overrides applied."""
    if variant is None:
        return eq.inputs, eq.setup, eq.args
    replaced = {spec.name: spec for spec in variant.inputs}
    inputs = tuple(replaced.pop(spec.name, spec) for spec in eq.inputs) + tuple(replaced.values())
    setup = eq.setup if variant.setup is None else variant.setup
    return inputs, setup, eq.args if variant.args is None else variant.args


def check_item(
    rubric: Rubric,
    eq: Equation,
    variant: Variant | None,
    at: str,
    slots_of: Mapping[str, tuple[str, ...]],
    fail: Callable[[str, str], None],
) -> None:
    known = known_dims(rubric, eq, variant)
    inputs, setup, args = effective(eq, variant)
    rules = {**rubric.settings.derived, **eq.dims, **(variant.dims if variant else {})}
    for name, rule in rules.items():
        if rule.expression is not None:
            for used in rule.expression.names:
                if used not in known:
                    fail(f"{at}.dims.{name}", f"{used!r} is not a dimension")
    for k, expression in enumerate(eq.require):
        for used in expression.names:
            if used not in known:
                fail(f"{at}.require[{k}]", f"{used!r} is not a dimension")
    declared: list[str] = []
    kinds: dict[str, str] = {}
    for spec in inputs:
        check_input(spec, known, declared, f"{at}.inputs.{spec.name}", fail)
        declared.append(spec.name)
        kinds[spec.name] = spec.kind
    drawn = list(declared)
    for k, step in enumerate(setup):
        where = f"{at}.setup[{k}]"
        if step.update is not None:
            if kinds.get(step.update) != "dict":
                fail(f"{where}.update", f"{step.update!r} is not a dict input")
            continue
        for name in step.args:
            if name not in declared:
                fail(f"{where}.args", f"{name!r} is neither an input nor an earlier setup result")
        want = slots_of.get(step.call)
        if want and len(step.bind) > 1 and len(step.bind) != len(want):
            fail(f"{where}.as", f"{step.call} returns {len(want)} values ({', '.join(want)})")
        declared.extend(step.bind)
    for name in args:
        if name not in declared:
            extra = " or setup results" if setup else ""
            fail(f"{at}.args", f"{name!r} is not one of this equation's inputs{extra}")
    if eq.outputs:
        check_outputs(eq, variant, declared, known, at, fail)
    if eq.output_argument is not None:
        if eq.output_argument not in args or kinds.get(eq.output_argument) != "dict":
            fail(f"{at}.output.argument", f"{eq.output_argument!r} must be a dict input passed in args")
    elif eq.slots and eq.output not in eq.slots:
        fail(f"{at}.output", f"{eq.output!r} is not one of slots {list(eq.slots)}")
    elif eq.output is not None and not eq.slots:
        fail(f"{at}.output", "names a slot, so the item needs `slots`")
    if eq.output_shapes and not eq.outputs:
        fail(f"{at}.returns", "an object of shapes needs `outputs`")
    if eq.bind is not None and not eq.outputs:
        fail(f"{at}.as", "names the graded call's result for `outputs`, which the item lacks")
    for dim in eq.returns_for(variant):
        if isinstance(dim, str) and dim not in known:
            fail(f"{at}.returns", f"dimension {dim!r} has no range in settings.dims")
    fd = eq.finite_difference
    if fd is None:
        return
    wrts = fd.wrt if isinstance(fd.wrt, tuple) else (fd.wrt,)
    if isinstance(fd.wrt, tuple) and len(fd.wrt) != len(eq.outputs):
        fail(f"{at}.finite_difference.wrt", f"a list needs one input per output ({len(eq.outputs)} outputs)")
    for name in fd.args:
        if name not in drawn:
            fail(f"{at}.finite_difference.args", f"{name!r} is not one of this equation's inputs")
    for wrt in wrts:
        if wrt not in fd.args:
            fail(f"{at}.finite_difference.wrt", f"{wrt!r} must be one of finite_difference.args")
    for key, name in (("upstream", fd.upstream), ("kinks.input", fd.kink_input)):
        if name is not None and name not in drawn:
            fail(f"{at}.finite_difference.{key}", f"{name!r} is not one of this equation's inputs")
    for name, _ in fd.batch_tile:
        if name not in fd.args or name == fd.wrt:
            fail(
                f"{at}.finite_difference.batched.tile", f"{name!r} must be one of finite_difference.args other than wrt"
            )
    if isinstance(fd.slot, str) and fd.slot not in slots_of.get(fd.forward, ()):
        fail(f"{at}.finite_difference.slot", f"no item declares a slot {fd.slot!r} for {fd.forward}")


def check_outputs(
    eq: Equation,
    variant: Variant | None,
    declared: list[str],
    known: set[str],
    at: str,
    fail: Callable[[str, str], None],
) -> None:
    """An item with several outputs: each is a setup result or the graded call's ``as``, with a shape."""
    if eq.slots or eq.output is not None or eq.output_argument is not None:
        fail(f"{at}.outputs", "an item with outputs has no slots or output")
    if variant is not None and variant.returns is not None:
        fail(f"{at}.variants.returns", "an item with outputs gives each output's shape in returns")
    results = set(declared[len(effective(eq, variant)[0]) :]) | ({eq.bind} if eq.bind else set())
    for name in eq.outputs:
        if name not in results:
            fail(f"{at}.outputs", f"{name!r} is neither a setup result nor the graded call's `as`")
    if set(eq.output_shapes) != set(eq.outputs):
        fail(f"{at}.returns", f"with outputs, returns maps each of {list(eq.outputs)} to its shape")
    for shape in eq.output_shapes.values():
        for dim in shape:
            if isinstance(dim, str) and dim not in known:
                fail(f"{at}.returns", f"dimension {dim!r} has no range in settings.dims")


def check_input(
    spec: InputSpec, known: set[str], declared: list[str], where: str, fail: Callable[[str, str], None]
) -> None:
    for dim in (*spec.shape, *([spec.classes] if spec.classes else []), *([spec.dim] if spec.dim else [])):
        if isinstance(dim, str) and dim not in known:
            fail(where, f"dimension {dim!r} has no range in settings.dims")
    if spec.kind == "labels" and spec.classes is None:
        fail(f"{where}.classes", "is required for labels")
    if spec.kind == "choice" and not spec.choices:
        fail(f"{where}.choices", "must list at least one value")
    for source_name in spec.derive_from:
        if source_name not in declared:
            fail(f"{where}.from", f"{source_name!r} must be an input declared above it")
    for entry in spec.entries:
        if entry.kind in ("labels", "derived", "dict"):
            fail(f"{where}.entries.{entry.name}", "a dict entry is a hyperparameter or a normal or uniform array")
        check_input(entry, known, [], f"{where}.entries.{entry.name}", fail)


def check_probes(eq: Equation, dims: Mapping[str, tuple[int, int]], fail) -> None:
    """A probe the equation can't have is a rubric error, so every grade gets the same cases."""
    named = {d for spec in eq.inputs for d in (*spec.shape, spec.classes) if isinstance(d, str)}
    named |= {d for d in eq.returns if isinstance(d, str)}
    labels = [spec for spec in eq.inputs if spec.kind == "labels"]
    if "square" in eq.probes and (named - set(dims) or eq.dims):
        fail("square: needs every dimension of the item to be a range in settings.dims")
    if "square" in eq.probes and named and max(dims[d][0] for d in named) > min(dims[d][1] for d in named):
        fail(f"square: the ranges of {', '.join(sorted(named))} have no size in common")
    if "kinks" in eq.probes:
        kink = eq.finite_difference.kink_input if eq.finite_difference else None
        if kink is None:
            fail("kinks: needs finite_difference.kinks (the input and where its kink is)")
        if next(spec for spec in eq.inputs if spec.name == kink).kind == "derived":
            fail(f"kinks: {kink!r} is a derived input; the kinks probe places values in a drawn one")
    for probe in ("labels_repeat", "labels_one_class"):
        if probe in eq.probes:
            if not labels:
                fail(f"{probe}: the equation has no labels input")
            if any(isinstance(d, str) and d in dims and dims[d][1] < 2 for spec in labels for d in spec.shape):
                fail(f"{probe}: needs room for two labels (a labels dimension whose range reaches 2)")
