"""Training in the loop: the batched emulator equals the one-network emulator row for row and
Lava's golden traces bit for bit, refuses networks beyond float64's integers, and weight
perturbation with `hardware` evaluates exactly the converted, emulated networks and trains."""

import copy

import numpy as np
import pytest
import torch

from fwdsnn import io
from fwdsnn.data import Affine
from fwdsnn.grad import mse
from fwdsnn.grad.emulated import InLoop
from fwdsnn.grad.perturbation import WeightPerturbation
from fwdsnn.hardware.convert import convert
from fwdsnn.hardware.emulator import (EXACT_LIMIT, check_exact, emulate, emulate_rows, exact_bound,
                                      run_rows, stack_rows)
from fwdsnn.train import run_training
from test_hardware import golden_layers, numpy_inputs, random_inputs, random_model
from test_train import SETTINGS, outputs

IN_LOOP = {"scope": "global", "directions": 2, "distribution": "gaussian", "epsilon": 3.0}


def perturbed_nets(kind: str, bits: int, rows: int, seed: int = 0) -> list:
    """Converted networks of one architecture: a random model and rows - 1 perturbations of it."""
    model = random_model(kind, seed)
    nets = [convert(model, Affine(0.0, 1.0), bits)]
    g = torch.Generator().manual_seed(seed)
    for _ in range(rows - 1):
        moved = copy.deepcopy(model)
        with torch.no_grad():
            for p in moved.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype) * p.abs().mean())
        nets.append(convert(moved, Affine(0.0, 1.0), bits))
    return nets


@pytest.mark.parametrize("kind, bits, rows, seed", [
    ("spiking_mlp", 3, 4, 0), ("spiking_mlp", 4, 2, 1), ("spiking_mlp", 6, 5, 2),
    ("spiking_mlp", 8, 3, 3), ("spiking_mlp", 16, 4, 4), ("spiking_deeponet", 8, 3, 5),
    ("spiking_seponet", 4, 2, 6)])
def test_batched_rows_equal_the_emulator_one_network_at_a_time(kind, bits, rows, seed):
    nets = perturbed_nets(kind, bits, rows, seed)
    inputs = numpy_inputs(random_inputs(kind, seed))
    for delay in (0, 1):
        batched, trains = emulate_rows(nets, inputs, delay, spikes=True)
        assert batched.shape[0] == rows
        for r, net in enumerate(nets):
            alone, alone_trains = emulate(net, inputs, delay)
            np.testing.assert_array_equal(batched[r].numpy(), alone)
            for name, s in alone_trains.items():
                np.testing.assert_array_equal(trains[name][r].numpy(), s)
    assert not np.array_equal(batched[0].numpy(), batched[-1].numpy())  # the rows differ


def test_batched_rows_match_lava_golden_traces():
    """Three rows of the golden network (Lava's weights, exponents, decays, biases) in one
    pass: every row reproduces every trace of Lava's own run with zero mismatches."""
    layers, x, traces = golden_layers(clip=False)
    stack = [stack_rows([layer] * 3) for layer in layers]
    check_exact(stack, float(np.abs(x).max()))
    ours = run_rows(stack, torch.from_numpy(x.astype(np.float64))[None, :, None], len(x), 1,
                    keep=("u", "v", "s"))
    for r in range(3):
        mismatches = sum(int(np.sum(trace[t][r, :, 0].numpy().astype(np.int64) != traces[k, t]))
                         for k, trace in enumerate(ours, start=1) for t in ("a_in", "u", "v", "s"))
        assert mismatches == 0


def test_the_bound_holds_on_a_run_and_fires_beyond_float64():
    nets = perturbed_nets("spiking_mlp", 16, 1)
    layer = nets[0].subnets[""][0]
    rows = stack_rows([layer])
    peak = 2 ** (nets[0].input_bits - 1) - 1
    bound = exact_bound(rows, peak)
    x = torch.full((1, 1, 1, layer.weight.shape[1]), float(peak))
    u = run_rows([rows], x, nets[0].steps, 0, keep=("u",))[0]["u"]
    assert u.abs().max() * 4095 <= bound < EXACT_LIMIT  # the bound covers what a run reaches
    layer.weight_exp = 31  # left shift by 31 of 16-bit weights times 16-bit inputs: over 2^53
    with pytest.raises(ValueError, match=r"hidden0: an intermediate .* >= 2\^53"):
        emulate(nets[0], numpy_inputs(random_inputs("spiking_mlp")))


def in_loop(seed: int = 0, bits: int = 8, **changes) -> WeightPerturbation:
    method = {**IN_LOOP, "hardware": {"bits": bits}, **changes}
    return WeightPerturbation(method, torch.Generator().manual_seed(seed))


