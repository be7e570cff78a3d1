"""Activity perturbation and the exact forward-only readout gradient: the estimate is unbiased
for BPTT's gradient (layer by layer, every model kind, both scopes, analytic and Stein
surrogates), the readout gradient is exact, memory does not grow with T (and the dry run's
estimate counts what it keeps), a seed replays an estimate, bad settings name their key, and
it trains through `fwdsnn.train`."""

from functools import partial
from pathlib import Path

import pytest
import torch

from fwdsnn.config import ConfigError, validate_config
from fwdsnn.grad.activity import ActivityPerturbation
from fwdsnn.grad.base import mse
from fwdsnn.grad.forward import ForwardGradient
from fwdsnn.grad.readout import readout_parameters
from fwdsnn.limits import run_terms
from forward_only import (STEIN, assert_flat_in_time, exact, lif_linears, memory_peaks, method,
                          problem, replayed, run_estimator, train_parabola)
from test_forward_gradient import KINDS, bptt_gradient, flat, relative
from test_models import inputs, small

estimate = partial(run_estimator, ActivityPerturbation)


# seeds whose layers' gradients lie within ~10x of each other: in global scope a layer with a
# much smaller gradient than the others is buried in their noise, and needs far more rows
SEEDS = {"spiking_mlp": 1, "spiking_deeponet": 1, "spiking_seponet": 2}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scope,rows", [("layer", 8000), ("global", 20000)])
def test_mean_of_many_rows_converges_to_bptt(kind, scope, rows):
    """K rows in one pass are K independent estimates averaged: at these K the per-layer error
    of the mean is a few percent of the gradient (the noise per example spans a layer's
    currents over time, ~50-100 numbers here; global rows carry every layer's noise at once,
    so they need more). The readout is exact."""
    model, args, target, generators = problem(kind, seed=SEEDS[kind], steps=8, window=4)
    result, estimated = estimate(model, args, target, generators, method(scope=scope,
                                                                         directions=rows))
    reference = exact(model, args, target, generators)
    for layer, names in lif_linears(model).items():
        a, b = flat(estimated[n] for n in names), flat(reference[n] for n in names)
        assert (a @ b / (a.norm() * b.norm())).item() >= 0.99, layer
        assert (a @ b / (b @ b)).item() == pytest.approx(1.0, abs=0.05), layer  # unbiased scale
    for name in readout_parameters(model):
        assert relative(estimated[name], reference[name]) < 1e-10, name
    assert result.loss == pytest.approx(mse(model(*args), target).item(), rel=1e-12)
    lif_layers = len(lif_linears(model))
    assert result.forward_passes == 1 + rows * (lif_layers if scope == "layer" else 1)


@pytest.mark.parametrize("scope", ["layer", "global"])
def test_stein_surrogate_converges_with_the_same_noise_as_bptt(scope):
    """One Stein derivative per spike, shared by all rows: with a generator per LIF layer the
    pass draws what BPTT through the model draws, so the mean tends to that BPTT gradient."""
    model, args, target, generators = problem("spiking_mlp", STEIN, seed=3, steps=8, window=4)
    _, estimated = estimate(model, args, target, generators,
                            method(scope=scope, directions=8000 if scope == "layer" else 20000))
    reference = exact(model, args, target, generators)
    for layer, names in lif_linears(model).items():
        a, b = flat(estimated[n] for n in names), flat(reference[n] for n in names)
        assert (a @ b / (a.norm() * b.norm())).item() >= 0.99, layer


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("decode", ["mean", "last"])
def test_exact_readout_gradient_equals_bptt(kind, decode):
    """Readout Linears and b0, exact from the filtered spikes: activity perturbation's default,
    and ForwardGradient's `readout: exact` (whose directions then leave them out)."""
    model, args, target, generators = problem(kind, decode=decode, window=5)
    reference = exact(model, args, target, generators)
    names = readout_parameters(model)
    assert ("b0" in names) == (kind != "spiking_mlp")
    for estimator in (ActivityPerturbation(method(), torch.Generator().manual_seed(0)),
                      ForwardGradient(method(readout="exact"), torch.Generator().manual_seed(0))):
        estimator.estimate(model, args, target)
        for name in names:
            assert relative(model.get_parameter(name).grad, reference[name]) < 1e-10, name


def test_the_tanh_twin_without_time():
    """The ANN twin (`spiking: false`): its layers have no time, so each row's noise is one draw
    per example and neuron; the readout is exact for both estimators."""
    torch.manual_seed(4)
    model = small("spiking_deeponet", None, spiking=False).double()
    args = inputs("spiking_deeponet")
    target = torch.randn(3, 4, dtype=torch.float64)
    reference = bptt_gradient(model, args, target)
    ForwardGradient(method(readout="exact"), torch.Generator()).estimate(model, args, target)
    for name in readout_parameters(model):
        assert relative(model.get_parameter(name).grad, reference[name]) < 1e-10, name
    _, estimated = estimate(model, args, target, [], method(scope="global", directions=20000))
    for layer, names in lif_linears(model).items():
        a, b = flat(estimated[n] for n in names), flat(reference[n] for n in names)
        assert (a @ b / (a.norm() * b.norm())).item() >= 0.99, layer


