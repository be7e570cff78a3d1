"""The restricted evaluator computes what numpy computes and rejects everything else by name."""

import numpy as np
import pytest

from fwdsnn.expression import ExpressionError, compile_expression

X = np.linspace(-0.9, 0.9, 7)
Y = np.linspace(0.1, 2.0, 7)


@pytest.mark.parametrize("text, expected", [
    ("x**2", X**2),
    ("sin(pi*x)*exp(-y)", np.sin(np.pi * X) * np.exp(-Y)),
    ("-x + +y - 3*x/y", -X + Y - 3 * X / Y),
    ("2**-x", 2.0 ** -X),
    ("x**3", X**3),  # integer exponent of a negative float base
    ("sqrt(abs(x)) + log(y) + log10(y) + e", np.sqrt(np.abs(X)) + np.log(Y) + np.log10(Y) + np.e),
    ("arcsin(x) + arccos(x) + arctan(x) + tan(x)", np.arcsin(X) + np.arccos(X) + np.arctan(X) + np.tan(X)),
    ("sinh(x)*cosh(y) - tanh(x*y) + cos(1.5)", np.sinh(X) * np.cosh(Y) - np.tanh(X * Y) + np.cos(1.5)),
    ("1/2", np.full_like(X, 0.5)),  # true division, not integer
])
def test_values_match_numpy(text, expected):
    result = compile_expression(text, ["x", "y"])(x=X, y=Y)
    assert result.dtype == np.float64
    np.testing.assert_allclose(result, expected, rtol=1e-14, atol=1e-15)


def test_constant_broadcasts_to_input_shape():
    x = np.zeros((3, 4))
    result = compile_expression("2", ["x"])(x=x)
    assert result.shape == (3, 4)
    assert np.all(result == 2.0)


def test_integer_inputs_are_evaluated_as_float():
    # int arrays with a negative power would raise in numpy; inputs are cast to float64 first.
    np.testing.assert_array_equal(compile_expression("x**-1", ["x"])(x=np.array([1, 2, 4])), [1.0, 0.5, 0.25])


def test_domain_errors_give_nan_not_exceptions():
    assert np.isnan(compile_expression("log(x)", ["x"])(x=np.array([-1.0])))[0]


def test_missing_variable_at_call_time():
    f = compile_expression("x + y", ["x", "y"])
    with pytest.raises(ExpressionError, match="'y'"):
        f(x=X)


@pytest.mark.parametrize("text, fragment", [
    ("np.sin(x)", "attribute access 'np.sin'"),
    ("x.real", "attribute access 'x.real'"),
    ("__import__('os')", "function '__import__' is not allowed"),
    ("open(x)", "function 'open' is not allowed (allowed: abs, arccos"),
    ("max(x)", "function 'max'"),
    ("x + z", "unknown variable 'z' (allowed: x"),
    ("lambda: 1", "lambda"),
    ("x[0]", "subscript 'x[0]'"),
    ("x < 1", "comparison 'x < 1'"),
    ("x and 1", "boolean operator 'x and 1'"),
    ("not x", "UnaryOp construct 'not x'"),
    ("x if x else 1", "conditional expression"),
    ("x // 2", "BinOp construct 'x // 2'"),
    ("x @ x", "BinOp construct 'x @ x'"),
    ("'abc'", "constant 'abc'"),
    ("True", "constant True"),
    ("1j", "constant 1j"),
    ("sin(x=1)", "keyword argument 'x' in call to 'sin'"),
    ("sin(**x)", "keyword argument '**' in call to 'sin'"),
    ("sin(x, x)", "'sin' takes exactly 1 argument, got 2"),
    ("sin(*x)", "starred argument '*x'"),
    ("sin", "function 'sin' must be called"),
    ("x(1)", "function 'x' is not allowed"),
    ("(x + 1)(2)", "call of 'x + 1'"),
    ("[x]", "List construct '[x]'"),
    ("x**", "syntax error in expression 'x**'"),
    ("x = 1", "syntax error in expression 'x = 1'"),
    ("", "empty expression"),
    ("   ", "empty expression"),
])
def test_rejected_constructs_name_the_offender(text, fragment):
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, ["x"])
    assert fragment in str(info.value)


def test_non_string_is_rejected():
    with pytest.raises(ExpressionError, match="must be a string"):
        compile_expression(3, ["x"])


def test_deep_nesting_is_an_expression_error():
    with pytest.raises(ExpressionError):
        compile_expression("-" * 100_000 + "x", ["x"])
