"""Rubric items: one graded value of one call sequence, as frozen data parsed from the YAML.

An item (``equations:`` in the rubric, for quiz 4's sake) grades one function's answer.
In the simplest form the function takes arrays and returns one array. An item may
also name the function's return ``slots`` and grade one of them (``output: dx``), or
grade what the call left in a dict argument (``output: {argument: NAME, key:
KEY}``); make ``setup`` calls in the child first, whose results (a cache)
never leave it; take hyperparameters (ints, floats, strings, dicts of them); derive
dimensions from others and require relations between them; and list ``variants``,
fixed overrides each of which gets one hidden case of its own.

An item may also grade several named values of one call sequence (``outputs``): each
is a setup result or the graded call's own result (named by the item's ``as``), sent
back together from one request and compared on its own, with its own shape
(``returns`` maps each output to its shape) and, with ``finite_difference.wrt`` a
list, its own finite differences (quiz 4's end-to-end backpropagation item).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from grader.assignment.expressions import Expression, parse_expression

# Input kinds that make an array, and those that make a hyperparameter (sent in the
# request's JSON header, never as an array).
ARRAY_KINDS = ("normal", "uniform", "labels", "derived")
VALUE_KINDS = ("int", "float", "choice", "value", "dim", "dict")


@dataclass(frozen=True)
class DimRule:
    """A dimension drawn from ``[low, high]`` or computed from others by ``expression``."""

    low: int = 1
    high: int = 1
    expression: Expression | None = None


def parse_dim_rules(raw: Mapping[str, Any], where: str) -> Mapping[str, DimRule]:
    rules = {}
    for name, value in raw.items():
        if isinstance(value, str):
            rules[name] = DimRule(expression=parse_expression(value, f"{where}.{name}"))
        elif isinstance(value, int):
            rules[name] = DimRule(value, value)
        else:
            rules[name] = DimRule(int(value[0]), int(value[1]))
    return MappingProxyType(rules)


@dataclass(frozen=True)
class InputSpec:
    """How one named input is generated: an array (normal, uniform, labels, derived) or a hyperparameter.

    Hyperparameters: ``int`` and ``float`` draw from ``[low, high]`` or ``choices``,
    ``choice`` picks one of ``choices``, ``value`` is fixed, ``dim`` is the case's
    dimension of that name, ``dict`` holds named ``entries`` of these kinds.
    """

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
    distinct: bool = False
    choices: tuple = ()
    value: Any = None
    dim: str | None = None
    entries: tuple[InputSpec, ...] = ()

    @property
    def is_array(self) -> bool:
        return self.kind in ARRAY_KINDS


@dataclass(frozen=True)
class FiniteDifference:
    """What the finite-difference oracle differentiates: sum(upstream * forward(args)[slot]) wrt one arg.

    ``linear``: the forward is affine in ``wrt``, so one-sided differences of step 1
    are exact (half the calls, and no rounding of a tiny step).
    """

    forward: str
    args: tuple[str, ...]
    wrt: str | tuple[str, ...]  # a tuple (one per output, in order) only for an item with ``outputs``
    upstream: str | None = None
    kink_input: str | None = None
    kink_at: float = 0.0
    slot: str | int | None = None
    linear: bool = False
    stacked: bool = False  # a scalar forward that takes a stack of wrt values (a new axis 0), one value each
    batched: bool = False  # each slice along batch_axis of wrt makes its slice along batch_out_axis alone
    batch_axis: int = 0
    batch_out_axis: int = 0
    batch_tile: tuple[tuple[str, int], ...] = ()  # arguments sliced alike (a bias beside filters), by axis


@dataclass(frozen=True)
class Mistake:
    id: str
    function: str
    hint: str


@dataclass(frozen=True)
class SetupStep:
    """A call the child makes before the graded one (its results stay there), or an edit of a dict input."""

    call: str | None = None
    args: tuple[str, ...] = ()
    bind: tuple[str, ...] = ()  # ``as``: one name binds the whole result, several unpack a tuple
    update: str | None = None
    values: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def as_request(self) -> dict:
        """The step as the child's request carries it (instructor data only)."""
        if self.update is not None:
            return {"update": self.update, "with": dict(self.values)}
        return {"function": self.call, "args": list(self.args), "as": list(self.bind)}


