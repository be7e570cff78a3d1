"""Energy accounting: hand-counted SOPs, MACs and neuron updates on tiny networks, and the stage."""

import numpy as np
import pytest
import xarray as xr

from fwdsnn import io
from fwdsnn.hardware.energy import PJ_PER_MAC, PJ_PER_SOP, energy_run, operation_counts
from fwdsnn.snn.models import build_model
from test_nir_export import write_model

TINY = {"width": 3, "depth": 2, "steps": 10, "gain": 5.0, "decode": "mean", "window": 4,
        "neuron": {}, "latent": 4, "rank": 4}


def tiny(kind, shapes, **changes):
    return build_model(kind, shapes, {**TINY, **changes}, None, True)


def totals(ds):
    return {key: ds[key].sel(per="inference").item()
            for key in ("sop_total", "mac_snn_total", "mac_ann_total", "neuron_updates_total",
                        "energy_snn", "energy_ann")}


def test_mlp_counts_by_hand():
    model = tiny("spiking_mlp", {"in_features": 2, "out_features": 1})
    ds = operation_counts(model, {"hidden0": 7.0, "hidden1": 4.0}, ())
    assert list(ds["linear"].values) == ["linears.0", "linears.1", "readout"]
    np.testing.assert_array_equal(ds["sop"], [0, 7 * 3, 4 * 1])
    assert totals(ds) == pytest.approx({
        "sop_total": 25, "mac_snn_total": 2 * 3, "mac_ann_total": 2 * 3 + 3 * 3 + 3 * 1,
        "neuron_updates_total": (3 + 3 + 1) * 10,
        "energy_snn": 25 * 0.9 + 6 * 4.6, "energy_ann": 18 * 4.6})
    assert ds["energy_snn"].attrs["units"] == "pJ"
    assert ds["energy_ratio"].item() == pytest.approx((25 * 0.9 + 6 * 4.6) / (18 * 4.6))


def test_ann_macs_of_the_paper_mlp():
    model = tiny("spiking_mlp", {"in_features": 1, "out_features": 1}, width=64, depth=3)
    ds = operation_counts(model, {f"hidden{k}": 0.0 for k in range(3)}, ())
    assert ds["mac_ann_total"].sel(per="inference").item() == 64 + 64 * 64 * 2 + 64
    assert ds["mac_snn_total"].sel(per="inference").item() == 64
    assert ds["energy_snn"].sel(per="inference").item() == pytest.approx(64 * PJ_PER_MAC)


def test_deeponet_counts_trunk_per_point_by_hand():
    model = tiny("spiking_deeponet", {"n_sensors": 3, "coord_dim": 2}, width=5, depth=1)
    ds = operation_counts(model, {"branch.hidden0": 2.0, "trunk.hidden0": 3.0}, (2, 3))
    points = 6  # trunk evaluations per function
    sop = 2 * 4 + points * 3 * 4
    mac_snn = 3 * 5 + points * 2 * 5 + points * 4  # first layers + sum_k b_k t_k per point
    mac_ann = mac_snn + 5 * 4 + points * 5 * 4
    got = totals(ds)
    assert (got["sop_total"], got["mac_snn_total"], got["mac_ann_total"]) == (sop, mac_snn, mac_ann)
    assert ds["sop_total"].sel(per="output_point").item() == pytest.approx(sop / points)
    assert got["energy_snn"] == pytest.approx(sop * PJ_PER_SOP + mac_snn * PJ_PER_MAC)


def test_seponet_counts_each_trunk_per_axis_coordinate_by_hand():
    model = tiny("spiking_seponet", {"n_sensors": 3, "n_axes": 2}, width=5, depth=1)
    counts = {"branch.hidden0": 2.0, "trunk0.hidden0": 1.0, "trunk1.hidden0": 5.0}
    ds = operation_counts(model, counts, (2, 3))
    np.testing.assert_array_equal(ds["evaluations"], [1, 1, 2, 2, 3, 3])
    assert ds["combination_mac"].item() == 4 * (2 + 2 * 3)
    got = totals(ds)
    assert got["sop_total"] == 2 * 4 + 2 * 1 * 4 + 3 * 5 * 4
    assert got["mac_snn_total"] == 3 * 5 + 2 * 1 * 5 + 3 * 1 * 5 + 4 * (2 + 6)
    assert got["neuron_updates_total"] == (1 + 2 + 3) * (5 + 4) * 10


def prediction_file(path, layers, counts):
    ds = xr.Dataset({
        "u_pred": (("sample", "x", "t"), np.zeros((2, 4, 5), np.float32), {"long_name": "u", "units": "1"}),
        "rel_l2": ("sample", np.zeros(2), {"long_name": "relative L2 error", "units": "1"}),
        "spike_rate": ("layer", np.zeros(len(counts)), {"long_name": "spike rate", "units": "1"}),
        "spike_count": ("layer", np.array(counts), {"long_name": "spikes per inference", "units": "1"}),
    }, coords={"layer": ("layer", np.array(layers), {"long_name": "LIF layer", "units": "1"})})
    return io.write_dataset(ds, path, stage="train", config={}, seed=3)


def test_energy_stage_writes_what_operation_counts_gives(tmp_path):
    model = write_model("spiking_seponet", tmp_path / "model.nc")
    layers = [f"{net}.hidden{k}" for net in ("branch", "trunk0", "trunk1") for k in range(2)]
    counts = [10.0, 6.0, 4.0, 3.0, 2.0, 1.0]
    prediction_file(tmp_path / "prediction.nc", layers, counts)
    energy_run(tmp_path / "model.nc", tmp_path / "prediction.nc", tmp_path / "energy.nc")
    written = io.read_dataset(tmp_path / "energy.nc", stage="energy")
    expected = operation_counts(model, dict(zip(layers, counts)), (4, 5))
    assert io.data_variables_equal(written, expected)
    assert written.attrs["seed"] == 3 and written.attrs["pj_per_mac"] == PJ_PER_MAC


def test_energy_stage_refuses_the_ann_twin(tmp_path):
    write_model("spiking_mlp", tmp_path / "model.nc", spiking=False)
    prediction_file(tmp_path / "prediction.nc", [], [])
    with pytest.raises(ValueError, match="not a spiking network"):
        energy_run(tmp_path / "model.nc", tmp_path / "prediction.nc", tmp_path / "energy.nc")
