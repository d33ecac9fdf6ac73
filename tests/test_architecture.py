"""The code's shape, checked: the import layers and the absence of import cycles
(.importlinter, run through import-linter), and the size limits a reader relies on
(functions of core, learner, train and cluster at most 60 lines; files at most 500)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "r1zero"
FUNCTION_LIMIT = 60
FUNCTION_PACKAGES = ("core", "learner", "train", "cluster")
FILE_LIMIT = 500
FILE_EXCEPTIONS = {
    "sandbox/worker.py": "runs alone as `python -I -c <its text>` inside the sandbox, so it "
                         "cannot import a second module of its own",
}


def test_import_contracts_hold():
    """Top imports bottom, never back; no cycle between the modules of any package."""
    importlinter = pytest.importorskip("importlinter", reason="pip install import-linter (the dev extra)")
    from importlinter.cli import lint_imports

    assert importlinter is not None
    assert lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True) == 0, \
        "an import breaks a contract of .importlinter (run `lint-imports` for the details)"


def _functions(path: Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node.name, node.end_lineno - node.lineno + 1


@pytest.mark.parametrize("package", FUNCTION_PACKAGES)
def test_functions_are_short(package):
    long = [f"{p.relative_to(SRC)}:{name} ({n} lines)" for p in sorted((SRC / package).rglob("*.py"))
            for name, n in _functions(p) if n > FUNCTION_LIMIT]
    assert not long, f"functions over {FUNCTION_LIMIT} lines: {long}"


def test_files_are_short():
    long = [f"{p.relative_to(SRC)} ({n} lines)" for p in sorted(SRC.rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > FILE_LIMIT
            and str(p.relative_to(SRC)) not in FILE_EXCEPTIONS]
    assert not long, f"files over {FILE_LIMIT} lines: {long}"