@dataclass(frozen=True)
class Variant:
    """Fixed overrides for one hidden case: dimensions, input specs, the setup and the call's arguments."""

    name: str
    dims: Mapping[str, DimRule] = field(default_factory=lambda: MappingProxyType({}))
    inputs: tuple[InputSpec, ...] = ()
    setup: tuple[SetupStep, ...] | None = None
    args: tuple[str, ...] | None = None
    returns: tuple[str | int, ...] | None = None


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
    finite_difference: FiniteDifference | None
    mistakes: tuple[Mistake, ...] = ()
    probes: tuple[str, ...] = ()
    slots: tuple[str, ...] = ()
    output: str | None = None
    output_argument: str | None = None
    output_key: str | None = None
    setup: tuple[SetupStep, ...] = ()
    dims: Mapping[str, DimRule] = field(default_factory=lambda: MappingProxyType({}))
    require: tuple[Expression, ...] = ()
    variants: tuple[Variant, ...] = ()
    batch_of_one: bool = True
    outputs: tuple[str, ...] = ()  # several graded values: setup results or ``bind``, the graded call's
    bind: str | None = None  # ``as``: the name of the graded call's own result, for ``outputs``
    output_shapes: Mapping[str, tuple[str | int, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def repeat_call(self) -> bool:
        return "repeat_call" in self.probes

    def returns_for(self, variant: Variant | None) -> tuple[str | int, ...]:
        return self.returns if variant is None or variant.returns is None else variant.returns

    @property
    def slot_index(self) -> int | None:
        """The graded slot's position in the returned tuple, or None for a single return value."""
        return self.slots.index(self.output) if self.slots and self.output_argument is None else None

    @property
    def counted(self) -> bool:
        """A 0-point item is a check: reported, not counted (front ends show its status, not lost points)."""
        return self.points > 0

    @property
    def caller(self) -> str:
        """The function a front end names for the item: its own, or how many an end-to-end item chains."""
        return f"{len(self.functions)} chained" if self.outputs else self.function

    @property
    def functions(self) -> tuple[str, ...]:
        """Every function the item calls: its setup calls' and its own, in order, each once."""
        return tuple(dict.fromkeys([*(step.call for step in self.setup if step.call), self.function]))

    def output_differences(self) -> tuple[FiniteDifference | None, ...]:
        """Each output's finite-difference oracle (``wrt`` paired with ``outputs`` in order), or Nones."""
        fd = self.finite_difference
        if fd is None:
            return (None,) * len(self.outputs)
        return tuple(dataclasses.replace(fd, wrt=name) for name in fd.wrt)


def infer_kind(raw: Mapping) -> str:
    for key, kind in (("derive", "derived"), ("value", "value"), ("dim", "dim"), ("entries", "dict")):
        if key in raw:
            return kind
    if "choices" in raw and "kind" not in raw:
        return "choice"
    return raw.get("kind", "normal")


def parse_input(name: str, raw: Mapping) -> InputSpec:
    return InputSpec(
        name=name,
        kind=infer_kind(raw),
        shape=tuple(raw.get("shape", ())),
        scale=float(raw.get("scale", 1.0)),
        low=float(raw.get("low", 0.0)),
        high=float(raw.get("high", 1.0)),
        classes=raw.get("classes"),
        exact_zeros=float(raw.get("exact_zeros", 0.0)),
        derive=raw.get("derive"),
        derive_from=tuple(raw.get("from", ())),
        distinct=bool(raw.get("distinct", False)),
        choices=tuple(raw.get("choices", ())),
        value=raw.get("value"),
        dim=raw.get("dim"),
        entries=tuple(parse_input(key, spec) for key, spec in (raw.get("entries") or {}).items()),
    )


def parse_setup(raw: list) -> tuple[SetupStep, ...]:
    return tuple(
        SetupStep(update=step["update"], values=MappingProxyType(dict(step["with"])))
        if "update" in step
        else SetupStep(call=step["call"], args=tuple(step["args"]), bind=tuple(step.get("as", ())))
        for step in raw
    )


def parse_fd(fd: Mapping | None) -> FiniteDifference | None:
    if fd is None:
        return None
    kinks = fd.get("kinks") or {}
    return FiniteDifference(
        forward=fd["forward"],
        args=tuple(fd["args"]),
        wrt=tuple(fd["wrt"]) if isinstance(fd["wrt"], list) else fd["wrt"],
        upstream=fd.get("upstream"),
        kink_input=kinks.get("input"),
        kink_at=float(kinks.get("at", 0.0)),
        slot=fd.get("slot"),
        linear=bool(fd.get("linear", False)),
        stacked=bool(fd.get("stacked", False)),
        **parse_batched(fd.get("batched", False)),
    )


def parse_batched(raw: Any) -> dict:
    """``batched: true`` (each example alone: axis 0 in and out) or ``{axis, out_axis, tile: {arg: axis}}``."""
    if not isinstance(raw, Mapping):
        return {"batched": bool(raw)}
    return {
        "batched": True,
        "batch_axis": int(raw.get("axis", 0)),
        "batch_out_axis": int(raw.get("out_axis", 0)),
        "batch_tile": tuple((name, int(axis)) for name, axis in (raw.get("tile") or {}).items()),
    }


def parse_output(raw: Any) -> tuple[str | None, str | None, str | None]:
    """(slot, argument, key) from ``output: SLOT`` or ``output: {argument: NAME, key: KEY}``."""
    if isinstance(raw, Mapping):
        return None, raw["argument"], raw["key"]
    return raw, None, None


def parse_equation(raw: Mapping, where: str = "equations[?]") -> Equation:
    output, argument, key = parse_output(raw.get("output"))
    shapes = raw["returns"] if isinstance(raw["returns"], Mapping) else {}
    return Equation(
        id=raw["id"],
        label=raw["label"],
        function=raw["function"],
        points=float(raw["points"]),
        visibility=raw.get("visibility", "visible"),
        inputs=tuple(parse_input(name, spec) for name, spec in raw["inputs"].items()),
        args=tuple(raw["args"]),
        # an item with outputs: every output's dimensions, for drawing (each shape is in output_shapes)
        returns=tuple(d for shape in shapes.values() for d in shape) if shapes else tuple(raw["returns"]),
        finite_difference=parse_fd(raw.get("finite_difference")),
        mistakes=tuple(Mistake(m["id"], m["function"], m["hint"]) for m in raw.get("mistakes", ())),
        probes=tuple(raw.get("probes", ())),
        slots=tuple(raw.get("slots", ())),
        output=output,
        output_argument=argument,
        output_key=key,
        setup=parse_setup(raw.get("setup", ())),
        dims=parse_dim_rules(raw.get("dims", {}), f"{where}.dims"),
        require=tuple(parse_expression(text, f"{where}.require[{i}]") for i, text in enumerate(raw.get("require", ()))),
        variants=tuple(
            Variant(
                name=v["name"],
                dims=parse_dim_rules(v.get("dims", {}), f"{where}.variants[{j}].dims"),
                inputs=tuple(parse_input(name, spec) for name, spec in (v.get("inputs") or {}).items()),
                setup=parse_setup(v["setup"]) if "setup" in v else None,
                args=tuple(v["args"]) if "args" in v else None,
                returns=tuple(v["returns"]) if "returns" in v else None,
            )
            for j, v in enumerate(raw.get("variants", ()))
        ),
        batch_of_one=bool(raw.get("batch_of_one", True)),
        outputs=tuple(raw.get("outputs", ())),
        bind=raw.get("as"),
        output_shapes=MappingProxyType({name: tuple(shape) for name, shape in shapes.items()}),
    )
