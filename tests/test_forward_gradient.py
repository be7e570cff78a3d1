"""Randomized forward gradient: the production tangent pass is exact forward-mode AD, the
estimator is unbiased with the expected noise, layer scope keeps layers apart, memory does not
grow with T, and it trains through `fwdsnn.train`."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.func import functional_call, jvp

from fwdsnn import io
from fwdsnn.config import validate_config
from fwdsnn.grad.base import mse
from fwdsnn.grad.forward import ForwardGradient
from fwdsnn.grad.layers import parameter_layers
from fwdsnn.grad.tangents import mse_tangent, propagate
from fwdsnn.snn.lif import LIFLayer
from fwdsnn.snn.models import SpikingMLP
from fwdsnn.snn.spike import make_surrogate
from fwdsnn.train import run_training
from test_models import SURROGATES, inputs, small

KINDS = ["spiking_mlp", "spiking_deeponet", "spiking_seponet"]
FAST = SURROGATES[0]


def own_surrogates(model, cfg) -> list[torch.Generator]:
    """A surrogate with its own generator per LIF layer: the production pass (time-major) and
    the model (layer by layer) then draw the same Stein noise for each layer and step."""
    generators = []
    for module in model.modules():
        if isinstance(module, LIFLayer):
            generators.append(torch.Generator())
            module.surrogate = make_surrogate(cfg, generators[-1])
    return generators


def reseed(generators):
    for index, generator in enumerate(generators):
        generator.manual_seed(100 + index)


def relative(a, b):
    return ((a - b).norm() / b.norm()).item()


def bptt_gradient(model, args, target) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(mse(model(*args), target), list(params.values()))
    return dict(zip(params, grads))


def directional(gradient, tangents) -> torch.Tensor:
    """grad . v_n for tangent rows n (missing names are zero)."""
    return sum((tangents[name] * g).reshape(len(tangents[name]), -1).sum(1)
               for name, g in gradient.items()
               if name in tangents)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("cfg", SURROGATES + [None], ids=lambda c: c["kind"] if c else "ann")
def test_production_tangents_equal_jvp_and_bptt(kind, cfg):
    torch.manual_seed(10)
    model = small(kind, None, spiking=cfg is not None).double()
    generators = own_surrogates(model, cfg) if cfg else []
    args = inputs(kind)
    params = {name: p.detach() for name, p in model.named_parameters()}
    tangents = {name: torch.randn(3, *p.shape, dtype=p.dtype) for name, p in params.items()}

    reseed(generators)
    output, output_tangents = propagate(model, args, tangents)
    target = torch.randn_like(output)
    loss, slopes = mse_tangent(output, output_tangents, target)
    reseed(generators)
    torch.testing.assert_close(output, model(*args), rtol=1e-12, atol=1e-12)
    reference = []
    for n in range(3):
        reseed(generators)
        row = {name: t[n] for name, t in tangents.items()}
        reference.append(jvp(lambda p: functional_call(model, p, args), (params,), (row,))[1])
    assert relative(output_tangents, torch.stack(reference)) < 1e-10
    reseed(generators)
    gradient = bptt_gradient(model, args, target)
    first = next(g for name, g in gradient.items() if "linears.0." in name)
    assert first.abs().sum() > 0  # the derivative reaches the first layer through the spikes
    assert relative(slopes, directional(gradient, tangents)) < 1e-10
    assert loss.item() == pytest.approx(mse(output, target).item(), rel=1e-15)


def test_missing_parameters_are_zero_tangents_and_late_blocks_join_late():
    """Blocks (one per layer, as layer scope sends them) give what zero-padded dense tangents
    give; a block of one layer equals jvp with the tangent zero outside that layer."""
    torch.manual_seed(11)
    model = small("spiking_deeponet", make_surrogate(FAST)).double()
    args = inputs("spiking_deeponet")
    params = dict(model.named_parameters())
    layers = list(parameter_layers(model).values())
    blocks = [{name: torch.randn(2, *params[name].shape, dtype=torch.float64) for name in names}
              for names in layers]
    dense = {name: torch.zeros(2 * len(blocks), *p.shape, dtype=p.dtype)
             for name, p in params.items()}
    for j, block in enumerate(blocks):
        for name, v in block.items():
            dense[name][2 * j:2 * j + 2] = v
    _, batched = propagate(model, args, blocks)
    _, padded = propagate(model, args, dense)
    assert relative(batched, padded) < 1e-12
    target = torch.randn(batched.shape[1:], dtype=torch.float64)
    gradient = bptt_gradient(model, args, target)
    for j, block in enumerate(blocks):
        output, alone = propagate(model, args, block)
        assert relative(alone, batched[2 * j:2 * j + 2]) < 1e-12
        _, slopes = mse_tangent(output, alone, target)
        assert relative(slopes, directional(gradient, block)) < 1e-10


def tiny_problem(width=6, depth=2, steps=8, seed=0):
    torch.manual_seed(seed)
    model = SpikingMLP(1, 1, width, depth, steps, {}, make_surrogate(FAST), window=4).double()
    x = torch.linspace(-1.0, 1.0, 16, dtype=torch.float64)[:, None]
    return model, (x,), x.square()


def flat(values) -> torch.Tensor:
    return torch.cat([v.flatten() for v in values])


def cosine(a, b) -> float:
    return (a @ b / (a.norm() * b.norm())).item()


@pytest.mark.parametrize("scope,distribution", [("global", "gaussian"), ("global", "rademacher"),
                                                ("layer", "gaussian")])
def test_mean_of_many_directions_converges_to_bptt(scope, distribution):
    """With K directions the estimate is the mean of K single-direction ones: at K = 6000
    (d = 61 parameters) its error is ~sqrt(d/K) = 0.1 of the gradient: cosine ~0.995."""
    model, args, target = tiny_problem()
    exact = flat(bptt_gradient(model, args, target).values())
    assert exact.numel() == 61
    method = {"scope": scope, "directions": 6000, "distribution": distribution}
    estimator = ForwardGradient(method, torch.Generator().manual_seed(1))
    estimate = estimator.estimate(model, args, target)
    estimated = flat(p.grad for p in model.parameters())
    assert cosine(estimated, exact) > 0.99
    assert (estimated @ exact / (exact @ exact)).item() == pytest.approx(1.0, abs=0.06)  # scale
    assert estimate.loss == pytest.approx(mse(model(*args), target).item(), rel=1e-12)
    layers = len(parameter_layers(model)) if scope == "layer" else 1
    assert estimate.forward_passes == 1 + 6000 * layers


def test_layer_scope_keeps_layers_apart():
    """Each layer's estimate is (1/K) sum_k (grad_j L . v_jk) v_jk with only its own
    directions and its own gradient, and a layer that is not trained gets nothing."""
    model, args, target = tiny_problem(seed=1)
    exact = bptt_gradient(model, args, target)
    k = 3
    estimator = ForwardGradient({"scope": "layer", "directions": k, "distribution": "gaussian"},
                                torch.Generator().manual_seed(5))
    estimator.estimate(model, args, target)
    replay = torch.Generator().manual_seed(5)  # directions are drawn layer by layer, in order
    for names in parameter_layers(model).values():
        v = {name: torch.randn((k, *exact[name].shape), generator=replay, dtype=torch.float64)
             for name in names}
        slopes = directional({name: exact[name] for name in names}, v)
        for name in names:
            expected = torch.tensordot(slopes, v[name], dims=1) / k
            assert relative(model.get_parameter(name).grad, expected) < 1e-10, name

    frozen = ["linears.0.weight", "linears.0.bias", "readout.weight", "readout.bias"]
    for name in frozen:
        model.get_parameter(name).requires_grad_(False)
    estimator.estimate(model, args, target)
    for name, p in model.named_parameters():
        assert (p.grad is None) == (name in frozen), name
    assert all(model.get_parameter(f"linears.1.{n}").grad.abs().sum() > 0
               for n in ("weight", "bias"))


@pytest.mark.parametrize("k", [1, 4])
def test_single_estimate_cosine_is_about_sqrt_k_over_d(k):
    model, args, target = tiny_problem(width=16, seed=2)
    exact = flat(bptt_gradient(model, args, target).values())
    d = exact.numel()
    estimator = ForwardGradient({"scope": "global", "directions": k, "distribution": "gaussian"},
                                torch.Generator().manual_seed(3))
    cosines = []
    for _ in range(200 // k):
        estimator.estimate(model, args, target)
        cosines.append(cosine(flat(p.grad for p in model.parameters()), exact))
    mean = float(np.mean(cosines))
    assert min(cosines) > 0  # (grad . v) v always points into the gradient's half-space
    assert 0.5 * (k / d) ** 0.5 < mean < 2.0 * (k / d) ** 0.5, (mean, (k / d) ** 0.5)


MEMORY_SCRIPT = """
import json, re, sys, torch
from fwdsnn.grad.perturbation import perturbed_outputs
from fwdsnn.grad.tangents import propagate
from fwdsnn.snn.models import SpikingMLP
from fwdsnn.snn.spike import make_surrogate
torch.set_num_threads(1)
torch.manual_seed(0)
model = SpikingMLP(1, 1, 128, 2, 16, {}, make_surrogate({"kind": "fast_sigmoid", "slope": 10.0}))
x = 2 * torch.rand(256, 1) - 1
tangents = {n: torch.randn(4, *p.shape) for n, p in model.named_parameters()}
run = {"tangents": lambda: propagate(model, (x,), tangents),
       "perturbation": lambda: perturbed_outputs(model, (x,), [tangents])}[sys.argv[1]]
