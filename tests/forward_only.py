"""Helpers shared by the tests of the forward-only estimators built on activity rows
(`activity`, `eligibility`): tiny float64 problems, BPTT's gradient to compare with, the
layers to compare per layer, peak memory of one estimate at two T, a short training run."""

import json
import subprocess
import sys

import torch

from fwdsnn import io
from fwdsnn.config import validate_config
from fwdsnn.grad.readout import readout_parameters
from fwdsnn.registry import estimator_class
from fwdsnn.snn.spike import make_surrogate
from fwdsnn.train import run_training
from test_forward_gradient import bptt_gradient, own_surrogates, reseed
from test_models import SURROGATES, inputs, small

FAST, STEIN = SURROGATES[0], SURROGATES[2]


def method(**settings) -> dict:
    return {"scope": "layer", "directions": 1, "distribution": "gaussian", **settings}


def problem(kind, cfg=FAST, seed=1, **changes):
    """A small float64 model of `kind`, its inputs and a random target; Stein surrogates get a
    generator per LIF layer (returned, to reseed), so the estimate and BPTT draw alike."""
    torch.manual_seed(seed)
    model = small(kind, make_surrogate(FAST), **changes).double()
    generators = own_surrogates(model, cfg) if cfg["kind"] == "stein" else []
    args = inputs(kind)
    with torch.no_grad():
        target = torch.randn_like(model(*args))
    return model, args, target, generators


def lif_linears(model) -> dict[str, list[str]]:
    """Every hidden layer's input Linear (LIF, or tanh in the twin) -> its weight and bias names."""
    readouts = set(readout_parameters(model))
    layers = {}
    for name, _ in model.named_parameters():
        if name not in readouts:
            layers.setdefault(name.rpartition(".")[0], []).append(name)
    return layers


def run_estimator(cls, model, args, target, generators, settings, seed=1):
    """One estimate of estimator class `cls` from a seeded generator: (Estimate, gradients)."""
    reseed(generators)
    result = cls(settings, torch.Generator().manual_seed(seed)).estimate(model, args, target)
    return result, {name: p.grad.clone() for name, p in model.named_parameters()}


def replayed(estimate, model, args, target, generators, settings) -> tuple[dict, dict]:
    """Estimates from seed 7 twice (checked equal) and from seed 8: (seed 7's, seed 8's)."""
    _, first = estimate(model, args, target, generators, settings, seed=7)
    _, again = estimate(model, args, target, generators, settings, seed=7)
    _, other = estimate(model, args, target, generators, settings, seed=8)
    for name in first:
        assert torch.equal(first[name], again[name]), name
    return first, other


def exact(model, args, target, generators):
    """BPTT's gradient; every parameter's is nonzero (a silent layer would pass any check)."""
    reseed(generators)
    gradient = bptt_gradient(model, args, target)
    assert all(g.abs().sum() > 0 for g in gradient.values())
    return gradient


MEMORY_SCRIPT = """
import json, re, sys, torch
from fwdsnn.registry import estimator_class
from fwdsnn.snn.models import SpikingMLP
from fwdsnn.snn.spike import make_surrogate
torch.set_num_threads(1)
torch.manual_seed(0)
model = SpikingMLP(1, 1, 128, 2, 16, {}, make_surrogate({"kind": "fast_sigmoid", "slope": 10.0}))
x = 2 * torch.rand(256, 1) - 1
estimator = estimator_class(sys.argv[1])(json.loads(sys.argv[2]), torch.Generator().manual_seed(0))
def peak():  # this process's peak RSS in MiB (ru_maxrss would include the parent's)
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) / 1024
for _ in range(2):  # the second estimate's peak is higher: the allocator reuses freed memory in part
    estimator.estimate(model, (x,), x ** 2)
short = peak()
model.steps = 256
estimator.estimate(model, (x,), x ** 2)
long = peak()
with torch.no_grad():
    model(x)  # Norse's layer-by-layer loop holds (T, 256, 128) tensors
print(json.dumps({"short": short, "long": long, "history": peak()}))
"""


def memory_peaks(estimator: str, settings: dict) -> dict[str, float]:
    """Peak RSS (VmHWM, so the smaller pass runs first) in a fresh process, in MiB: after two
    estimates of a 2 x 128 spiking MLP on 256 examples at T = 16 ("short"), one at T = 256
    ("long"), and after the model's own forward at T = 256 ("history"), which keeps several
    (T, 256, 128) tensors of 32 MiB each, to show the check can see a history."""
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, estimator, json.dumps(settings)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def assert_flat_in_time(peaks: dict[str, float]) -> None:
    """T = 256 needs at most 32 MiB more than T = 16, while the model's own history at T = 256
    needs over 64 MiB more still. The allocator alone moves the growth by about 10 MiB from one
    fresh process to the next (14-24 MiB seen for the same estimate), hence the margin."""
    assert peaks["long"] - peaks["short"] < 32, peaks
    assert peaks["history"] - peaks["long"] > 64, peaks


def train_parabola(parabola, tmp_path, settings: dict, steps=300):
    """A 2 x 16 spiking MLP trained on u = x^2 through `fwdsnn.train` with the method
    `settings`, checked to complete with its loss down tenfold and a test error under 20%:
    its history dataset."""
    config = validate_config({
        "targets": {"p": {"family": "function", "expression": "x**2", "domain": [[-1, 1]]}},
        "models": {"mlp": {"kind": "spiking_mlp", "width": 16, "depth": 2, "steps": 8,
                           "window": 4}},
        "methods": {"m": {**settings, "surrogate": {"kind": "fast_sigmoid"}}},
        "train": {"steps": steps, "eval_every": steps // 2, "checkpoint_every": 1000,
                  "batch": 32, "lr": 0.03},
        "experiments": [{"target": "p", "model": "mlp", "methods": ["m"]}]})
    outputs = {name: tmp_path / f"{name}.nc" for name in ("model", "history", "prediction")}
    status = run_training(parabola, config["models"]["mlp"], config["methods"]["m"],
                          config["train"], seed=0, device="cpu", outputs=outputs,
                          estimator=estimator_class(settings["estimator"]))
    history = io.read_dataset(outputs["history"])
    loss = history["loss"].values
    assert status == "completed"
    assert loss[-50:].mean() < 0.1 * loss[:50].mean()
    assert history["test_rel_l2_mean"].values[-1] < 0.2, history["test_rel_l2_mean"].values
    return history
