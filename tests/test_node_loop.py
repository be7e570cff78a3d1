"""Node perturbation in the loop (fwdsnn.grad.node_loop): its unperturbed row is the chip's
own output, the noise rows carry exactly the integer currents they are said to, the mean of
many estimates at 16 bits agrees with the float network's node perturbation per layer, it
trains a network through the 4-bit chip, and bad settings name their key."""

import numpy as np
import pytest
import torch

from fwdsnn.config import ConfigError, validate_config
from fwdsnn.data import Affine
from fwdsnn.grad import mse
from fwdsnn.grad.node import NodePerturbation
from fwdsnn.grad.node_loop import noise_scale, subnet_pass
from fwdsnn.hardware.convert import convert
from fwdsnn.hardware.emulator import emulate_rows
from forward_only import lif_linears
from test_forward_gradient import flat
from test_hardware import random_inputs, random_model
from test_in_loop import train_in_loop


def node_loop(bits=16, delay=0, **changes) -> dict:
    return {"scope": "layer", "directions": 2, "distribution": "gaussian", "epsilon": 0.2,
            "hardware": {"bits": bits, "synaptic_delay": delay}, **changes}


def target_of(model, inputs):
    with torch.no_grad():
        return torch.randn(model(*inputs).shape, dtype=torch.float64,
                           generator=torch.Generator().manual_seed(5))


@pytest.mark.parametrize("kind, bits, delay", [("spiking_mlp", 4, 0), ("spiking_mlp", 8, 1),
                                               ("spiking_deeponet", 6, 0), ("spiking_seponet", 16, 1)])
def test_the_reported_loss_is_the_chips(kind, bits, delay):
    model, inputs = random_model(kind), random_inputs(kind)
    target = target_of(model, inputs)
    estimator = NodePerturbation(node_loop(bits, delay), torch.Generator().manual_seed(0))
    result = estimator.estimate(model, inputs, target)
    chip = convert(model, Affine(0.0, 1.0), bits, synaptic_delay=delay)
    assert result.loss == mse(emulate_rows([chip], inputs)[0][0], target).item()
    assert result.forward_passes == 1 + 2 * 2 * sum(len(n.linears) for n in model.subnets().values())
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("delay", [0, 1])
def test_noise_rows_carry_the_rounded_currents_and_zero_noise_changes_nothing(delay):
    """With noise drawn as zeros every row is row 0 (no difference anywhere); with noise, the
    noise sums are the rounded integer currents over sigma, none before the delay."""
    model, inputs = random_model("spiking_mlp"), random_inputs("spiking_mlp")
    chip = convert(model, Affine(0.0, 1.0), 8, synaptic_delay=delay)
    layers, net = chip.subnets[""], model.subnets()[""]
    args = (net, layers, inputs[0], chip.steps, chip.decode, chip.window, chip.input_bits, delay)
    zero = subnet_pass(*args, lambda like: torch.zeros(3, *like.shape, dtype=like.dtype), 3, 0.2)
    assert torch.equal(zero.traced.tangent, torch.zeros_like(zero.traced.tangent))
    assert torch.equal(zero.traced.output, emulate_rows([chip], inputs, delay)[0][0])
    draws = []

    def draw(like):
        generator = torch.Generator().manual_seed(len(draws))
        draws.append(torch.randn(3, *like.shape, dtype=like.dtype, generator=generator))
        return draws[-1]
    run = subnet_pass(*args, draw, 3, 0.2)
    assert not torch.equal(run.traced.tangent, torch.zeros_like(run.traced.tangent))
    for k, layer in enumerate(run.layers):
        sigma = noise_scale(layers[k], 0.2)
        noise = torch.round(sigma * draws[k]) / sigma
        per_step = noise if k == 0 else torch.cat([noise.new_zeros(3, delay, *noise.shape[2:]), noise], 1)
        summed = per_step if k == 0 else per_step.sum(1)
        assert torch.allclose(layer.bias, summed.transpose(0, 1), rtol=0, atol=1e-12)


def test_at_16_bits_the_mean_agrees_with_the_float_networks_node_perturbation():
    """Many rows: per LIF layer the cosine of the chip's mean estimate to the float network's
    (a different draw) is at least 0.9; the exact readouts agree to 2% (the chip's spikes and
    outputs at 16 bits are nearly the float network's)."""
    model, inputs = random_model("spiking_deeponet"), random_inputs("spiking_deeponet")
    target = target_of(model, inputs)
    grads = []
    for hardware in (True, False):
        settings = node_loop(directions=300)
        if not hardware:
            del settings["hardware"]
        estimator = NodePerturbation(settings, torch.Generator().manual_seed(int(hardware)))
        estimator.estimate(model, inputs, target)
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
    chip, float_net = grads
    for layer, names in lif_linears(model).items():
        a, b = flat(chip[n] for n in names), flat(float_net[n] for n in names)
        assert (a @ b / (a.norm() * b.norm())).item() >= 0.9, layer
    for name in ("branch.readout.weight", "trunk.readout.bias", "b0"):
        assert (chip[name] - float_net[name]).norm() < 0.02 * float_net[name].norm(), name


def test_node_perturbation_trains_through_the_4_bit_chip(parabola, tmp_path):
    method = {"estimator": "node", **node_loop(bits=4, directions=2, epsilon=0.3)}
    loss, test = train_in_loop(parabola, tmp_path, method, NodePerturbation, steps=120, batch=32)
    assert np.mean(loss[-20:]) < 0.2 * np.mean(loss[:20])  # the 4-bit chip's loss
    assert test[-1] < 0.3  # the float network's, ~0.65 untrained


def test_settings_are_checked_naming_the_key():
    with pytest.raises(ValueError, match="method.scope 'global'.*layer scope"):
        NodePerturbation(node_loop(scope="global"), torch.Generator())
    with pytest.raises(ValueError, match="method.hardware.bits 5"):
        NodePerturbation(node_loop(bits=5), torch.Generator())
    model, inputs = random_model("spiking_mlp"), random_inputs("spiking_mlp")
    tiny = NodePerturbation(node_loop(epsilon=1e-6), torch.Generator())
    with pytest.raises(ValueError, match="method.epsilon 1e-06 gives .*below one"):
        tiny.estimate(model, inputs, target_of(model, inputs))
    config = {"targets": {"f": {"family": "function", "expression": "x", "domain": [[0, 1]]}},
              "models": {"mlp": {"kind": "spiking_mlp"}},
              "experiments": [{"target": "f", "model": "mlp", "methods": ["np"]}]}
    accepted = validate_config({**config, "methods": {"np": {"estimator": "node", **node_loop()}}})
    assert accepted["methods"]["np"]["hardware"]["bits"] == 16
    with pytest.raises(ConfigError, match="methods.np"):
        validate_config({**config, "methods": {"np": {"estimator": "node", **node_loop(scope="global")}}})
    with pytest.raises(ConfigError, match="methods.np"):
        validate_config({**config, "methods": {"np": {"estimator": "activity", "scope": "layer",
                                                      "hardware": {"bits": 8}}}})
