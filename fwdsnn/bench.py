"""Cost benchmark of the gradient estimators: step time and peak memory against T and K.

Numbers, not assertions. Step times are medians of interleaved repeats in one process at one
thread, so every estimator sees the same machine state; peak memory is measured in a child
process per point, forked before anything is built (the resident set after set-up is the
baseline, the child's peak after one step minus it is the step's cost), so no point inherits
another's allocations.
"""

import functools
import json
import logging
import os
import statistics
import time

import numpy as np
import torch
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import NORSE_REFERENCE
from fwdsnn.grad.backprop import Backprop
from fwdsnn.grad.bptt import AdjointBackprop
from fwdsnn.grad.forward import ForwardGradient
from fwdsnn.grad.perturbation import WeightPerturbation
from fwdsnn.snn.models import SpikingMLP
from fwdsnn.snn.spike import make_surrogate

log = logging.getLogger(__name__)
# the benchmarked variants, by class: registering another estimator does not rerun the benchmark
ESTIMATORS = {
    NORSE_REFERENCE: (Backprop, {"estimator": "backprop-norse"}),
    "bp": (AdjointBackprop, {"estimator": "backprop"}),
    "rfg-global": (ForwardGradient, {"estimator": "forward", "scope": "global", "distribution": "gaussian"}),
    "rfg-layer": (ForwardGradient, {"estimator": "forward", "scope": "layer", "distribution": "gaussian"}),
    "wp-global": (WeightPerturbation, {"estimator": "perturbation", "scope": "global", "distribution": "gaussian",
                                       "epsilon": 0.05}),
    "wp-layer": (WeightPerturbation, {"estimator": "perturbation", "scope": "layer", "distribution": "gaussian",
                                      "epsilon": 0.05}),
}
SURROGATE = {"kind": "fast_sigmoid", "slope": 10.0}


def setup(estimator: str, steps: int, directions: int, settings: dict, seed: int = 0):
    """A spiking MLP, a batch, and the estimator: everything a timed step needs."""
    torch.manual_seed(seed)
    model = SpikingMLP(1, 1, settings["width"], settings["depth"], steps, {},
                       make_surrogate(SURROGATE), window=steps)
    x = 2 * torch.rand(settings["batch"], 1) - 1
    cls, method = ESTIMATORS[estimator]
    method = {**method, "directions": directions, "surrogate": SURROGATE}
    return model, (x,), x ** 2, cls(method, torch.Generator().manual_seed(seed))


def interleaved_medians(steps: dict, repeats: int) -> dict:
    """Median wall time of each callable in ``steps`` (key -> step()), repeats interleaved
    so that every step sees the same machine state."""
    samples = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            samples[key].append(time.perf_counter() - start)
    return {key: statistics.median(times) for key, times in samples.items()}


def step_times(points: list[tuple[str, int, int]], settings: dict) -> dict:
    """Median wall time of one estimator step per (estimator, T, K), repeats interleaved."""
    torch.set_num_threads(1)
    steps = {}
    for point in points:
        model, inputs, target, estimator = setup(*point, settings)
        steps[point] = functools.partial(estimator.estimate, model, inputs, target)
    return interleaved_medians(steps, settings["repeats"])


def peak_memory_mb(estimator: str, steps: int, directions: int, settings: dict) -> float:
    """Peak resident memory of one step above the post-set-up baseline, in a child forked from
    this process before it has built anything: a fresh heap without paying torch's import again."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report, leave without running the parent's cleanup
        code = 1
        try:
            os.close(reader)
            os.write(writer, json.dumps(_measure_memory_here(estimator, steps, directions, settings)).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not report:
        raise RuntimeError(f"memory measurement of {estimator} T={steps} K={directions} failed")
    return float(report)


def _measure_memory_here(estimator: str, steps: int, directions: int, settings: dict) -> float:
    torch.set_num_threads(1)
    model, inputs, target, est = setup(estimator, steps, directions, settings)
    baseline = _status_bytes("VmRSS:")
    _reset_peak_rss()
    est.estimate(model, inputs, target)
    return max(_status_bytes("VmHWM:") - baseline, 0) / 2**20


def _reset_peak_rss() -> None:
    """Set this process's resident high-water mark to its current resident set (Linux's
    clear_refs "5"): a forked child starts with its parent's mark."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")


def _status_bytes(field: str) -> int:
    """A size from /proc/self/status (VmRSS: resident now, VmHWM: its high-water mark). Not
    ru_maxrss: getrusage keeps the parent's peak across fork and exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    raise OSError(f"no {field} in /proc/self/status: peak memory needs Linux")


def benchmark(settings: dict) -> xr.Dataset:
    """estimators.nc: step time and peak memory per estimator, T and K, with ratios to bp."""
    names, ts, ks = list(ESTIMATORS), settings["time_steps"], settings["directions"]
    points = [(name, t, 1 if name.startswith("bp") else k) for name in names for t in ts for k in ks]
    unique = sorted(set(points))
    log.info("timing %d points, %d repeats each", len(unique), settings["repeats"])
    memory = {point: peak_memory_mb(*point, settings) for point in unique}  # before any set-up here
    times = step_times(unique, settings)
    for point in unique:
        log.info("%s T=%d K=%d: %.2f ms, %.1f MB", *point, 1e3 * times[point], memory[point])
    shape = (len(names), len(ts), len(ks))
    step_time, peak = np.empty(shape), np.empty(shape)
    for i, name in enumerate(names):
        for j, t in enumerate(ts):
            for k, directions in enumerate(ks):
                point = (name, t, 1 if name.startswith("bp") else directions)
                step_time[i, j, k], peak[i, j, k] = times[point], memory[point]
    coords = {"estimator": ("estimator", names, {"long_name": "gradient estimator", "units": "1"}),
              "T": ("T", ts, {"long_name": "simulation time steps", "units": "1"}),
              "K": ("K", ks, {"long_name": "random directions (per layer for layer scope)", "units": "1"})}
    dims = ("estimator", "T", "K")
    return xr.Dataset({
        "step_time": (dims, step_time, io.measured({"long_name": "median wall time of one step", "units": "s"},
                                                   "timing")),
        "peak_memory": (dims, peak, io.measured({"long_name": "peak resident memory of one step above the "
                                                 "baseline", "units": "MiB"}, "memory")),
        "time_ratio_to_bp": (dims, step_time / step_time[names.index("bp")],
                             io.measured({"long_name": "step time / bp step time", "units": "1"}, "timing")),
        "memory_ratio_to_bp": (dims, peak / np.maximum(peak[names.index("bp")], 1e-9),
                               io.measured({"long_name": "peak memory / bp peak memory", "units": "1"}, "memory")),
    }, coords=coords)