def peak():  # this process's peak RSS in MiB (ru_maxrss would include the parent's)
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) / 1024
model.steps = 48  # three windows of rows.WINDOW_STEPS: the allocator sees every reuse pattern
run()
short = peak()
model.steps = 960
run()
long = peak()
with torch.no_grad():
    model(x)  # Norse's layer-by-layer loop holds (T, 256, 128) tensors
print(json.dumps({"short": short, "long": long, "history": peak()}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
@pytest.mark.parametrize("rows", ["tangents", "perturbation"])
def test_row_pass_memory_does_not_grow_with_steps(rows):
    """Peak RSS (VmHWM, a high-water mark, so the passes run smallest first) of the windowed
    row interpreter (tangent rows, or weight perturbation's parameter sets) at T = 48 and
    T = 960 in a fresh process. Keeping the (T, 256, 128) history of one layer would add
    over 100 MiB; the model's own forward, which keeps it, shows the check can see that. The
    margin is for the allocator: a window's row buffers are several MiB each."""
    proc = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT, rows], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    peaks = json.loads(proc.stdout.strip().splitlines()[-1])
    assert peaks["long"] - peaks["short"] < 50, peaks
    assert peaks["history"] - peaks["long"] > 200, peaks


def test_estimator_settings_and_generator():
    generator = torch.Generator()
    estimator = ForwardGradient({"scope": "layer", "directions": 2, "distribution": "rademacher"},
                                generator)
    assert estimator.generators() == {"directions": generator}
    model, args, target = tiny_problem()
    estimator.estimate(model, args, target)
    for names in parameter_layers(model).values():
        # (s1 v1 + s2 v2) / 2 with entries of v +-1: two magnitudes |s1 +- s2| / 2 per layer
        magnitudes = flat(model.get_parameter(name).grad for name in names).abs()
        assert len(torch.unique(magnitudes.round(decimals=12))) <= 2
    for key, value in [("scope", "all"), ("distribution", "uniform"), ("directions", 0)]:
        method = {"scope": "global", "directions": 1, "distribution": "gaussian", key: value}
        with pytest.raises(ValueError, match=str(value)):
            ForwardGradient(method, generator)
    with pytest.raises(ValueError, match="unknown parameter 'nope'"):
        propagate(model, args, {"nope": torch.zeros(1)})


def test_training_with_layer_scope_reduces_the_test_error(parabola, tmp_path):
    reference = parabola
    settings = validate_config({
        "targets": {"p": {"family": "function", "expression": "x**2", "domain": [[-1, 1]]}},
        "models": {"mlp": {"kind": "spiking_mlp", "width": 16, "depth": 2, "steps": 8,
                           "window": 4}},
        "methods": {"rfg": {"estimator": "forward", "spiking": True,
                            "surrogate": {"kind": "fast_sigmoid", "slope": 10.0}, "scope": "layer",
                            "directions": 4, "distribution": "gaussian", "epsilon": 0.05}},
        "train": {"steps": 600, "eval_every": 300, "checkpoint_every": 1000, "batch": 32,
                  "lr": 0.03},
        "experiments": [{"target": "p", "model": "mlp", "methods": ["rfg"]}]})
    outputs = {name: tmp_path / f"{name}.nc" for name in ("model", "history", "prediction")}
    status = run_training(reference, settings["models"]["mlp"], settings["methods"]["rfg"],
                          settings["train"], seed=0, device="cpu", outputs=outputs, estimator=ForwardGradient)
    history = io.read_dataset(outputs["history"])
    assert status == "completed"
    loss = history["loss"].values
    assert loss[-50:].mean() < 0.1 * loss[:50].mean()
    assert history["test_rel_l2_mean"].values[-1] < 0.2  # ~0.65 untrained
    passes = history["forward_passes"].values
    assert passes[0] == 1 + 4 * 3 and np.all(np.diff(passes) == 13)  # 3 layers x 4 directions
