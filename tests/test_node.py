"""Node perturbation: on the smooth tanh twin it is activity perturbation up to O(eps^2) and
its mean converges to the exact gradient; through the Heaviside its mean is the gradient of
the Gaussian-smoothed loss (Stein's lemma, against quadrature); memory does not grow with T,
a seed replays an estimate, bad settings name their key, and it trains through `fwdsnn.train`."""

import math
from functools import partial
from pathlib import Path

import pytest
import torch
from norse.torch.functional.leaky_integrator import LIState
from norse.torch.functional.lif import LIFFeedForwardState

from forward_only import (FAST, assert_flat_in_time, exact, lif_linears, memory_peaks, method,
                          problem, replayed, run_estimator, train_parabola)
from fwdsnn.config import ConfigError, validate_config
from fwdsnn.grad.activity import ActivityPerturbation
from fwdsnn.grad.base import mse
from fwdsnn.grad.node import NodePerturbation
from fwdsnn.grad.readout import readout_parameters
from fwdsnn.snn.models import SpikingMLP
from fwdsnn.snn.neuron import decode, li_step, lif_step, rest_state
from fwdsnn.snn.spike import make_surrogate
from test_forward_gradient import KINDS, bptt_gradient, flat, relative

estimate = partial(run_estimator, NodePerturbation)
activity = partial(run_estimator, ActivityPerturbation)


def node(**settings) -> dict:
    return method(**{"epsilon": 0.1, **settings})


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_on_the_tanh_twin_it_is_activity_perturbation_up_to_eps_squared(kind, scope):
    """Same seed, same noise: the central difference differs from activity's tangent by
    O(eps^2) (halving eps quarters the difference), and tends to it."""
    model, args, target, _ = problem(kind, seed=4, spiking=False)
    _, tangent = activity(model, args, target, [], method(scope=scope, directions=3))
    gaps = []
    for epsilon in (1e-2, 5e-3):
        result, central = estimate(model, args, target, [], node(scope=scope, directions=3,
                                                                 epsilon=epsilon))
        gaps.append(max((central[n] - tangent[n]).abs().max().item() for n in tangent))
        assert all(torch.equal(central[n], tangent[n]) for n in readout_parameters(model))
    assert gaps[0] > 0 and gaps[0] / gaps[1] == pytest.approx(4.0, rel=0.02), gaps
    assert result.loss == pytest.approx(mse(model(*args), target).item(), rel=1e-12)
    rows = 3 * (len(lif_linears(model)) if scope == "layer" else 1)
    assert result.forward_passes == 1 + 2 * rows


@pytest.mark.parametrize("scope,rows", [("layer", 8000), ("global", 20000)])
def test_on_the_tanh_twin_the_mean_converges_to_the_gradient(scope, rows):
    """Many rows averaged: per layer within a few percent of the exact gradient (cosine and
    scale), at an eps whose O(eps^2) bias is far below that."""
    model, args, target, _ = problem("spiking_deeponet", seed=4, spiking=False)
    _, estimated = estimate(model, args, target, [], node(scope=scope, directions=rows,
                                                          epsilon=0.05))
    reference = bptt_gradient(model, args, target)
    for layer, names in lif_linears(model).items():
        a, b = flat(estimated[n] for n in names), flat(reference[n] for n in names)
        assert (a @ b / (a.norm() * b.norm())).item() >= 0.99, layer
        assert (a @ b / (b @ b)).item() == pytest.approx(1.0, abs=0.05), layer
    for name in readout_parameters(model):
        assert relative(estimated[name], reference[name]) < 1e-10, name


