"""End to end, the data stage alone: what a config or solver edit reruns, and that a rerun
reproduces the data bit for bit. On the quick study's data only (the `quick_data` fixture), so
under `make test` this file runs on one xdist worker beside the full study on the other."""

import numpy as np
import pytest
import yaml

from fwdsnn import io
from fwdsnn.reference import read_reference
from conftest import OVERLAY, planned_outputs, quick_config, snakemake

pytestmark = pytest.mark.e2e


def test_changing_one_target_reruns_only_its_data(quick_data, tmp_path):
    overlay = tmp_path / "change.yaml"
    overlay.write_text("targets:\n  heat: {n_train: 17}\n")
    planned = planned_outputs(snakemake(quick_data, "-n", "reference_all", *OVERLAY, str(overlay)))
    assert planned == ["data/heat.nc"]


@pytest.mark.parametrize("module, families", [
    ("poisson1d.py", {"poisson1d"}),  # one solver: its family only
    ("grf.py", {"antiderivative", "poisson1d", "heat1d", "diffusion_reaction1d", "advection1d"}),
])
def test_editing_solver_code_reruns_only_the_families_using_it(quick_data, module, families):
    source = quick_data / "fwdsnn" / "pdes" / module
    original = source.read_text()
    try:
        source.write_text(original + "\n_AN_EDIT = 1\n")
        planned = planned_outputs(snakemake(quick_data, "-n", "reference_all", *OVERLAY))
    finally:
        source.write_text(original)
    targets = quick_config(quick_data)["targets"]
    assert planned == sorted(f"data/{name}.nc" for name, t in targets.items() if t["family"] in families)


def test_forcerun_reproduces_the_stage_bit_for_bit(quick_data, tmp_path):
    before = {path.name: io.read_dataset(path) for path in (quick_data / "data").glob("*.nc")}
    proc = snakemake(quick_data, "-c2", "reference_all", "--forcerun", "reference", *OVERLAY)
    assert proc.returncode == 0
    for name, old in before.items():
        new = io.read_dataset(quick_data / "data" / name)
        assert io.data_variables_equal(old, new), f"{name} changed on rerun"
        assert new.attrs["created"] >= old.attrs["created"]


def test_a_new_target_is_a_config_edit(quick_data, tmp_path):
    overlay = tmp_path / "extra.yaml"
    overlay.write_text(
        "targets:\n"
        "  wave_fn: {family: function, expression: 'sin(pi*x) + 0.5*x', domain: [[0, 2]],"
        " n_train: 10, n_test: 5, seed: 3}\n"
        "  burgers_nu05: {family: burgers1d, nu: 0.05, nx: 11, nt: 6, n_sensors: 16, n_modes: 4,"
        " n_grid: 32, dt: 0.01, n_train: 3, n_test: 2}\n"
        "experiments:\n"
        "  - {target: burgers_nu05, model: seponet, methods: [bp]}\n")
    try:
        snakemake(quick_data, "-c2", "data/wave_fn.nc", "data/burgers_nu05.nc", *OVERLAY, str(overlay))
        fn = read_reference(quick_data / "data" / "wave_fn.nc")
        expected = np.sin(np.pi * fn["x"].values) + 0.5 * fn["x"].values
        np.testing.assert_allclose(fn["u"].values, expected, rtol=1e-6, atol=1e-6)
        assert ((fn["x"] >= 0) & (fn["x"] <= 2)).all()
        burgers = read_reference(quick_data / "data" / "burgers_nu05.nc")
        assert burgers["u"].dims == ("sample", "x", "t") and burgers.sizes["x"] == 11
        assert yaml.safe_load(burgers.attrs["config_json"])["nu"] == 0.05
    finally:
        for name in ("wave_fn", "burgers_nu05"):
            (quick_data / "data" / f"{name}.nc").unlink(missing_ok=True)
