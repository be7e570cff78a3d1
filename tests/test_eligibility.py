"""Eligibility traces: every sub-network's last hidden LIF layer and the readout get BPTT's
gradient exactly (every model kind, both decodes, several windows, a constant input at depth
1), and with `first_layer: jacobian` the first layer too; the earlier layers' activity rows
are unbiased, memory does not grow with T (and the dry
run's estimate counts the traces), a seed replays an estimate, bad settings name their key,
and it trains through `fwdsnn.train`."""

from functools import partial
from pathlib import Path

import pytest
import torch

from fwdsnn.config import ConfigError, validate_config
from fwdsnn.grad.bptt import AdjointBackprop
from fwdsnn.grad.eligibility import EligibilityTraces
from fwdsnn.grad.readout import readout_parameters
from fwdsnn.limits import run_terms
from forward_only import (assert_flat_in_time, exact, lif_linears, memory_peaks, method, problem,
                          replayed, run_estimator, train_parabola)
from test_forward_gradient import cosine, flat, relative

estimate = partial(run_estimator, EligibilityTraces)
DEPTHS = {"spiking_mlp": 3, "spiking_deeponet": 2, "spiking_seponet": 2}


def backprop(model, args, target) -> dict[str, torch.Tensor]:
    """`estimator: backprop`'s gradient (one adjoint per layer, the same surrogate)."""
    AdjointBackprop().estimate(model, args, target)
    return {name: p.grad.clone() for name, p in model.named_parameters()}


def last_hidden(model) -> list[str]:
    """The weight and bias names of every sub-network's last hidden Linear."""
    layers = lif_linears(model)
    last = {}
    for layer in layers:
        subnet, _, index = layer.rpartition(".")
        last[subnet] = max(last.get(subnet, -1), int(index))
    return [name for subnet, k in last.items() for name in layers[f"{subnet}.{k}"]]


@pytest.mark.parametrize("kind,depth", [*DEPTHS.items(), ("spiking_seponet", 1)])
@pytest.mark.parametrize("decode", ["mean", "last"])
def test_last_hidden_layers_and_readout_equal_backprop(kind, depth, decode):
    """40 steps are windows of 16, 16 and 8, so the traces cross window boundaries; at depth 1
    the traced layer's input is the constant encoding, and the whole gradient is exact."""
    model, args, target, _ = problem(kind, depth=depth, steps=40, decode=decode, window=5)
    reference = backprop(model, args, target)
    result, estimated = estimate(model, args, target, [], method(directions=2))
    names = last_hidden(model) + readout_parameters(model)
    assert len(names) == 2 * len(model.subnets()) + len(readout_parameters(model))
    for name in names:
        assert reference[name].abs().sum() > 0, name
        assert relative(estimated[name], reference[name]) < 1e-10, name
    assert not any(g.requires_grad for g in estimated.values())
    earlier = [name for name in estimated if name not in names]
    assert len(earlier) == 2 * (depth - 1) * len(model.subnets())
    for name in earlier:  # activity rows: an estimate, not the gradient
        assert relative(estimated[name], reference[name]) > 1e-3, name
    assert result.forward_passes == 1 + 2 * (depth - 1) * len(model.subnets())


@pytest.mark.parametrize("kind", DEPTHS)
def test_first_layer_jacobian_makes_the_gradient_exact(kind):
    """`first_layer: jacobian`: a unit row per neuron of the first current (constant in time)
    gives that layer's exact gradient; with the traces every layer but an MLP's middle one
    (activity rows) is BPTT's, and each sub-network pays a row per first-layer neuron."""
    model, args, target, _ = problem(kind, depth=DEPTHS[kind], steps=40, window=5)
    reference = backprop(model, args, target)
    result, estimated = estimate(model, args, target, [], method(first_layer="jacobian"))
    middle = ["linears.1.weight", "linears.1.bias"] if kind == "spiking_mlp" else []
    for name in estimated:
        error = relative(estimated[name], reference[name])
        assert error > 1e-3 if name in middle else error < 1e-10, name
    first = sum(net.linears[0].out_features for net in model.subnets().values())
    assert result.forward_passes == 1 + first + (1 if kind == "spiking_mlp" else 0)