def single_neurons(depth=1, steps=8, v_th=0.5):
    """A chain of `depth` one-neuron LIF layers and an LI readout; the first layer's current is
    z = x (W = 1, b = 0), a later one's 0.8 s + 0.1 for its input spikes s."""
    torch.manual_seed(0)
    model = SpikingMLP(1, 1, 1, depth, steps, {"v_th": v_th}, make_surrogate(FAST),
                       decode="mean", window=min(4, steps)).double()
    with torch.no_grad():
        model.linears[0].weight.fill_(1.0)
        model.linears[0].bias.zero_()
        for linear in model.linears[1:]:
            linear.weight.fill_(0.8)
            linear.bias.fill_(0.1)
    return model


def smoothed_slopes(model, z, g, sigma, points=200001):
    """By quadrature over u ~ N(0, 1) on [-8, 8], per example b: the mean and variance of
    c_b = u (F_b(z_b + sigma u) - F_b(z_b - sigma u)) / (2 sigma), F_b = g_b y(z_b): the mean
    is d/dz E F_b(z_b + sigma u), the smoothed slope. The model's own forward gives y."""
    u = torch.linspace(-8.0, 8.0, points, dtype=torch.float64)
    weights = torch.exp(-u * u / 2) / math.sqrt(2 * math.pi) * (u[1] - u[0])
    with torch.no_grad():
        y = model((z.view(-1, 1) + sigma * u).reshape(-1, 1)).view(len(z), points)
    f = g.view(-1, 1) * y
    c = u * (f - f.flip(1)) / (2 * sigma)  # the grid is symmetric: flip(1) is -u
    mean = (c * weights).sum(1)
    return mean, (c * c * weights).sum(1) - mean ** 2


def test_through_the_heaviside_the_mean_is_the_smoothed_loss_gradient():
    """Stein's lemma on one neuron of the first layer (time-constant noise, so the smoothed
    loss is a one-dimensional integral): E[g_b] = sum_b d/dz_b E F_b(z_b + eps v_th u) and
    E[g_W] = sum_b x_b d/dz_b E F_b, F_b the loss linearised at the output, to within 4.5
    standard errors of K rows (the variance by the same quadrature). v_th = 0.5 makes the unit
    count, and the smoothed slopes at eps and 2 eps lie many standard errors apart, so the
    check sees the smoothing scale."""
    model, epsilon, directions = single_neurons(), 0.2, 20000
    x = torch.tensor([[0.3], [0.45], [0.7], [1.1]], dtype=torch.float64)  # near spike-count jumps
    target = torch.zeros(4, 1, dtype=torch.float64)
    y = model(x)
    (g,) = torch.autograd.grad(mse(y, target), y)
    sigma = epsilon * 0.5
    mean, variance = smoothed_slopes(model, x.flatten(), g.flatten(), sigma)
    wider, _ = smoothed_slopes(model, x.flatten(), g.flatten(), 2 * sigma)
    _, estimated = estimate(model, (x,), target, [], node(directions=directions, epsilon=epsilon))
    for name, weight in (("linears.0.bias", torch.ones(4)), ("linears.0.weight", x.flatten())):
        expected, error = (weight * mean).sum(), ((weight ** 2 * variance).sum() / directions).sqrt()
        assert abs(estimated[name].item() - expected.item()) < 4.5 * error.item(), name
        assert abs((weight * wider).sum().item() - expected.item()) > 10 * error.item(), name
        assert abs(expected.item()) > 10 * error.item(), name


def lif_spikes(lif, currents: torch.Tensor) -> torch.Tensor:
    """Spikes (..., n) of a LIF layer for per-step currents (..., n), by `neuron.lif_step`."""
    state = rest_state(LIFFeedForwardState, currents[..., 0], lif.p)
    spikes = []
    for t in range(currents.shape[-1]):
        z, state = lif_step(currents[..., t], state, lif.p, lif.dt, None)
        spikes.append(z)
    return torch.stack(spikes, -1)


