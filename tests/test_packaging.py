"""fwdsnn as a library: the declared dependencies hold the pinned versions, and the README's
Python example runs as written, outside the repository."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def pins(path: Path) -> dict[str, str]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return {Requirement(line).name.lower(): line.split("==")[1] for line in lines if line}


def test_declared_dependencies_hold_the_pinned_versions():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = {**pins(REPO / "requirements.txt"), **pins(REPO / "requirements-nodeps.txt")}
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for extra in project["optional-dependencies"].values() for r in extra]
    for requirement in declared:
        name = requirement.name.lower()
        assert name in pinned, f"{name} is declared in pyproject.toml but not pinned"
        assert requirement.specifier.contains(pinned[name]), f"{requirement} excludes the pin {pinned[name]}"
    names = {r.name.lower() for r in declared}
    assert {"torch", "numpy", "xarray", "netcdf4", "nir", "nirtorch"} <= names
    assert "norse" not in names and "torchvision" not in names  # see README: it drags a CUDA torch
    assert not Requirement(next(r for r in project["dependencies"] if r.startswith("torch"))
                           ).specifier.contains("2.14.0")


def readme_example() -> str:
    section = (REPO / "README.md").read_text().split("## Using fwdsnn from Python\n")[1].split("\n## ")[0]
    [code] = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return code


def test_the_readme_example_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-c", readme_example()], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^own loop: loss \S+, test rel-L2 \S+$", proc.stdout, flags=re.M)
    assert re.search(r"^stage: completed; u\(-1, -0.5, 0, 0.5, 1\) = \[(\S+, ){4}\S+\]$", proc.stdout,
                     flags=re.M)
