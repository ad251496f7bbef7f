"""A safe arithmetic evaluator for the ``calculator`` tool — never ``eval``.

The expression is parsed with :mod:`ast` and walked by hand: only numbers, ``+ - * / // % **``,
unary ``+``/``-`` and parentheses are accepted; anything else (names, calls, attributes,
subscripts, strings, comparisons...) is refused. Sizes are bounded so a short expression cannot
make the process compute for minutes or build a gigantic integer.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable

from jarvis.errors import ToolError

MAX_EXPRESSION_CHARS = 500
MAX_NODES = 200
MAX_EXPONENT = 1000
MAX_INT_BITS = 4096

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Number, Number], Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Number], Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def evaluate(expression: str) -> Number:
    """Evaluate an arithmetic expression; raise :class:`ToolError` for anything else."""
    if not isinstance(expression, str) or not expression.strip():
        raise ToolError("Give an arithmetic expression, e.g. 2 * (3 + 4).")
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise ToolError(f"The expression is longer than {MAX_EXPRESSION_CHARS} characters.")
    # '^' is how people write powers; Python's xor is not offered anyway.
    source = expression.replace("^", "**").replace("×", "*").replace("÷", "/")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except (SyntaxError, ValueError) as exc:
        raise ToolError("That is not a valid arithmetic expression.") from exc
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise ToolError("The expression is too long.")
    result = _eval(tree.body)
    if isinstance(result, float) and not math.isfinite(result):
        raise ToolError("The result is not a finite number.")
    return result


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ToolError("Only numbers are allowed.")
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            _check_power(left, right)
        try:
            return _check(_BINARY[type(node.op)](left, right))
        except ZeroDivisionError as exc:
            raise ToolError("Division by zero.") from exc
        except OverflowError as exc:
            raise ToolError("The result is too large.") from exc
    raise ToolError(
        f"Only numbers, + - * / // % ** and parentheses are allowed (found {type(node).__name__})."
    )


def _check_power(base: Number, exponent: Number) -> None:
    if abs(exponent) > MAX_EXPONENT:
        raise ToolError(f"Exponents are limited to ±{MAX_EXPONENT}.")
    # bits of base ** exponent ~ exponent * bits(base): refuse before computing.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * abs(base).bit_length() > MAX_INT_BITS
    ):
        raise ToolError("The result is too large.")


def _check(value: object) -> Number:
    if isinstance(value, complex):
        raise ToolError("The result is not a real number.")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ToolError("The result is too large.")
    assert isinstance(value, int | float)
    return value