@pytest.mark.parametrize("kind", DEPTHS)
def test_mean_of_many_rows_converges_to_bptt(kind):
    """K rows per earlier layer are K independent activity estimates averaged: at this K their
    per-layer error is a few percent; the traced layers are exact at any K."""
    model, args, target, generators = problem(kind, seed=2, depth=DEPTHS[kind], steps=16,
                                              window=4)  # 16 steps: the MLP's first layer spikes
    _, estimated = estimate(model, args, target, generators, method(directions=8000))
    reference = exact(model, args, target, generators)
    for layer, names in lif_linears(model).items():
        a, b = flat(estimated[n] for n in names), flat(reference[n] for n in names)
        assert cosine(a, b) >= 0.99, layer
        assert (a @ b / (b @ b)).item() == pytest.approx(1.0, abs=0.05), layer  # unbiased scale


def test_same_seed_same_estimate_and_the_traces_need_no_seed():
    model, args, target, generators = problem("spiking_seponet")
    settings = method(directions=2, distribution="rademacher")
    first, other = replayed(estimate, model, args, target, generators, settings)
    assert not torch.equal(first["branch.linears.0.weight"], other["branch.linears.0.weight"])
    for name in last_hidden(model):
        assert relative(first[name], other[name]) < 1e-12, name


def test_settings_are_checked():
    generator = torch.Generator()
    assert EligibilityTraces(method(), generator).generators() == {"directions": generator}
    for key, value in [("scope", "global"), ("readout", "perturbed"), ("distribution", "uniform"),
                       ("directions", 0), ("first_layer", "exact")]:
        with pytest.raises(ValueError, match=rf"{key}.*{value}|{value}.*{key}"):
            EligibilityTraces(method(**{key: value}), generator)
    model, args, target, _ = problem("spiking_mlp", spiking=False)
    with pytest.raises(ValueError, match="spiking: false"):
        EligibilityTraces(method(), generator).estimate(model, args, target)
    config = {"targets": {"f": {"family": "function", "expression": "x", "domain": [[0, 1]]}},
              "models": {"mlp": {"kind": "spiking_mlp"}},
              "methods": {"et": {"estimator": "eligibility", "directions": 2}},
              "experiments": [{"target": "f", "model": "mlp", "methods": ["et"]}]}
    accepted = validate_config(config)["methods"]["et"]
    assert accepted["scope"] == "layer" and not {"readout", "first_layer"} & set(accepted)
    config["methods"]["et"]["first_layer"] = "all"
    with pytest.raises(ConfigError, match="first_layer"):
        validate_config(config)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_memory_does_not_grow_with_steps():
    """As activity's check (`forward_only.memory_peaks`): the traces and their sum are
    (256, 128, 129) at every T; a history of one layer would be 32 MiB at T = 256."""
    peaks = memory_peaks("eligibility", method())
    assert_flat_in_time(peaks)


def test_memory_estimate_counts_the_traces():
    """Two per-example tensors of width x width (the last hidden layer's inputs) on every
    sub-network example: the batch and a DeepONet's every grid point; at depth 1 the inputs
    are the sensors. Activity keeps none. `first_layer: jacobian` adds width rows."""
    target = {"family": "heat1d", "nx": 101, "nt": 101, "n_sensors": 101}
    model = {"kind": "spiking_deeponet", "width": 64, "depth": 2, "steps": 32, "latent": 64}
    train = {"batch": 20, "steps": 100}

    def terms(estimator, method=(), **changes):
        return run_terms(target, {**model, **changes},
                         {"estimator": estimator, "directions": 1, **dict(method)}, train,
                         lambda *names: ".".join(names))

    def traces(estimator, **changes):
        return [t.bytes for t in terms(estimator, **changes) if t.what == "eligibility traces"]

    def states(method):  # the LIF states of the batch, with the estimator's rows as a factor
        return next(t for t in terms("eligibility", method) if t.what == "LIF states of a batch")

    assert traces("eligibility") == [4 * 2 * 64 * 64 * (20 + 101 * 101)]
    assert traces("eligibility", depth=1) == [4 * 2 * 64 * 101 * (20 + 101 * 101)]
    assert traces("activity") == []
    jacobian = states({"first_layer": "jacobian"})  # a row per first-layer neuron as well
    assert jacobian.bytes == states({}).bytes * (2 * 1 + 64) // (2 * 1)
    assert jacobian.factors[-1][0] == "method.first_layer"


def test_training_with_eligibility_traces_reduces_the_loss(parabola, tmp_path):
    history = train_parabola(parabola, tmp_path, {"estimator": "eligibility"})
    assert history["forward_passes"].values[0] == 1 + 1  # one row for the first LIF layer
