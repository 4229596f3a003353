"""A starting rubric and student template, written from an instructor's reference module.

``grade new NAME --reference solutions/NAME.py`` is how the next assignment begins: the
reference is the only thing course staff must write by hand, and everything the rubric
and template can learn from it (the functions, their parameters, what each returns,
the docstrings) is copied, so that only the facts a reference can't tell (each input's
shape and range, the points) are left, marked ``TO_FILL``. ``grade validate`` lists the
marks still left (``placeholders``) before anything else.

Reading is by ``ast`` alone: the reference is never imported here, so a reference with
a bug, or a heavy import, still gets its skeleton.

What each function returns decides its items: ``return out, cache`` gives the slots
``out`` and ``cache`` and one item per slot (``affine_forward.out``), except a slot
named like a cache, which is passed to a backward and never graded; a single value
gives one item named after the function.
"""

from __future__ import annotations

import ast
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

PLACEHOLDER = "TO_FILL"
SOLUTION_REGION = re.compile(r"^([ \t]*)### BEGIN SOLUTION[^\n]*\n.*?^[ \t]*### END SOLUTION[^\n]*\n", re.M | re.S)


@dataclass(frozen=True)
class Signature:
    """One public function of the reference, as the rubric and template need it."""

    name: str
    params: tuple[str, ...]
    slots: tuple[str, ...]  # empty: a single return value
    docstring: str | None


def is_cache(slot: str) -> bool:
    return slot == "cache" or slot.startswith("cache_") or slot.endswith("_cache")


def element_name(node: ast.expr, index: int) -> str:
    """A returned element's slot name: ``out`` for ``out``, ``float(out)`` or ``out.astype(...)``, else ``out<i>``."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        node = node.func.value
    elif isinstance(node, ast.Call) and len(node.args) == 1:
        node = node.args[0]
    return node.id if isinstance(node, ast.Name) else f"out{index}"


def returned_slots(function: ast.FunctionDef) -> tuple[str, ...]:
    """The names of the first returned tuple's elements (``out0``... where one is not a plain name), or ()."""
    found: list[tuple[int, tuple[str, ...]]] = []
    stack: list[ast.AST] = list(function.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue  # a nested function's returns are its own
        if isinstance(node, ast.Return) and isinstance(node.value, ast.Tuple):
            names = [element_name(e, i) for i, e in enumerate(node.value.elts)]
            found.append((node.lineno, tuple(names)))
        stack.extend(ast.iter_child_nodes(node))
    return min(found)[1] if found else ()


def signatures(source: str, only: Sequence[str] = ()) -> list[Signature]:
    """The reference's public top-level functions, in file order (or those named in ``only``)."""
    tree = ast.parse(source)
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    if only:
        by_name = {f.name: f for f in functions}
        missing = [name for name in only if name not in by_name]
        if missing:
            raise KeyError(", ".join(missing))
        functions = [by_name[name] for name in only]
    return [
        Signature(
            name=f.name,
            params=tuple(a.arg for a in f.args.posonlyargs + f.args.args),
            slots=returned_slots(f),
            docstring=ast.get_docstring(f),
        )
        for f in functions
    ]


def quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def partner_forward(signature: Signature, by_name: Mapping[str, Signature]) -> Signature | None:
    """The forward whose cache a backward takes (``affine_backward`` → ``affine_forward``), if any."""
    if not any(is_cache(p) for p in signature.params) or "backward" not in signature.name:
        return None
    forward = by_name.get(signature.name.replace("backward", "forward"))
    return forward if forward is not None and any(is_cache(s) for s in forward.slots) else None


def differentiated(slot: str | None, forward: Signature) -> str:
    """The forward's input a backward's slot is the gradient of (``dw`` → ``w``), when the names say so."""
    if slot is not None and slot.startswith("d") and slot[1:] in forward.params:
        return slot[1:]
    if slot is None and len(forward.params) == 1:
        return forward.params[0]
    return PLACEHOLDER


def item_lines(signature: Signature, slot: str | None, forward: Signature | None = None) -> list[str]:
    """One rubric item, as YAML lines: everything the reference tells, TO_FILL for the rest.

    A backward that takes a forward's cache gets that forward as a ``setup`` call (so it
    is graded on the cache the student's own forward makes), the forward's inputs, and
    finite differences of the forward's output; a forward's own items are judged by the
    reference alone.
    """
    item_id = signature.name if slot is None else f"{signature.name}.{slot}"
    inputs = list(signature.params)
    if forward is not None:
        inputs = list(forward.params) + [p for p in signature.params if not is_cache(p) and p not in forward.params]
    lines = [
        f"  - id: {item_id}",
        f"    label: {quoted(item_id)}",
        f"    function: {signature.name}",
        "    points: 1",
        "    visibility: visible",
        "    inputs:",
    ]
    lines += [f"      {param}: {{shape: {PLACEHOLDER}}}" for param in inputs] or ["      {}"]
    if forward is not None:
        lines.append(
            f"    setup: [{{call: {forward.name}, args: [{', '.join(forward.params)}], as: [{', '.join(forward.slots)}]}}]"
        )
    lines.append(f"    args: [{', '.join(signature.params)}]")
    if slot is not None:
        lines.append(f"    slots: [{', '.join(signature.slots)}]")
        lines.append(f"    output: {slot}")
    lines.append(f"    returns: {PLACEHOLDER}")
    if forward is not None:
        out = next((s for s in forward.slots if not is_cache(s)), PLACEHOLDER)
        upstream = next((p for p in signature.params if not is_cache(p)), PLACEHOLDER)
        lines.append(
            f"    finite_difference: {{forward: {forward.name}, slot: {out}, args: [{', '.join(forward.params)}], "
            f"wrt: {differentiated(slot, forward)}, upstream: {upstream}}}"
        )
    elif any(is_cache(s) for s in signature.slots):
        lines.append("    # a forward's output is judged by the reference alone (no finite_difference)")
    else:
        lines.append(f"    finite_difference: {{forward: {PLACEHOLDER}, args: [{PLACEHOLDER}], wrt: {PLACEHOLDER}}}")
    return lines


def rubric_text(
    name: str, reference: str, template: str, functions: Iterable[Signature], seed: int | None = None
) -> str:
    """The starting rubric's YAML; ``reference`` and ``template`` are paths relative to the rubric."""
    seed = secrets.randbits(63) if seed is None else seed
    lines = [
        f"# Starting rubric for {name}, written by `grade new` from {reference}.",
        f"# Replace every {PLACEHOLDER} (shapes use dimension names drawn from settings.dims),",
        "# drop the items you don't grade, then run `grade validate` on this file.",
        "schema_version: 1",
        f"assignment: {name}",
        f"title: {quoted(PLACEHOLDER)}",
        f"reference: {reference}",
        f"template: {template}",
        f"submission_filename: {name}.py",
        f"seed: {seed}   # large and random: the visible cases must not give it away",
        "",
        "settings:",
        "  cases: {visible: 1, hidden: 4}",
        f"  dims: {{N: [2, 9]}}   # {PLACEHOLDER}: a [low, high] range for every dimension name",
        "",
        "equations:",
    ]
    functions = list(functions)
    by_name = {s.name: s for s in functions}
    for signature in functions:
        graded = [s for s in signature.slots if not is_cache(s)] if signature.slots else [None]
        forward = partner_forward(signature, by_name)
        for slot in graded:
            lines += item_lines(signature, slot, forward) + [""]
    return "\n".join(lines).rstrip() + "\n"


def stub(function: ast.FunctionDef, lines: list[str]) -> list[str]:
    """A function's header and docstring with its body replaced by ``raise NotImplementedError``."""
    start = (function.decorator_list[0].lineno if function.decorator_list else function.lineno) - 1
    body = function.body
    has_doc = bool(body) and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant)
    keep_to = body[0].end_lineno if has_doc else body[0].lineno - 1
    kept = lines[start:keep_to]
    indent = re.match(r"[ \t]*", lines[body[0].lineno - 1]).group(0)
    return kept + [f"{indent}raise NotImplementedError"]