def test_in_loop_losses_are_the_converted_networks_emulated():
    """Row 0 is θ's network; row n is θ + offset row n converted and emulated on its own."""
    model = random_model("spiking_deeponet", 2)
    inputs = random_inputs("spiking_deeponet")
    target = torch.randn(12, 15, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    params = dict(model.named_parameters())
    g = torch.Generator().manual_seed(1)
    offsets = [{name: 0.05 * torch.randn(3, *params[name].shape, generator=g, dtype=torch.float64)
                for name in ("branch.linears.0.weight", "trunk.readout.bias", "b0")},
               {"branch.readout.weight": 0.05 * torch.randn(2, *params["branch.readout.weight"].shape,
                                                            generator=g, dtype=torch.float64)}]
    hardware = InLoop({"bits": 8})
    losses = hardware.losses(model, inputs, target, offsets)

    def alone(m):
        output = emulate(convert(m, Affine(0.0, 1.0), 8), numpy_inputs(inputs))[0]
        return mse(torch.from_numpy(output), target)

    expected = [alone(model)]
    for block in offsets:
        for row in range(next(iter(block.values())).shape[0]):
            moved = copy.deepcopy(model)
            with torch.no_grad():
                for name, rows in block.items():
                    dict(moved.named_parameters())[name].add_(rows[row])
            expected.append(alone(moved))
    assert torch.equal(losses, torch.stack(expected))
    assert len(set(losses.tolist())) == len(losses)  # every perturbation changed the loss
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), random_model("spiking_deeponet", 2).parameters()))


def test_in_loop_estimate_is_deterministic_and_scaled_by_the_step():
    model, inputs = random_model("spiking_mlp"), random_inputs("spiking_mlp")
    target = torch.zeros(40, 3, dtype=torch.float64)
    grads = []
    for _ in range(2):
        estimate = in_loop(seed=3).estimate(model, inputs, target)
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
    loss = mse(torch.from_numpy(emulate(convert(model, Affine(0.0, 1.0), 8), numpy_inputs(inputs))[0]), target)
    assert estimate.loss == loss.item() and estimate.forward_passes == 2 * 2 + 1
    steps = InLoop({"bits": 8}).steps(model)
    top = 2 ** 7 - 1
    assert steps["linears.0.bias"] == steps["linears.0.weight"] == float(model.linears[0].weight.detach().abs().max()) / top
    other = in_loop(seed=4).estimate(model, inputs, target)
    assert other.loss == estimate.loss
    assert not torch.equal(grads[0][0], model.linears[0].weight.grad)


def train_in_loop(parabola, tmp_path, method: dict, estimator, steps: int, batch: int):
    """A 2 x 16 spiking MLP trained on u = x^2 in the loop at lr 0.1, checked to complete:
    the history's (emulated) losses and the float network's test errors."""
    method = {**SETTINGS["methods"]["bp"], **method}
    train = {**SETTINGS["train"], "steps": steps, "eval_every": steps // 3, "batch": batch, "lr": 0.1}
    status = run_training(parabola, SETTINGS["models"]["mlp"], method, train, seed=0, device="cpu",
                          outputs=outputs(tmp_path), estimator=estimator)
    assert status == "completed"
    history = io.read_dataset(outputs(tmp_path)["history"])
    return history["loss"].values, history["test_rel_l2_mean"].values


def test_in_loop_training_lowers_the_loss(parabola, tmp_path):
    method = {"estimator": "perturbation", "scope": "layer", "directions": 4, "epsilon": 4.0,
              "hardware": {"bits": 8}}
    loss, test = train_in_loop(parabola, tmp_path, method, WeightPerturbation, steps=150, batch=64)
    assert np.mean(loss[-20:]) < 0.1 * np.mean(loss[:20])  # the emulated loss
    assert test[-1] < 0.3  # the float network's, ~0.65 untrained


@pytest.mark.parametrize("hardware, epsilon, message", [
    ({"bits": 5}, 3.0, r"method.hardware.bits 5 not one of"),
    ({"bits": 8, "bit": 8}, 3.0, r"unknown key\(s\) \['bit'\]"),
    ({"input_bits": 8}, 3.0, "method.hardware.bits is required"),
    ({"bits": 8, "input_bits": 40}, 3.0, "method.hardware.input_bits 40"),
    ({"bits": 8, "synaptic_delay": 2}, 3.0, "method.hardware.synaptic_delay 2"),
    ({"bits": 8}, 0.5, "method.epsilon 0.5 is below one quantisation step"),
    (8, 3.0, "method.hardware must be a mapping"),
    ({"bits": 8, "epsilon_scale": "rms"}, 3.0, "method.epsilon_scale must be absent"),
])
def test_bad_hardware_settings_fail_naming_the_key(hardware, epsilon, message):
    method = {**IN_LOOP, "epsilon": epsilon, "hardware": hardware}
    if isinstance(hardware, dict) and "epsilon_scale" in hardware:
        method.update(epsilon_scale=hardware.pop("epsilon_scale"))
    with pytest.raises(ValueError, match=message):
        WeightPerturbation(method, torch.Generator())


def test_a_silent_layer_has_no_step_to_perturb_by():
    model, inputs = random_model("spiking_mlp"), random_inputs("spiking_mlp")
    with torch.no_grad():
        model.readout.weight.zero_()
    with pytest.raises(ValueError, match="layer 'readout' has all-zero weights"):
        in_loop().estimate(model, inputs, torch.zeros(40, 3, dtype=torch.float64))
