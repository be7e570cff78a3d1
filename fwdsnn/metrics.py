"""Metrics of one training run: accuracy, spiking activity, work per inference, training cost.

Everything a table or a figure compares across runs, in one small file per run
(``results/runs/RUN/metrics.nc``), made from the run's history.nc and prediction.nc, its
energy.nc (spiking runs only: the ANN baseline has no synaptic operations) and, if present,
the Snakemake benchmark TSV of its training job (peak resident memory and the job's wall time,
which includes start-up; a resumed run's TSV covers only its last attempt).

- accuracy: test relative L2 error per test function (one number over the whole test set for
  pointwise targets), mean and median, as prediction.nc holds it;
- activity: spike rate (spikes per neuron per time step) and spikes per inference per LIF
  layer on the test split;
- work per inference: synaptic operations, MACs and the energy proxy of the spiking network
  and of its ANN twin (NaN for non-spiking runs);
- training cost: optimiser steps completed and planned, forward-equivalent passes, wall time of
  the training loop (history.nc), peak RSS and job time (benchmark TSV, NaN without one);
- status: ``completed`` or ``diverged`` (history.nc's attribute).
"""

import csv
import json
import logging
import math
from pathlib import Path

import numpy as np
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import ENERGY, HISTORY, METRICS, PREDICTION

ENERGY_VARIABLES = ("sop_total", "mac_snn_total", "mac_ann_total", "energy_snn", "energy_ann",
                    "energy_ratio")
log = logging.getLogger(__name__)


def _scalar(value: float, long_name: str, units: str = "1", measurement: str | None = None) -> tuple:
    attrs = {"long_name": long_name, "units": units}
    return ((), float(value), io.measured(attrs, measurement) if measurement else attrs)


def read_benchmark(path: str | Path | None) -> dict[str, float]:
    """Peak RSS [MiB] and wall time [s] of a Snakemake benchmark TSV (last row); NaN when the
    file is absent (a run made outside Snakemake) or unreadable."""
    empty = {"peak_rss": math.nan, "job_time": math.nan}
    if path is None or not Path(path).is_file():
        return empty
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        return {"peak_rss": float(rows[-1]["max_rss"]), "job_time": float(rows[-1]["s"])}
    except (OSError, KeyError, IndexError, ValueError) as err:
        log.warning("ignoring benchmark %s: %s", path, err)
        return empty


def _loop_cost(config: dict, steps: int, passes: float, sop_per_inference: float) -> dict:
    """What a step of training in the loop (method.hardware) costs the chip: emulator passes
    (each on the whole batch) and synaptic operations, the batch's inferences in every pass at
    the trained network's SOPs per inference. NaN for a run not trained in the loop."""
    in_loop = "hardware" in config.get("method", {}) and steps
    per_step = passes / steps if in_loop else math.nan
    batch = config.get("train", {}).get("batch", math.nan)
    return {"loop_emulator_passes_per_step": _scalar(
                per_step, "emulator passes per training step in the loop (NaN: not trained in the loop)"),
            "loop_sop_per_step": _scalar(
                per_step * batch * sop_per_inference,
                "synaptic operations per training step in the loop (NaN: not trained in the loop)")}


