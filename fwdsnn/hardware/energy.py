"""Work and energy per inference of a trained spiking network and of its ANN twin.

One inference is what the network computes for one input: one input sample (spiking_mlp; one
output point), or one input function a on the whole output grid of P points (operators),
evaluated as models.py does for a single function: the branch once, the DeepONet trunk once
per query point, each SepONet trunk once per coordinate of its axis, then the combination.
Per output point is the same divided by P. (A deployment that caches the trunk outputs of a
fixed grid across functions would pay only branch and combination per function.)

Counts, per Linear layer, with e evaluations of its sub-network per inference, T steps:
- first Linear: the input is analog; models.py applies it once and holds the current for all
  steps, so it costs e * in * out MACs, no synaptic operations;
- every later Linear, the readout included: its input is spikes, so SOPs = e * (spikes into
  the layer per evaluation, from prediction.nc) * out (fan-out), one accumulate each;
- neuron updates = e * out * T for the LIF (hidden) or LI (readout) neurons it drives; the
  per-step bias and the held input current are part of these updates;
- operator combination (decoded floats): DeepONet P * latent MACs; SepONet's outer product
  rank * (n_1 + n_1 n_2 + ... + n_1...n_k) MACs (b * t^1, then each further axis), b0 adds
  not counted;
- ANN twin (same Linear layers, tanh, no time): e * in * out MACs per layer plus the same
  combination. Bias adds, activations and the decode's window average are not counted.
Energy proxies (45 nm, Horowitz 2014): 0.9 pJ per accumulate (SOP), 4.6 pJ per MAC.
SNN energy = SOPs * 0.9 pJ + MACs (first layers, combination) * 4.6 pJ; neuron updates are
reported but not priced. ANN energy = MACs * 4.6 pJ.
"""

import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import ENERGY, MODEL, PREDICTION
from fwdsnn.hardware.trained import load_trained
from fwdsnn.snn.models import SpikingModel, layer_name
from fwdsnn.status import COMPLETED

PJ_PER_SOP = 0.9
PJ_PER_MAC = 4.6
SOURCE = "Horowitz, ISSCC 2014, 45 nm: 32-bit float add 0.9 pJ, multiply-accumulate 4.6 pJ"
PER = ("inference", "output_point")


def operation_counts(model: SpikingModel, spike_counts: Mapping[str, float],
                     grid_shape: tuple[int, ...], pj_per_sop: float = PJ_PER_SOP,
                     pj_per_mac: float = PJ_PER_MAC) -> xr.Dataset:
    """SOPs, MACs, neuron updates and energy per inference (module doc) as a Dataset.

    spike_counts: spikes per evaluation of each LIF layer, named as prediction.nc's `layer`
    ("hidden0", or "branch.hidden0", "trunk1.hidden0" ...); grid_shape: the output grid of
    one function, () for spiking_mlp."""
    rows = []
    evaluations = model.evaluations(grid_shape)
    for prefix, net in model.subnets().items():
        n_eval = evaluations[prefix]
        for k, linear in enumerate([*net.linears, net.readout]):
            fan_in, fan_out = linear.in_features, linear.out_features
            spikes = spike_counts[layer_name(prefix, f"hidden{k - 1}")] if k else np.nan
            rows.append({
                "linear": layer_name(prefix, f"linears.{k}" if k < len(net.linears) else "readout"),
                "fan_in": fan_in, "fan_out": fan_out, "evaluations": n_eval,
                "input_spikes": spikes,
                "sop": n_eval * spikes * fan_out if k else 0.0,
                "mac_snn": 0 if k else n_eval * fan_in * fan_out,
                "mac_ann": n_eval * fan_in * fan_out,
                "neuron_updates": n_eval * fan_out * net.steps})
    table = {key: np.array([row[key] for row in rows]) for key in rows[0]}
    combination = model.combination_macs(grid_shape)
    points = math.prod(grid_shape)
    sop = table["sop"].sum()
    mac_snn = table["mac_snn"].sum() + combination
    mac_ann = table["mac_ann"].sum() + combination
    energy_snn = sop * pj_per_sop + mac_snn * pj_per_mac
    energy_ann = mac_ann * pj_per_mac
    per = np.array([1.0, 1.0 / points])

    def layer_var(key, long_name, units="1"):
        return ("linear", table[key], {"long_name": long_name, "units": units})

    def total(value, long_name, units="1"):
        return ("per", value * per, {"long_name": long_name, "units": units})

    ds = xr.Dataset({
        "fan_in": layer_var("fan_in", "inputs of the Linear layer"),
        "fan_out": layer_var("fan_out", "outputs of the Linear layer (fan-out of each input)"),
        "evaluations": layer_var("evaluations", "evaluations of the layer's sub-network per inference"),
        "input_spikes": layer_var("input_spikes", "spikes into the layer per evaluation (NaN: analog input)"),
        "sop": layer_var("sop", "synaptic operations (spikes x fan-out) per inference"),
        "mac_snn": layer_var("mac_snn", "multiply-accumulates of the spiking network per inference"),
        "mac_ann": layer_var("mac_ann", "multiply-accumulates of the ANN twin per inference"),
        "neuron_updates": layer_var("neuron_updates", "LIF/LI neuron updates per inference"),
        "combination_mac": ((), combination, {"long_name": "multiply-accumulates of the operator "
                                              "combination per inference", "units": "1"}),
        "output_points": ((), points, {"long_name": "output points per inference", "units": "1"}),
        "sop_total": total(sop, "synaptic operations of the spiking network"),
        "mac_snn_total": total(mac_snn, "multiply-accumulates of the spiking network"),
        "mac_ann_total": total(mac_ann, "multiply-accumulates of the ANN twin"),
        "neuron_updates_total": total(table["neuron_updates"].sum(), "neuron updates of the spiking network"),
        "energy_snn": total(energy_snn, "energy proxy of the spiking network", "pJ"),
        "energy_ann": total(energy_ann, "energy proxy of the ANN twin", "pJ"),
        "energy_ratio": ((), energy_snn / energy_ann, {"long_name": "energy of the spiking network "
                                                       "over that of the ANN twin", "units": "1"}),
    }, coords={
        "linear": ("linear", np.array(table["linear"], dtype=str),
                   {"long_name": "Linear (synapse) layer", "units": "1"}),
        "per": ("per", np.array(PER), {"long_name": "counted per inference (one input sample or "
                                       "function) or per output point", "units": "1"}),
    })
    ds.attrs.update(pj_per_sop=pj_per_sop, pj_per_mac=pj_per_mac, energy_source=SOURCE,
                    steps=int(model.steps), status=COMPLETED)
    return ds