def template_text(source: str, functions: Sequence[Signature], reference: str = "the reference") -> str:
    """The student template: nbgrader-style regions stripped, or stubs of the named functions.

    A reference marked with ``### BEGIN SOLUTION`` / ``### END SOLUTION`` keeps
    everything outside the regions (helpers, constants, comments) and each region
    becomes ``raise NotImplementedError``, as nbgrader does; otherwise the template is
    the module docstring, the imports and each graded function's signature and
    docstring.
    """
    note = f"# Student template written by `grade new` from {reference}: reword its docstrings for students.\n"
    if SOLUTION_REGION.search(source):
        return note + SOLUTION_REGION.sub(lambda m: f"{m.group(1)}raise NotImplementedError\n", source)
    tree = ast.parse(source)
    lines = source.splitlines()
    wanted = {s.name for s in functions}
    out: list[str] = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is tree.body[0]:
            out += lines[node.lineno - 1 : node.end_lineno] + [""]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out += lines[node.lineno - 1 : node.end_lineno]
        elif isinstance(node, ast.FunctionDef) and node.name in wanted:
            out += ["", ""] + stub(node, lines)
    return note + "\n".join(out).strip("\n") + "\n"


def placeholders(document: object, path: str = "") -> list[str]:
    """The key paths (``equations[2].inputs.x.shape``) whose value still holds ``TO_FILL``."""
    found: list[str] = []
    if isinstance(document, Mapping):
        for key, value in document.items():
            found += placeholders(value, f"{path}.{key}" if path else str(key))
    elif isinstance(document, list):
        for i, value in enumerate(document):
            found += placeholders(value, f"{path}[{i}]")
    elif isinstance(document, str) and PLACEHOLDER in document:
        found.append(path)
    return found