def second_layer_output(model, currents: torch.Tensor) -> torch.Tensor:
    """The output (...) of `single_neurons(2)` for the second layer's currents (..., n), stepped
    by `neuron.lif_step` / `li_step` (node's pass runs `lif_window` / `li_window`)."""
    readout = model.readout.weight[0, 0] * lif_spikes(model.lifs[1], currents) + model.readout.bias[0]
    state = rest_state(LIState, readout[..., 0], model.li.p)
    voltages = []
    for t in range(currents.shape[-1]):
        v, state = li_step(readout[..., t], state, model.li.p, model.li.dt)
        voltages.append(v)
    return decode(torch.stack(voltages), model.decode, model.window)


def smoothed_directional(model, c, g, a, sigma, samples=1000, points=801):
    """sum_b d/dbeta E_u F_b(c_b + beta a_b + sigma u), u ~ N(0, I_n), F_b = g_b y: u splits into
    xi along a_b (quadrature over xi, 1-D Stein) and the rest (Monte Carlo). The mean and its
    standard error over the Monte-Carlo samples."""
    generator = torch.Generator().manual_seed(0)
    xi = torch.linspace(-8.0, 8.0, points, dtype=torch.float64)
    weights = torch.exp(-xi * xi / 2) / math.sqrt(2 * math.pi) * (xi[1] - xi[0])
    total, variance = 0.0, 0.0
    for c_b, g_b, a_b in zip(c, g, a):
        norm = a_b.norm()
        if norm == 0:
            continue
        along = a_b / norm
        u = torch.randn(samples, len(a_b), generator=generator, dtype=torch.float64)
        rest = u - (u @ along).unsqueeze(1) * along
        with torch.no_grad():
            f = g_b * second_layer_output(model, c_b + sigma * (xi.view(1, -1, 1) * along
                                                                + rest.unsqueeze(1)))
        inner = norm / sigma * (xi * f * weights).sum(1)
        total, variance = total + inner.mean().item(), variance + inner.var().item() / samples
    return total, math.sqrt(variance)


def test_fresh_noise_every_step_follows_the_smoothed_loss_of_a_later_layer():
    """Stein's lemma for a later layer's noise, fresh every step: the second layer's rows see
    its currents c_t = 0.8 s_t + 0.1 (s the first layer's spikes, unperturbed in layer scope)
    plus eps v_th u_t, so E[g_b] = sum_b d/dbeta E F_b(c + beta 1 + eps v_th u) and
    E[g_W] = the same along s. The reference steps the neurons by `lif_step` with per-step
    currents; estimate and reference agree within 4.5 joint standard errors (the estimate's
    from ten seeds) and stand well apart from the reference at half the smoothing scale."""
    model, epsilon, steps = single_neurons(depth=2, steps=6), 0.2, 6
    x = torch.tensor([[0.6], [1.0], [1.5], [2.5]], dtype=torch.float64)
    target = torch.zeros(4, 1, dtype=torch.float64)
    with torch.no_grad():
        spikes = lif_spikes(model.lifs[0], x.expand(4, steps))
        currents = model.linears[1].weight[0, 0] * spikes + model.linears[1].bias[0]
        assert torch.equal(second_layer_output(model, currents), model(x)[:, 0])
    y = model(x)
    (g,) = torch.autograd.grad(mse(y, target), y)
    runs = torch.stack([torch.cat([grad["linears.1.bias"], grad["linears.1.weight"].flatten()])
                        for grad in (estimate(model, (x,), target, [], node(directions=2000,
                                                                              epsilon=epsilon),
                                              seed=seed)[1]
                                     for seed in range(10))])
    sigma = epsilon * 0.5
    for column, along in enumerate((torch.ones_like(spikes), spikes)):
        expected, error = smoothed_directional(model, currents, g.flatten(), along, sigma)
        narrower, _ = smoothed_directional(model, currents, g.flatten(), along, sigma / 2)
        error = math.hypot(error, runs[:, column].std().item() / math.sqrt(len(runs)))
        assert abs(runs[:, column].mean().item() - expected) < 4.5 * error, column
        assert abs(narrower - expected) > 10 * error and abs(expected) > 10 * error, column


