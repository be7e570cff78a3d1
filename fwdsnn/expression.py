"""A restricted evaluator for the formulas of ``function`` targets (``"sin(pi*x)*exp(-y)"``).

Config strings are untrusted text, so they are never handed to ``eval``: the expression is parsed
with :mod:`ast`, the whole tree is checked against a small whitelist up front (so config
validation can call :func:`compile_expression` just to reject a bad formula early), and the
returned callable interprets the checked tree with numpy in float64.
"""

import ast
from collections.abc import Callable, Sequence

import numpy as np

FUNCTIONS = {name: getattr(np, name) for name in (
    "sin", "cos", "tan", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "exp", "log", "log10", "sqrt", "abs")}
CONSTANTS = {"pi": np.pi, "e": np.e}
BINARY_OPS = {ast.Add: np.add, ast.Sub: np.subtract, ast.Mult: np.multiply,
              ast.Div: np.divide, ast.Pow: np.power}
UNARY_OPS = {ast.UAdd: np.positive, ast.USub: np.negative}

# What a rejected node is called in the error message (the generic fallback uses its class name).
_CONSTRUCT_NAMES = {
    ast.Lambda: "lambda", ast.Subscript: "subscript", ast.Compare: "comparison",
    ast.BoolOp: "boolean operator", ast.IfExp: "conditional expression",
    ast.Attribute: "attribute access", ast.Starred: "starred argument",
}


class ExpressionError(ValueError):
    """A config expression that cannot be parsed or uses something outside the whitelist."""


def _allowed_functions() -> str:
    return ", ".join(sorted(FUNCTIONS))


def _check(node: ast.AST, variables: Sequence[str]) -> None:
    """Raise ExpressionError for the first node outside the grammar; recurse otherwise."""
    if isinstance(node, ast.Expression):
        _check(node.body, variables)
    elif isinstance(node, ast.Constant):
        # bool is an int subclass, but True/False are not numbers a user means to write.
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExpressionError(f"constant {node.value!r} is not allowed (only int and float numbers)")
    elif isinstance(node, ast.Name):
        if node.id in FUNCTIONS and node.id not in variables:
            raise ExpressionError(f"function {node.id!r} must be called, e.g. {node.id}(x)")
        if node.id not in variables and node.id not in CONSTANTS:
            allowed = ", ".join(variables) or "none"
            raise ExpressionError(f"unknown variable {node.id!r} (allowed: {allowed}; constants: pi, e)")
    elif isinstance(node, ast.UnaryOp) and type(node.op) in UNARY_OPS:
        _check(node.operand, variables)
    elif isinstance(node, ast.BinOp) and type(node.op) in BINARY_OPS:
        _check(node.left, variables)
        _check(node.right, variables)
    elif isinstance(node, ast.Call):
        _check_call(node, variables)
    else:
        what = _CONSTRUCT_NAMES.get(type(node), f"{type(node).__name__} construct")
        raise ExpressionError(f"{what} {ast.unparse(node)!r} is not allowed")


def _check_call(node: ast.Call, variables: Sequence[str]) -> None:
    if not isinstance(node.func, ast.Name):
        _check(node.func, variables)  # an attribute or other callee: reported by _check
        raise ExpressionError(f"call of {ast.unparse(node.func)!r} is not allowed")
    name = node.func.id
    if name not in FUNCTIONS:
        raise ExpressionError(f"function {name!r} is not allowed (allowed: {_allowed_functions()})")
    if node.keywords:
        keyword = node.keywords[0].arg or "**"
        raise ExpressionError(f"keyword argument {keyword!r} in call to {name!r} is not allowed")
    if len(node.args) != 1:
        raise ExpressionError(f"function {name!r} takes exactly 1 argument, got {len(node.args)}")
    _check(node.args[0], variables)


def _evaluate(node: ast.AST, values: dict[str, np.ndarray]) -> np.ndarray:
    """Interpret a tree that _check accepted."""
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        return values[node.id] if node.id in values else np.float64(CONSTANTS[node.id])
    if isinstance(node, ast.UnaryOp):
        return UNARY_OPS[type(node.op)](_evaluate(node.operand, values))
    if isinstance(node, ast.BinOp):
        return BINARY_OPS[type(node.op)](_evaluate(node.left, values), _evaluate(node.right, values))
    return FUNCTIONS[node.func.id](_evaluate(node.args[0], values))


def compile_expression(text: str, variables: Sequence[str]) -> Callable[..., np.ndarray]:
    """Check ``text`` and return ``f(**arrays)`` evaluating it on broadcast float64 arrays.

    Every name in ``variables`` must be passed by keyword; the result has the broadcast shape of
    the inputs even for an expression that ignores them. Domain errors follow numpy (nan/inf,
    without warnings), so callers decide whether non-finite values are acceptable.
    """
    if not isinstance(text, str):
        raise ExpressionError(f"expression must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ExpressionError("empty expression")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"syntax error in expression {text!r}: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:  # e.g. huge literals, deep nesting
        raise ExpressionError(f"cannot parse expression {text!r}: {exc}") from None
    variables = tuple(variables)
    try:
        _check(tree, variables)
    except RecursionError:
        raise ExpressionError(f"expression {text!r} is nested too deeply") from None

    def evaluate(**arrays: np.ndarray) -> np.ndarray:
        if set(arrays) != set(variables):
            raise ExpressionError(f"expression {text!r} needs exactly the variables "
                                  f"{list(variables)}, got {sorted(arrays)}")
        values = {name: np.asarray(value, dtype=np.float64) for name, value in arrays.items()}
        shape = np.broadcast_shapes(*(v.shape for v in values.values()))
        with np.errstate(all="ignore"):
            result = _evaluate(tree.body, values)
        return np.array(np.broadcast_to(result, shape), dtype=np.float64)

    return evaluate
