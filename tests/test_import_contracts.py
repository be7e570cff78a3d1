"""The imports that must never exist (DESIGN §11), read from the source with `ast`: a stage that
imported a later stage, a registry or torch where it needs none would rerun jobs it should not
(code fingerprints follow imports), or slow every job that imports it."""

import ast
from collections import deque
from pathlib import Path

import pytest

from conftest import REPO

TORCH = ("torch", "norse", "nirtorch")
LEAVES = ("fwdsnn.artifacts",)  # import nothing of fwdsnn at all
TORCH_FREE = ("fwdsnn.artifacts", "fwdsnn.predictions", "fwdsnn.registry", "fwdsnn.tables",
              "fwdsnn.figures", "fwdsnn.status", "fwdsnn.hardware.format")
REGISTRIES = ("fwdsnn.registry", "fwdsnn.config", "fwdsnn.pdes", "fwdsnn.reference")
# (importers, forbidden targets, why); a target covers its submodules, importers theirs
RULES = [
    (("fwdsnn.hardware",), ("fwdsnn.train", "fwdsnn.grad"), "hardware reads files, it does not train"),
    (("fwdsnn.tables", "fwdsnn.figures"), ("fwdsnn.hardware", "fwdsnn.snn", "fwdsnn.grad"),
     "tables and figures read files only"),
    (("fwdsnn.data",), ("fwdsnn.reference",), "data reads the split codes from fwdsnn.artifacts"),
    (("fwdsnn.train", "fwdsnn.grad", "fwdsnn.snn", "fwdsnn.data"), REGISTRIES,
     "registering a family, estimator or model kind must not change training code"),
    (("fwdsnn.reference",), ("fwdsnn.registry", "fwdsnn.config"),
     "registering a family must not change reference code"),
    (("fwdsnn",), ("workflow",), "the package stands without the workflow"),
]


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def package_imports(root: Path, package: str = "fwdsnn") -> dict[str, set[str]]:
    """Every module of the package under ``root`` -> the absolute names it imports, at any
    depth of its code. A submodule import also runs its parent packages, so they count."""
    files = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for module, path in files.items():
        base_parts = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                prefix = base_parts[:len(base_parts) - node.level + 1] if node.level else []
                base = ".".join(prefix + ([node.module] if node.module else []))
                found.add(base)
                found.update(f"{base}.{alias.name}" for alias in node.names
                             if f"{base}.{alias.name}" in files)
        parents = {".".join(name.split(".")[:i]) for name in found | {module} if name in files
                   for i in range(1, name.count(".") + 1)}
        graph[module] = (found | parents) - {module}
    return graph


def import_chain(graph: dict[str, set[str]], start: str, forbidden) -> list[str] | None:
    """The shortest chain of imports from ``start`` to a name ``forbidden`` accepts, through the
    package's own modules (what importing ``start`` would run); None if there is none."""
    parent, queue = {start: None}, deque([start])
    while queue:
        module = queue.popleft()
        for name in sorted(graph.get(module, ()), key=lambda n: (-n.count("."), n)):  # named first
            if name in parent:
                continue
            parent[name] = module
            if forbidden(name):
                chain = [name]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return chain[::-1]
            if name in graph:
                queue.append(name)
    return None


def violations(graph: dict[str, set[str]]) -> list[str]:
    """One line per forbidden import edge, naming the importing module and the target."""
    found = []
    for importers, targets, why in RULES:
        for module in sorted(m for m in graph if any(_within(m, i) for i in importers)):
            chain = import_chain(graph, module, lambda n: any(_within(n, t) for t in targets))
            if chain:
                found.append(f"{module} imports {chain[-1]} (via {' -> '.join(chain)}): {why}")
    for module in (m for m in TORCH_FREE if m in graph):
        chain = import_chain(graph, module, lambda n: any(_within(n, t) for t in TORCH))
        if chain:
            found.append(f"{module} imports {chain[-1]} (via {' -> '.join(chain)}): it must stay torch-free")
    for module in (m for m in LEAVES if m in graph):
        for name in sorted(n for n in graph[module] if _within(n, "fwdsnn") and not _within(module, n)):
            found.append(f"{module} imports {name}: it is a leaf and imports nothing of fwdsnn")
    return found


def test_no_forbidden_import_exists():
    assert violations(package_imports(REPO)) == []


def test_the_checker_flags_a_synthetic_forbidden_import(tmp_path):
    files = {"__init__.py": "", "artifacts.py": "import numpy\n", "status.py": "",
             "train.py": "from fwdsnn import status\n",
             "hardware/__init__.py": "", "hardware/format.py": "from fwdsnn.status import X\n",
             "hardware/emulator.py": "def f():\n    from ..train import something\n",
             "tables.py": "import fwdsnn.hardware.format\n",
             "predictions.py": "from . import helper\n", "helper.py": "import torch.nn\n"}
    for name, text in files.items():
        (tmp_path / "fwdsnn" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "fwdsnn" / name).write_text(text)
    found = violations(package_imports(tmp_path))
    assert found == [
        "fwdsnn.hardware.emulator imports fwdsnn.train (via fwdsnn.hardware.emulator -> fwdsnn.train): "
        "hardware reads files, it does not train",
        "fwdsnn.tables imports fwdsnn.hardware.format (via fwdsnn.tables -> fwdsnn.hardware.format): "
        "tables and figures read files only",
        "fwdsnn.predictions imports torch.nn (via fwdsnn.predictions -> fwdsnn.helper -> torch.nn): "
        "it must stay torch-free",
    ]
    (tmp_path / "fwdsnn" / "artifacts.py").write_text("from fwdsnn import status\n")
    assert "fwdsnn.artifacts imports fwdsnn.status: it is a leaf and imports nothing of fwdsnn" in \
        violations(package_imports(tmp_path))


def _code_strings(path: Path) -> list[str]:
    """String constants of a module that are not docstrings."""
    tree = ast.parse(path.read_text(), filename=str(path))
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def test_the_package_names_no_path_under_workflow():
    offenders = [f"{path.relative_to(REPO)}: {text!r}" for path in sorted((REPO / "fwdsnn").rglob("*.py"))
                 for text in _code_strings(path) if "workflow/" in text or text == "workflow"]
    assert offenders == []


@pytest.mark.parametrize("folder", ["fwdsnn", "workflow/scripts"])
def test_stage_labels_come_from_artifacts(folder):
    """A `stage=` written as a literal would be a second definition of a file's contract."""
    offenders = []
    for path in sorted((REPO / folder).rglob("*.py")):
        if path.name == "artifacts.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call):
                offenders += [f"{path.relative_to(REPO)}:{node.lineno}" for k in node.keywords
                              if k.arg == "stage" and isinstance(k.value, (ast.Constant, ast.JoinedStr))]
    assert offenders == []
