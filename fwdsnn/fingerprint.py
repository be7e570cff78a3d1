"""Code fingerprints: a hash of the fwdsnn code a stage runs, for Snakemake's params.

Snakemake reruns a job when its script or params change, not when an imported package
changes. A rule that puts ``code_fingerprint(<its modules>)`` into ``params`` reruns exactly
when one of those modules, or an fwdsnn module they import, is edited. Imports are found by
reading the source (no import needed), so a family's solver module changes only its targets.
"""

import ast
import functools
import hashlib
import importlib.util
from pathlib import Path

PACKAGE = "fwdsnn"


def _package_root() -> Path:
    """The folder holding the fwdsnn package that Python would import (a copy may shadow it)."""
    return Path(importlib.util.find_spec(PACKAGE).origin).parent.parent


def _source_path(module: str) -> Path | None:
    """The source file of an fwdsnn module, found on disk without importing it (importing
    would pull torch into Snakemake's DAG building just to hash some files)."""
    base = _package_root().joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(module: str, path: Path) -> set[str]:
    """fwdsnn modules that ``module`` imports, absolute or relative, at any depth of its code."""
    return {name for name in _imports_in(module, path, path.read_text()) if _source_path(name)}


@functools.lru_cache(maxsize=None)
def _imports_in(module: str, path: Path, source: str) -> frozenset[str]:
    """The fwdsnn names the source imports, walked once per text (a plan fingerprints the same
    modules for many rules; an edited file has another text, so it is walked again)."""
    tree = ast.parse(source, filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                base_parts = parts if is_package else parts[:-1]
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            # `from pkg import name` may import a submodule called name
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return frozenset(name for name in found if name == PACKAGE or name.startswith(PACKAGE + "."))


def module_closure(*modules: str) -> list[Path]:
    """Source files of the given fwdsnn modules and every fwdsnn module they import."""
    pending, seen = list(modules), {}
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        path = _source_path(name)
        if path is None:
            raise ModuleNotFoundError(f"no Python source for module {name!r}")
        seen[name] = path
        pending.extend(_imported_modules(name, path))
    return sorted(set(seen.values()))


def code_fingerprint(*modules: str) -> str:
    """sha256 over the source of the modules' import closure (paths relative to the package)."""
    root = _package_root()
    digest = hashlib.sha256()
    for path in module_closure(*modules):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(_code_only(path).encode())
    return digest.hexdigest()[:16]


def _code_only(path: Path) -> str:
    """The module's syntax tree without comments, docstrings or layout: editing prose must not
    rerun a stage (a docstring fix would otherwise retrain the whole study)."""
    return _without_docstrings(path, path.read_text())


@functools.lru_cache(maxsize=None)
def _without_docstrings(path: Path, source: str) -> str:
    tree = ast.parse(source, filename=str(path))  # its own parse: the docstrings are cut out
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)