def energy_run(model_path, prediction_path, out_path,
               pj_per_sop: float = PJ_PER_SOP, pj_per_mac: float = PJ_PER_MAC) -> Path:
    """The stage: model.nc + prediction.nc (spike counts per layer) -> energy.nc."""
    model, _, _ = load_trained(model_path)
    prediction = io.read_artifact(prediction_path, PREDICTION)
    if not model.neurons:
        raise ValueError(f"{model_path}: not a spiking network (the ANN twin's MACs are in "
                         "every spiking run's energy.nc)")
    counts = dict(zip(prediction["layer"].values.tolist(), prediction["spike_count"].values.tolist()))
    ds = operation_counts(model, counts, prediction["u_pred"].shape[1:], pj_per_sop, pj_per_mac)
    config = {"pj_per_sop": pj_per_sop, "pj_per_mac": pj_per_mac,
              "run": json.loads(prediction.attrs.get("config_json", "{}"))}
    return io.write_dataset(ds, out_path, stage=ENERGY.stage, config=config,
                            seed=int(prediction.attrs.get("seed", -1)),
                            inputs=[model_path, prediction_path])


TOTALS = ("sop_total", "mac_snn_total", "mac_ann_total", "neuron_updates_total", "energy_snn", "energy_ann")


def write_placeholder(model_path, out_path, status: str) -> Path:
    """The energy.nc of a run with nothing to count (its training did not complete): `status`,
    and the totals and ratio the metrics read, as NaN."""
    def nan(name, dims):
        return (dims, np.full([len(PER)] * len(dims), np.nan),
                {"long_name": f"{name} (NaN: training {status})",
                 "units": "pJ" if name in ("energy_snn", "energy_ann") else "1"})
    ds = xr.Dataset({**{name: nan(name, ("per",)) for name in TOTALS}, "energy_ratio": nan("energy_ratio", ())},
                    coords={"per": ("per", np.array(PER), {"long_name": "counted per inference or per "
                                                           "output point", "units": "1"})})
    ds.attrs["status"] = status
    source = io.read_dataset(model_path, stage=MODEL.stage)
    return io.write_dataset(ds, out_path, stage=ENERGY.stage, config={"status": status},
                            seed=int(source.attrs.get("seed", -1)), inputs=[model_path])
