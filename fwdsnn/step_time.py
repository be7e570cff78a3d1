"""Step-time benchmark of the study's own training steps: every method on every model.

Where `fwdsnn.bench` sweeps T and K on one synthetic MLP, this times the step a training run
actually takes (`train.build_run` on the experiment's data with its method and train
settings, the optimiser update included), so the ratios are those of the study. The
reference BPTT through Norse's modules (`bp-norse`) runs beside the methods. Medians of
interleaved repeats in one process at one thread (`bench.interleaved_medians`).
"""

import logging
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import NORSE_REFERENCE, REFERENCE
from fwdsnn.bench import interleaved_medians
from fwdsnn.train import build_run

log = logging.getLogger(__name__)


def _step(run):
    """One training step on a fixed batch: the estimate and the optimiser update."""
    index = run.problem.sample_batch(run.train_cfg["batch"], run.generators["batch"])
    inputs, target = run.problem.model_inputs("train", index), run.problem.targets("train", index)

    def step():
        run.estimator.estimate(run.model, inputs, target)
        run.optimizer.step()
    return step


def step_time(runs: dict[str, dict], references: dict[str, Path], repeats: int,
              estimators: dict[str, type]) -> xr.Dataset:
    """step_time.nc: seconds per training step per (estimator, model), and bp-norse / bp.
    ``runs`` are `fwdsnn.config.step_time_runs`; ``estimators`` maps each estimator they name
    to its class (the workflow resolves both, so this stage reads neither config nor registry)."""
    torch.set_num_threads(1)
    labels = list(dict.fromkeys(label for run in runs.values() for label in run["methods"]))
    steps = {}
    for model, spec in runs.items():
        reference = io.read_dataset(references[spec["target"]], stage=REFERENCE.stage,
                                    variables=REFERENCE.variables)
        for label, (method, train) in spec["methods"].items():
            run = build_run(reference, spec["model"], method, train, 0, torch.device("cpu"),
                            estimators[method["estimator"]])
            steps[label, model] = _step(run)
    for step in steps.values():  # untimed: the first step also sets up (Adam's moments, caches)
        step()
    log.info("timing %d (estimator, model) steps, %d repeats each", len(steps), repeats)
    medians = interleaved_medians(steps, repeats)
    models = list(runs)
    times, batch = np.full((len(labels), len(models)), np.nan), np.zeros((len(labels), len(models)), int)
    for (label, model), seconds in medians.items():
        at = labels.index(label), models.index(model)
        times[at], batch[at] = seconds, runs[model]["methods"][label][1]["batch"]
        log.info("%s on %s: %.2f ms", label, model, 1e3 * seconds)
    ratio = times[labels.index(NORSE_REFERENCE)] / times[labels.index("bp")]
    coords = {
        "estimator": ("estimator", labels, {"long_name": "method (bp-norse: bp through Norse's modules)",
                                            "units": "1"}),
        "model": ("model", models, {"long_name": "model of the study", "units": "1"}),
        "target": ("model", [runs[m]["target"] for m in models],
                   {"long_name": "target of the experiment timed", "units": "1"}),
    }
    return xr.Dataset({
        "step_time": (("estimator", "model"), times, io.measured(
            {"long_name": "median wall time of one training step", "units": "s"}, "timing")),
        "batch": (("estimator", "model"), batch,
                  {"long_name": "batch size of the step (0: method not in the experiment)", "units": "1"}),
        "norse_to_bp": ("model", ratio, io.measured(
            {"long_name": "bp-norse step time / bp step time", "units": "1"}, "timing")),
    }, coords=coords)
