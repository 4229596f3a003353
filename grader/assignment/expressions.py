"""Integer arithmetic for rubric dimensions: derived sizes and the constraints on a case.

A rubric may derive a dimension from others (``Hp: "1 + (H + 2*pad - HH) // stride"``)
and require relations between them (``"H + 2*pad >= HH"``). Those strings are
instructor data, but they are still parsed, never ``eval``-ed: only names, integer
literals, ``+ - * // %``, unary minus, comparisons and ``and``/``or``/``not`` are
accepted, so a typo is a ``RubricError`` naming the key, not a Python error at grade time.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Mapping
from dataclasses import dataclass

from grader.errors import RubricError

BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}
BINARY[ast.Mod] = operator.mod
COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}
MAX_LENGTH = 200


@dataclass(frozen=True)
class Expression:
    """A parsed arithmetic expression over named integer dimensions."""

    text: str
    tree: ast.expr
    names: tuple[str, ...]

    def evaluate(self, values: Mapping[str, int]) -> int:
        return _evaluate(self.tree, values)


def parse_expression(text: str, where: str) -> Expression:
    """Parse ``text`` or raise a RubricError saying what is not allowed, at ``where``."""
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_LENGTH:
        raise RubricError(f"{where}: must be an arithmetic expression of at most {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as err:
        raise RubricError(f"{where}: {text!r} is not an arithmetic expression ({err.msg})") from err
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in names:
                names.append(node.id)
        elif isinstance(node, ast.Constant):
            if type(node.value) is not int:
                raise RubricError(f"{where}: {text!r}: only integer literals are allowed, not {node.value!r}")
        elif (
            not isinstance(
                node,
                (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.Load, ast.USub, ast.Not, ast.And, ast.Or),
            )
            and type(node) not in BINARY
            and type(node) not in COMPARE
        ):
            raise RubricError(
                f"{where}: {text!r}: {type(node).__name__} is not allowed "
                "(names, integers, + - * // %, comparisons, and/or/not)"
            )
    return Expression(text=text, tree=tree, names=tuple(names))


def _evaluate(node: ast.expr, values: Mapping[str, int]) -> int:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return int(values[node.id])
    if isinstance(node, ast.UnaryOp):
        inner = _evaluate(node.operand, values)
        return int(not inner) if isinstance(node.op, ast.Not) else -inner
    if isinstance(node, ast.BinOp):
        right = _evaluate(node.right, values)
        if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
            raise ZeroDivisionError("division by zero in a rubric expression")
        return BINARY[type(node.op)](_evaluate(node.left, values), right)
    if isinstance(node, ast.BoolOp):
        results = [_evaluate(v, values) for v in node.values]
        return int(all(results) if isinstance(node.op, ast.And) else any(results))
    if isinstance(node, ast.Compare):
        left = _evaluate(node.left, values)
        for op, comparator in zip(node.ops, node.comparators):
            right = _evaluate(comparator, values)
            if not COMPARE[type(op)](left, right):
                return 0
            left = right
        return 1
    raise TypeError(f"unexpected node {type(node).__name__}")  # parse_expression admits no other node
