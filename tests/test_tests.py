"""The tests' own shape: every test checks something. A test function with no `assert`, no
`pytest.raises` / `pytest.warns` / `pytest.fail` and no call of a checking helper passes whatever
the code does, so it is a defect, not a test."""
import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
PYTEST_CHECKS = {"raises", "warns", "fail", "deprecated_call"}


def _called_name(call: ast.Call) -> str:
    """`f` for f(...), `g` for a.b.g(...)."""
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""


def _checks_directly(function: ast.AST) -> bool:
    for node in ast.walk(function):
        if isinstance(node, ast.Assert):
            return True
        if isinstance(node, ast.Call):
            name = _called_name(node)
            if name.startswith("assert"):  # np.testing.assert_allclose, assert_exercises_correct...
                return True
            if name in PYTEST_CHECKS and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "pytest":
                return True
    return False


def functions(sources: dict[str, str]) -> dict[str, list[ast.AST]]:
    """Every function defined in the sources (file -> text), by name."""
    found: dict[str, list[ast.AST]] = {}
    for text in sources.values():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.setdefault(node.name, []).append(node)
    return found


def unchecked_tests(sources: dict[str, str]) -> list[str]:
    """`file::test` for each test function that asserts nothing, directly or through a helper
    (a function of the test sources that itself checks, found by name, to a fixed point)."""
    defined = functions(sources)
    checking = {name for name, nodes in defined.items() if any(_checks_directly(n) for n in nodes)}
    while True:
        more = {
            name for name, nodes in defined.items() if name not in checking
            and any(isinstance(c, ast.Call) and _called_name(c) in checking for n in nodes for c in ast.walk(n))
        }
        if not more:
            break
        checking |= more
    empty = []
    for file, text in sources.items():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                uses = {_called_name(c) for c in ast.walk(node) if isinstance(c, ast.Call)}
                if not _checks_directly(node) and not uses & checking:
                    empty.append(f"{file}::{node.name}")
    return empty


def test_every_test_checks_something():
    sources = {str(p.relative_to(TESTS)): p.read_text() for p in sorted(TESTS.rglob("*.py"))}
    assert unchecked_tests(sources) == []


def test_the_check_finds_a_test_that_checks_nothing():
    sources = {"test_x.py": '''
import pytest

def helper(x):
    assert x > 0

def indirect(x):
    helper(x)

def test_asserts():
    assert 1

def test_through_a_helper():
    indirect(3)

def test_raises():
    with pytest.raises(ValueError):
        int("x")

def test_numpy():
    np.testing.assert_allclose(1, 1)

def test_only_runs_code():
    result = sum([1, 2])
    print(result is not None)

def test_only_approx():
    pytest.approx(1.0)
'''}
    assert unchecked_tests(sources) == ["test_x.py::test_only_runs_code", "test_x.py::test_only_approx"]