def test_forward_gradient_with_exact_readout_draws_directions_for_the_rest_only():
    model, args, target, _ = problem("spiking_deeponet")
    result = ForwardGradient(method(directions=2, readout="exact"),
                             torch.Generator()).estimate(model, args, target)
    assert result.forward_passes == 1 + 2 * len(lif_linears(model))  # no rows for readouts, b0


def test_perturbed_readout_is_an_unbiased_forward_gradient():
    """`readout: perturbed`: (1/K) sum_k (g . v_k) v_k on each readout layer (weight and bias
    share a direction, so the cosine is the layer's) and b0."""
    model, args, target, generators = problem("spiking_seponet", seed=5)
    reference = exact(model, args, target, generators)
    _, estimated = estimate(model, args, target, generators,
                            method(directions=20000, readout="perturbed"))
    layers = {}
    for name in readout_parameters(model):
        layers.setdefault(name.rpartition(".")[0] or name, []).append(name)
    for layer, names in layers.items():
        a, b = flat(estimated[n] for n in names), flat(reference[n] for n in names)
        assert (a @ b / (a.norm() * b.norm())).item() > 0.99, layer
    _, single = estimate(model, args, target, generators, method(readout="perturbed"))
    # one direction: b0, a block of one element, is drawn +-1 and so exact; a layer is not
    assert relative(single["b0"], reference["b0"]) < 1e-12
    assert relative(single["branch.readout.weight"], reference["branch.readout.weight"]) > 1e-3


def test_same_seed_same_estimate_and_frozen_layers_get_nothing():
    model, args, target, generators = problem("spiking_seponet", STEIN)
    for settings in (method(), method(scope="global", directions=2, distribution="rademacher",
                                      readout="perturbed")):
        first, other = replayed(estimate, model, args, target, generators, settings)
        assert not torch.equal(first["branch.linears.1.weight"], other["branch.linears.1.weight"])
    frozen = ["branch.linears.0.weight", "trunks.1.readout.bias", "b0"]
    for name in frozen:
        model.get_parameter(name).requires_grad_(False)
    ActivityPerturbation(method(), torch.Generator()).estimate(model, args, target)
    for name, p in model.named_parameters():
        assert (p.grad is None) == (name in frozen), name


def test_settings_are_checked_and_the_generator_is_kept():
    generator = torch.Generator()
    assert ActivityPerturbation(method(), generator).generators() == {"directions": generator}
    for estimator in (ActivityPerturbation, ForwardGradient):
        for key, value in [("scope", "all"), ("readout", "none"), ("distribution", "uniform"),
                           ("directions", 0)]:
            with pytest.raises(ValueError, match=rf"{key}.*{value}|{value}.*{key}"):
                estimator(method(**{key: value}), generator)
    config = {"targets": {"f": {"family": "function", "expression": "x", "domain": [[0, 1]]}},
              "models": {"mlp": {"kind": "spiking_mlp"}},
              "experiments": [{"target": "f", "model": "mlp", "methods": ["ap"]}]}
    accepted = validate_config({**config, "methods": {"ap": {"estimator": "activity",
                                                              "readout": "perturbed"}}})
    assert accepted["methods"]["ap"]["scope"] == "layer"
    with pytest.raises(ConfigError, match="readout"):
        validate_config({**config, "methods": {"ap": {"estimator": "activity", "readout": "no"}}})


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_memory_does_not_grow_with_steps():
    """Peak RSS (VmHWM, so the smaller pass runs first) of one estimate at T = 16 and T = 256 in
    a fresh process. The per-example sums (B, out, in) are the same at every T; one layer's
    (T, 256, 128) history (spikes, or the noise) is 32 MiB at T = 256, and the model's own
    forward, which keeps several, shows the check can see that. The margin is for the
    allocator: T = 16 is one window, later windows reuse buffers of several MiB each (a
    longer run, to T = 1024, adds almost nothing more)."""
    peaks = memory_peaks("activity", method())
    assert_flat_in_time(peaks)


def test_memory_estimate_counts_the_per_example_sums():
    """The dry run's estimate (fwdsnn.limits) holds activity's sums, which grow with the
    examples a sub-network sees (a DeepONet's trunk: every grid point)."""
    target = {"family": "heat1d", "nx": 101, "nt": 101, "n_sensors": 101}
    model = {"kind": "spiking_deeponet", "width": 64, "depth": 2, "steps": 32, "latent": 64}
    train = {"batch": 20, "steps": 100}

    def sums(directions):
        method = {"estimator": "activity", "directions": directions}
        terms = run_terms(target, model, method, train, lambda *names: ".".join(names))
        return [t.bytes for t in terms if t.what == "per-example noise sums"]

    assert sums(1) == [4 * 2 * 64 * 64 * (20 + 101 * 101)] and sums(2)[0] == 2 * sums(1)[0]


def test_training_with_activity_perturbation_reduces_the_loss(parabola, tmp_path):
    history = train_parabola(parabola, tmp_path, {"estimator": "activity"})
    assert history["forward_passes"].values[0] == 1 + 2  # one row per LIF layer