def test_cosine_to_the_surrogate_gradient_is_reported():
    """Reported, not asserted: the per-layer cosine of the mean of many rows to BPTT's
    fast-sigmoid surrogate gradient on a tiny spiking MLP (node follows the smoothed loss, a
    different quantity). Asserted: the readout is exact and every layer's estimate is finite."""
    model, args, target, generators = problem("spiking_mlp", steps=8, window=4)
    result, estimated = estimate(model, args, target, generators,
                                 node(directions=4000, epsilon=0.1))
    reference = exact(model, args, target, generators)
    for name in readout_parameters(model):
        assert relative(estimated[name], reference[name]) < 1e-10, name
    for layer, names in lif_linears(model).items():
        a, b = flat(estimated[n] for n in names), flat(reference[n] for n in names)
        assert torch.isfinite(a).all()
        print(f"node vs BPTT surrogate, {layer}: cosine {(a @ b / (a.norm() * b.norm())).item():.3f}")
    assert result.loss == pytest.approx(mse(model(*args), target).item(), rel=1e-12)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmHWM from /proc")
def test_memory_does_not_grow_with_steps():
    """As for activity perturbation (tests/test_activity.py): the per-example sums and the
    windows' row buffers are the same at every T."""
    peaks = memory_peaks("node", node())
    assert_flat_in_time(peaks)


def test_same_seed_same_estimate_and_frozen_layers_get_nothing():
    model, args, target, _ = problem("spiking_seponet")
    for settings in (node(), node(scope="global", directions=2, distribution="rademacher")):
        first, other = replayed(estimate, model, args, target, [], settings)
        assert not torch.equal(first["branch.linears.0.weight"], other["branch.linears.0.weight"])
    frozen = {"branch.linears.1.bias", "trunks.0.readout.weight", "b0"}
    for name in frozen:
        model.get_parameter(name).requires_grad_(False)
    NodePerturbation(node(), torch.Generator()).estimate(model, args, target)
    assert {name for name, p in model.named_parameters() if p.grad is None} == frozen


def test_settings_are_checked_and_epsilon_is_required():
    generator = torch.Generator()
    assert NodePerturbation(node(), generator).generators() == {"directions": generator}
    for key, value in [("scope", "all"), ("readout", "perturbed"), ("distribution", "uniform"),
                       ("directions", 0), ("epsilon", -0.1)]:
        with pytest.raises(ValueError, match=rf"{key}.*{value}|{value}.*{key}"):
            NodePerturbation(node(**{key: value}), generator)
    with pytest.raises(ValueError, match="epsilon"):
        NodePerturbation(method(), generator)
    config = {"targets": {"f": {"family": "function", "expression": "x", "domain": [[0, 1]]}},
              "models": {"mlp": {"kind": "spiking_mlp"}},
              "experiments": [{"target": "f", "model": "mlp", "methods": ["np", "wp"]}]}
    methods = {"np": {"estimator": "node", "epsilon": 0.2}, "wp": {"estimator": "perturbation"}}
    accepted = validate_config({**config, "methods": methods})["methods"]
    assert accepted["np"]["epsilon"] == 0.2 and accepted["wp"]["epsilon"] == 0.05
    with pytest.raises(ConfigError, match="methods.np.*epsilon"):
        validate_config({**config, "methods": {**methods, "np": {"estimator": "node"}}})
    with pytest.raises(ConfigError, match="methods.np.epsilon"):
        validate_config({**config, "methods": {**methods, "np": {"estimator": "node",
                                                                 "epsilon": 0}}})


def test_training_with_node_perturbation_reduces_the_loss(parabola, tmp_path):
    history = train_parabola(parabola, tmp_path, {"estimator": "node", "epsilon": 0.1})
    assert history["forward_passes"].values[0] == 1 + 2 * 2  # a pair per LIF layer