def run_metrics(history: xr.Dataset, prediction: xr.Dataset, energy: xr.Dataset | None = None,
                benchmark: dict[str, float] | None = None) -> xr.Dataset:
    """The metrics of one run as a Dataset (scalars, plus per-layer activity)."""
    benchmark = benchmark or read_benchmark(None)
    errors = np.atleast_1d(prediction["rel_l2"].values).astype(float)
    config = json.loads(history.attrs.get("config_json", "{}"))
    planned = config.get("train", {}).get("steps", history.sizes["step"])
    steps = int(history.attrs.get("steps_completed", history.sizes["step"]))
    last = (lambda name: float(history[name].values[-1])) if steps else (lambda name: 0.0)
    status = str(history.attrs["status"])
    data = {
        "rel_l2_mean": _scalar(np.mean(errors), "test relative L2 error, mean over test functions"),
        "rel_l2_median": _scalar(np.median(errors), "test relative L2 error, median over test functions"),
        "test_functions": _scalar(errors.size, "test functions (1: one error over all test points)"),
        "spike_rate": ("layer", prediction["spike_rate"].values.astype(float),
                       {"long_name": "spikes per neuron per time step on the test split", "units": "1"}),
        "spike_count": ("layer", prediction["spike_count"].values.astype(float),
                        {"long_name": "spikes per inference of one input sample", "units": "1"}),
        "spike_rate_mean": _scalar(np.mean(prediction["spike_rate"].values)
                                   if prediction.sizes["layer"] else math.nan,
                                   "spike rate, mean over LIF layers (NaN: not spiking)"),
        "steps": _scalar(steps, "optimiser steps completed"),
        "steps_planned": _scalar(planned, "optimiser steps planned"),
        "forward_passes": _scalar(last("forward_passes"), "forward-equivalent passes of the training"),
        "wall_time": _scalar(last("wall_time"), "wall time of the training loop", "s", "timing"),
        "time_per_step": _scalar(last("wall_time") / steps if steps else math.nan,
                                 "wall time per optimiser step", "s", "timing"),
        "final_loss": _scalar(np.mean(history["loss"].values[-max(1, steps // 20):]) if steps else math.nan,
                              "training loss, mean over the last 5% of steps"),
        "peak_rss": _scalar(benchmark["peak_rss"], "peak resident memory of the training job "
                            "(Snakemake benchmark; NaN: none)", "MiB", "memory"),
        "job_time": _scalar(benchmark["job_time"], "wall time of the training job with start-up "
                            "(Snakemake benchmark; NaN: none)", "s", "timing"),
        "diverged": _scalar(status == "diverged", "1 if training diverged, else 0"),
    }
    for name in ENERGY_VARIABLES:
        if energy is None:
            value, attrs = math.nan, {"long_name": f"{name} per inference (NaN: not spiking)", "units": "1"}
            if name.startswith("energy_") and name != "energy_ratio":
                attrs["units"] = "pJ"
        else:
            var = energy[name]
            value = float(var.sel(per="inference")) if "per" in var.dims else float(var)
            attrs = {"long_name": f"{var.attrs['long_name']} per inference", "units": var.attrs["units"]}
        data[name] = ((), value, attrs)
    data.update(_loop_cost(config, steps, last("forward_passes"), data["sop_total"][1]))
    ds = xr.Dataset(data, coords={"layer": ("layer", prediction["layer"].values.astype(str),
                                            {"long_name": "LIF layer", "units": "1"})})
    ds.attrs.update(status=status, spiking=int(prediction.sizes["layer"] > 0))
    return ds


def metrics_run(history_path, prediction_path, out_path, energy_path=None,
                benchmark_path=None) -> Path:
    """The stage: history.nc + prediction.nc (+ energy.nc, + benchmark TSV) -> metrics.nc."""
    history = io.read_artifact(history_path, HISTORY)
    io.require_attrs(history, ("status",))
    prediction = io.read_artifact(prediction_path, PREDICTION)
    energy = io.read_dataset(energy_path, stage=ENERGY.stage) if energy_path else None
    ds = run_metrics(history, prediction, energy, read_benchmark(benchmark_path))
    log.info("%s: %s, test rel-L2 mean %.4g median %.4g, %d steps, %.1f s", out_path, ds.attrs["status"],
             float(ds["rel_l2_mean"]), float(ds["rel_l2_median"]), int(ds["steps"]), float(ds["wall_time"]))
    inputs = [history_path, prediction_path] + ([energy_path] if energy_path else [])
    return io.write_dataset(ds, out_path, stage=METRICS.stage, config=json.loads(history.attrs.get("config_json", "{}")),
                            seed=int(history.attrs.get("seed", -1)), inputs=inputs)
