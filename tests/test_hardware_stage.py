"""The hardware stage of one run: a diverged run gets placeholders that say so and hold no
network (no fixed-point or NIR file of blown-up weights), and the metrics read them."""

import math

import nir
import numpy as np
import pytest
import torch

from fwdsnn import io
from fwdsnn.hardware.convert import convert_run
from fwdsnn.hardware.energy import TOTALS, energy_run
from fwdsnn.hardware.format import read_fixed
from fwdsnn.hardware.nir_export import export_nir
from fwdsnn.hardware.stage import hardware_run
from fwdsnn.hardware.trained import load_trained
from fwdsnn.metrics import run_metrics
from test_nir_export import write_model
from test_tables import history, prediction

BITS = (4, 16)


def outputs(tmp_path):
    return {"fixed_paths": [tmp_path / f"fixed_w{b}.nc" for b in BITS],
            "emulated_paths": [tmp_path / f"emulated_w{b}.nc" for b in BITS],
            "nir_path": tmp_path / "model.nir", "energy_path": tmp_path / "energy.nc"}


def trained_model(path, status="completed", weight=None):
    """A spiking MLP's model.nc as training writes it, with its status (and one weight set)."""
    write_model("spiking_mlp", path, neuron={})  # Lava maps only v_leak = v_reset = 0
    ds = io.read_dataset(path, stage="train")
    if weight is not None:
        ds["linears.0.weight"][0, 0] = weight
    ds.attrs["status"] = status
    io.write_dataset(ds, path, stage="train", config={}, seed=4)


def test_a_diverged_run_gets_placeholders_that_say_so(tmp_path):
    trained_model(tmp_path / "model.nc", "diverged", weight=1e30)
    paths = outputs(tmp_path)
    # nothing is converted, emulated or counted: prediction and reference are never read
    status = hardware_run(tmp_path / "model.nc", tmp_path / "absent.nc", tmp_path / "absent.nc", BITS, **paths)
    assert status == "diverged"
    for b, fixed, emulated in zip(BITS, paths["fixed_paths"], paths["emulated_paths"]):
        ds = io.read_dataset(fixed, stage="hardware")
        assert ds.attrs["status"] == "diverged" and ds.attrs["weight_bits"] == b and not ds.data_vars
        with pytest.raises(io.DatasetError, match="training diverged: it holds no network"):
            read_fixed(fixed)
        ds = io.read_dataset(emulated, stage="hardware", variables=("rel_l2",))
        assert ds.attrs["status"] == "diverged" and np.isnan(float(ds["rel_l2"]))
        assert math.isnan(ds.attrs["spike_agreement_all"])
    graph = nir.read(paths["nir_path"])
    assert graph.nodes == {} and graph.metadata["status"] == "diverged"
    assert graph.metadata["stage"] == "nir" and "model.nc" in graph.metadata["inputs_sha256"]
    energy = io.read_dataset(paths["energy_path"], stage="energy")
    assert energy.attrs["status"] == "diverged" and energy.attrs["seed"] == 4
    assert set(TOTALS) | {"energy_ratio"} == set(energy.data_vars)
    assert all(np.isnan(energy[name]).all() for name in energy.data_vars)
    io.check_variable_attrs(energy)
    metrics = run_metrics(history(status="diverged"), prediction([np.nan]), energy)
    assert np.isnan(float(metrics["energy_snn"])) and metrics.attrs["status"] == "diverged"


@pytest.mark.parametrize("status, weight, message", [
    ("diverged", None, "training diverged"),
    ("completed", float("nan"), "'linears.0.weight' is not finite"),
])
def test_no_hardware_file_of_a_blown_up_network(tmp_path, status, weight, message):
    trained_model(tmp_path / "model.nc", status, weight)
    with pytest.raises(ValueError, match=message):
        load_trained(tmp_path / "model.nc")
    for write in (lambda: convert_run(tmp_path / "model.nc", 8, tmp_path / "fixed_w8.nc"),
                  lambda: export_nir(tmp_path / "model.nc", tmp_path / "model.nir"),
                  lambda: energy_run(tmp_path / "model.nc", tmp_path / "p.nc", tmp_path / "energy.nc")):
        with pytest.raises(ValueError, match=message):
            write()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nc"]


def test_a_completed_run_says_so_in_every_output(tmp_path):
    trained_model(tmp_path / "model.nc")
    model = load_trained(tmp_path / "model.nc")[0]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    convert_run(tmp_path / "model.nc", 8, tmp_path / "fixed_w8.nc")
    export_nir(tmp_path / "model.nc", tmp_path / "model.nir")
    assert io.read_dataset(tmp_path / "fixed_w8.nc").attrs["status"] == "completed"
    assert read_fixed(tmp_path / "fixed_w8.nc").layers
    assert nir.read(tmp_path / "model.nir").metadata["status"] == "completed"
