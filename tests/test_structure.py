"""The shape of the code, checked: short functions and files in underspec/, no test module importing
another, and import-linter's layer contracts (pyproject.toml) failing on a wrong-way import."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from helpers.paths import REPO

TESTS = REPO / "tests"
MAX_FUNCTION_LINES, MAX_FILE_LINES = 50, 300


def python_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def test_no_function_in_underspec_is_over_50_lines():
    """From `def` to the last line (decorators not counted); methods and nested functions too."""
    long = []
    for path in python_files(REPO / "underspec"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(REPO)}: {node.name} is {n} lines (line {node.lineno})")
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


def test_every_file_in_underspec_is_at_most_300_lines():
    long = [f"{p.relative_to(REPO)}: {n} lines" for p in python_files(REPO / "underspec")
            if (n := len(p.read_text().splitlines())) > MAX_FILE_LINES]
    assert not long, f"files over {MAX_FILE_LINES} lines:\n" + "\n".join(long)


def imported_names(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in a module: `import a.b`, `from a import b` as a.b."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            out += [(node.lineno, base)] + [(node.lineno, f"{base}.{a.name}") for a in node.names]
    return out


def test_no_test_module_imports_another_test_module_or_conftest():
    """What tests share lives in tests/helpers/ (fixtures through the plugin helpers.fixtures)."""
    wrong = []
    for path in python_files(TESTS):
        for line, name in imported_names(ast.parse(path.read_text(), str(path))):
            if any(part.startswith("test_") or part == "conftest" for part in name.split(".")):
                wrong.append(f"{path.relative_to(REPO)}:{line} imports {name}")
    assert not wrong, "tests import test modules (move what they share to tests/helpers/):\n" + "\n".join(wrong)


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """The venv's lint-imports on the copy at root: run there (import-linter puts the working folder
    first on sys.path, before the editable install's finder) and with PYTHONPATH=root."""
    exe = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(exe), "--no-cache"], cwd=root, env=env, capture_output=True, text=True, timeout=300)


def copy_of_the_code(root: Path) -> None:
    for folder in ("underspec", "entrypoints"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")


def test_the_layer_contracts_fail_on_a_wrong_way_import_naming_both_modules(tmp_path):
    """The measures layer may not import the reporting layer above it: one such import, appended to a
    measures module of a scratch copy, breaks the layers contract; the unmodified copy keeps every
    contract. The broken run names the copy's line, which the installed package does not have."""
    copy_of_the_code(tmp_path)
    found = subprocess.run([sys.executable, "-c", "import underspec, entrypoints; print(underspec.__file__, "
                            "entrypoints.__path__[0])"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(tmp_path)},
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0 and all(Path(p).is_relative_to(tmp_path) for p in found.stdout.split()), found
    n_contracts = len(tomllib.loads((tmp_path / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"])

    clean = lint_imports(tmp_path)
    assert clean.returncode == 0 and f"Contracts: {n_contracts} kept, 0 broken." in clean.stdout, \
        clean.stdout + clean.stderr

    source = next(p for p in sorted((tmp_path / "underspec" / "measures").glob("*.py")) if p.stem != "__init__")
    target = next(p for p in sorted((tmp_path / "underspec" / "reporting").glob("*.py")) if p.stem != "__init__")
    importer, imported = f"underspec.measures.{source.stem}", f"underspec.reporting.{target.stem}"
    text = source.read_text()
    source.write_text(f"{text.rstrip()}\nimport {imported}  # noqa: E402,F401  a wrong-way import\n")
    line = len(source.read_text().splitlines())

    broken = lint_imports(tmp_path)
    out = broken.stdout + broken.stderr
    assert broken.returncode != 0, out
    assert "underspec in layers BROKEN" in out and f"{importer} -> {imported} (l.{line})" in out, out
    assert f"Contracts: {n_contracts - 1} kept, 1 broken." in out, out
