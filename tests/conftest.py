"""Shared helpers: run the real workflow in a scratch copy of the repository."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from fwdsnn.config import load_config_file, target_params, validate_config
from fwdsnn.reference import write_reference
from fwdsnn.registry import family_module

REPO = Path(__file__).resolve().parent.parent
QUICK = "workflow/configs/quick.yaml"
DIVERGING = "diverging.yaml"  # written beside the quick study's config by quick_study
DIVERGING_RUN = "parabola/mlp/bp-diverging/s0"
OVERLAY = ("--configfile", "config.yaml", QUICK, DIVERGING)


def diverging_overlay() -> dict:
    """The quick overlay's experiments plus one spiking run that diverges (bp at a learning
    rate of 1e30), so that the end-to-end study shows a diverged run flowing through every stage."""
    target, model, method, _ = DIVERGING_RUN.split("/")
    experiments = yaml.safe_load((REPO / QUICK).read_text())["experiments"]
    return {"methods": {method: {"estimator": "backprop"}},
            "experiments": [*experiments, {"target": target, "model": model, "methods": [method],
                                           "train": {"lr": 1.0e+30}}]}


def quick_config(workdir: Path) -> dict:
    """config.yaml with the study's overlays merged the way Snakemake merges them."""
    merged = load_config_file(workdir / OVERLAY[1])
    for overlay in OVERLAY[2:]:
        update_config(merged, load_config_file(workdir / overlay))
    return validate_config(merged)


def copy_workflow(dest: Path, with_package: bool = False) -> Path:
    """Snakefile, workflow/ and config.yaml (and optionally fwdsnn/) in a fresh directory."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", dest)
    shutil.copy(REPO / "config.yaml", dest)
    shutil.copytree(REPO / "workflow", dest / "workflow")
    if with_package:
        shutil.copytree(REPO / "fwdsnn", dest / "fwdsnn",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def register_toy_entries(package: Path) -> list[Path]:
    """Register a family, an estimator and a model kind in a copy of the package (fwdsnn/
    under a scratch directory), as a contributor would: one entry each in registry.py (an
    estimator also its memory and gradient traits; the schema's kind enum) and a module each. Returns the
    new modules."""
    registry = package / "registry.py"
    memory = ('"toy": {"autograd": False, "rows": 1, "per_layer": False, "example_sums": False, '
              '"traces": 0},')
    kind = '"toy_deeponet": {"class": "fwdsnn.snn.toy:ToyDeepONet", "layout": "deeponet", "outputs": "latent"},'
    registry.write_text(registry.read_text()
                        .replace("FAMILIES = {\n", 'FAMILIES = {\n    "toy": "fwdsnn.pdes.toy",\n')
                        .replace("ESTIMATORS = {\n", 'ESTIMATORS = {\n    "toy": "fwdsnn.grad.toy:Toy",\n')
                        .replace("ESTIMATOR_MEMORY = {\n", f"ESTIMATOR_MEMORY = {{\n    {memory}\n")
                        .replace("ESTIMATOR_GRADIENT = {\n", 'ESTIMATOR_GRADIENT = {\n    "toy": "surrogate",\n')
                        .replace("MODEL_KINDS = {\n", f"MODEL_KINDS = {{\n    {kind}\n"))
    schema = package / "schemas" / "config.schema.yaml"
    schema.write_text(schema.read_text().replace("enum: [spiking_mlp, spiking_deeponet, spiking_seponet]",
                                                 "enum: [spiking_mlp, spiking_deeponet, spiking_seponet, toy_deeponet]"))
    modules = {package / "pdes" / "toy.py": "from fwdsnn.pdes.dataset import operator_dataset\n",
               package / "grad" / "toy.py": "from fwdsnn.grad.base import Estimator\n\n\n"
                                            "class Toy(Estimator):\n    pass\n",
               package / "snn" / "toy.py": "from fwdsnn.snn.models import SpikingDeepONet\n\n\n"
                                           "class ToyDeepONet(SpikingDeepONet):\n"
                                           "    kind = \"toy_deeponet\"\n"}
    for path, text in modules.items():
        path.write_text(text)
    return list(modules)


def snakemake(workdir: Path, *args: str, check: bool = True, timeout: float = 600
              ) -> subprocess.CompletedProcess:
    """Run Snakemake of this interpreter in workdir; a local fwdsnn/ copy shadows the package.
    The timeout only stops a hung run: a loaded machine may take several times the usual."""
    env = dict(os.environ)
    if (workdir / "fwdsnn").is_dir():
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(workdir), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def planned_outputs(proc: subprocess.CompletedProcess) -> list[str]:
    """Output files of the jobs a (dry) run lists."""
    found = re.findall(r"^\s+output: (.+)$", proc.stdout + proc.stderr, flags=re.M)
    return sorted(path.strip() for line in found for path in line.split(", "))


def quick_copy(tmp_path_factory, name: str) -> Path:
    """A copy of the workflow with its own fwdsnn/ and the quick study's overlays."""
    workdir = copy_workflow(tmp_path_factory.mktemp(name), with_package=True)
    (workdir / DIVERGING).write_text(yaml.safe_dump(diverging_overlay(), sort_keys=False))
    return workdir


@pytest.fixture(scope="session")
def quick_study(tmp_path_factory) -> Path:
    """The quick overlay with one diverging run (DIVERGING) run once through every stage."""
    workdir = quick_copy(tmp_path_factory, "quick")
    snakemake(workdir, "-c2", *OVERLAY, timeout=3600)
    return workdir


@pytest.fixture(scope="session")
def quick_data(tmp_path_factory) -> Path:
    """Only the quick study's reference data, for the tests of the data stage's rerun rules:
    they need no trained runs, and on their own copy they run beside the full study."""
    workdir = quick_copy(tmp_path_factory, "quick_data")
    snakemake(workdir, "-c2", "reference_all", *OVERLAY)
    return workdir


@pytest.fixture(scope="session")
def parabola(tmp_path_factory) -> Path:
    """A small u = x^2 reference file (64 train / 32 test points) for training tests."""
    path = tmp_path_factory.mktemp("data") / "parabola.nc"
    write_reference("parabola", target_params("function", expression="x**2", domain=[[-1, 1]],
                                              n_train=64, n_test=32), family_module("function"), path)
    return path


def pytest_collection_modifyitems(items):
    """End-to-end tests first: `make test` hands out whole files (--dist loadfile) in this
    order, so each end-to-end file starts its study at once on a worker of its own."""
    items.sort(key=lambda item: item.get_closest_marker("e2e") is None)
