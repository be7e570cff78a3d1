"""Node perturbation in the loop: the noise is an integer current that the emulator adds.

This is `fwdsnn.grad.node`'s estimate with every pass run by the integer emulator
(`emulator.run_rows`). The master weights are converted at the chip's bits (`emulated.InLoop`).
Each LIF layer's 2K noise rows join one batched pass at that layer: they copy row 0's Dense
output a_in and add, or subtract, an integer current per example, neuron and step. On the
chip this is a second input summed into the neurons' a_in, as Lava sums several. The
readout's decoded outputs give the central differences. No derivative is taken and no float
network runs: the sums read only row 0's spikes and the float value of its input message,
as in `node.NodePlan`.

Units (`fwdsnn.hardware.convert`): a float current I is 64 s a / alpha_m in units of a, with
s = v_th / (64 vth), so node's noise eps v_th u is the integer current sigma u with
sigma = eps alpha_m vth per layer. The chip adds integers, round(sigma u), so the estimate
uses round(sigma u) / sigma in place of u: what is summed is what the chip added, and its
variance is 1 + O(1 / sigma^2). A sigma below 1 would round most of the noise away and is
refused. The noise is added from step `synaptic_delay` on, where the Dense drives the neuron
(before that no weight has any effect), time-constant at a sub-network's first layer, whose
input is constant, and fresh every step elsewhere.

Exactness: the noise is one more term in a neuron's a_in. With |noise| <= N it raises the
current bound U of `emulator.exact_bound` by 64 N 4096 / (du + 1), and the bound by 4096 times
that; a pass whose bound would reach 2^53 is refused, as the emulator refuses weights.
"""

import torch
from torch import Tensor

from fwdsnn.grad.activity import LayerNoise, Perturbed, accumulate_noise
from fwdsnn.grad.emulated import InLoop
from fwdsnn.grad.readout import DecodeFilter, Traced
from fwdsnn.hardware.emulator import (DECAY_UNITY, EXACT_LIMIT, check_exact, exact_bound, quantise_input,
                                      run_rows, stack_rows)
from fwdsnn.hardware.format import ACT_SHIFT, Layer
from fwdsnn.snn.models import SpikingModel, model_class
from fwdsnn.snn.neuron import decode_window


def noise_scale(layer: Layer, epsilon: float) -> float:
    """sigma: the integer current of a unit of noise at LIF layer `layer` (module docstring)."""
    sigma = epsilon * layer.dv / DECAY_UNITY * layer.vth
    if sigma < 1:
        raise ValueError(f"method.epsilon {epsilon} gives {layer.name} a noise current of "
                         f"{sigma:.3g} integer units, below one: the chip's rounding would remove it")
    return sigma


def _delayed(spikes: Tensor, delay: int) -> Tensor:
    """What the next Dense multiplies at each step: the spikes (steps, B, n) `delay` steps late."""
    late = torch.zeros(spikes.shape, dtype=torch.float64)
    late[delay:] = spikes[:spikes.shape[0] - delay]
    return late


def subnet_pass(net, layers: list[Layer], feed, steps: int, decode: str, window: int, input_bits: int,
                delay: int, draw, directions: int, epsilon: float) -> Perturbed:
    """One sub-network's rows through the emulator: row 0, then per LIF layer K rows with +noise
    and K with -noise; `net` is its float twin, for the readout's decode weights only."""
    stack = [stack_rows([layer]) for layer in layers]
    check_exact(stack, 2 ** (input_bits - 1) - 1)
    message = quantise_input(feed, layers[0].input_scale, input_bits)
    hidden, k_rows = len(layers) - 1, directions
    sigmas = [noise_scale(layer, epsilon) for layer in layers[:hidden]]
    noises = []

    def inject(k: int, a: Tensor) -> Tensor:
        if k == hidden:
            return a
        like = a[0, 0] if k == 0 else a[0, delay:]  # (B, n), time-constant, or (steps - delay, B, n)
        current = torch.round(sigmas[k] * draw(like))
        _check_noise(stack[k], float(current.abs().max()), 1.0 if k else 2 ** (input_bits - 1) - 1)
        rows = a[:1].repeat(2 * k_rows, *([1] * (a.ndim - 1)))
        timed = current.unsqueeze(1) if k == 0 else current
        rows[:k_rows, delay:] += timed
        rows[k_rows:, delay:] -= timed
        noises.append(current / sigmas[k])
        return torch.cat([a, rows])

    traces = run_rows(stack, message[None, None], steps, delay, inject=inject)
    inputs = [message * layers[0].input_scale] + [_delayed(t["s"][0], delay) for t in traces[:hidden]]
    sums = [None] * hidden
    for k, (x, u) in enumerate(zip(inputs, noises)):
        if k:  # no noise before the delay: zeros there, so that the sums match the current
            u = torch.cat([u.new_zeros(u.shape[0], delay, *u.shape[2:]), u], dim=1)
        accumulate_noise(sums, k, x, u)
    first, _ = decode_window(steps, decode, window)
    readout = stack[-1]
    y = traces[-1]["v"][:, first:].mean(dim=1) * readout.state_scale[0]
    decoded = DecodeFilter(net)
    decoded.add(inputs[-1].to(y.dtype))
    differences = []
    for k, layer in enumerate(layers[:hidden]):
        start = 1 + 2 * k_rows * k
        scale = epsilon * 2 ** ACT_SHIFT * layer.vth * layer.state_scale  # eps v_th, float
        differences.append((y[start:start + k_rows] - y[start + k_rows:start + 2 * k_rows]) / (2 * scale))
    traced = Traced(y[0], torch.cat(differences), decoded.filtered, decoded.gain)
    return Perturbed(traced, [LayerNoise(slice(k * k_rows, (k + 1) * k_rows), *sums[k], k_rows)
                              for k in range(hidden)])


def _check_noise(rows, peak_noise: float, peak_input: float) -> None:
    """ValueError where a noise current this large could leave float64's integers (docstring)."""
    extra = 2 ** ACT_SHIFT * peak_noise * DECAY_UNITY / (DECAY_UNITY - rows.u_keep)
    if exact_bound(rows, peak_input) + DECAY_UNITY * extra >= EXACT_LIMIT:
        raise ValueError(f"{rows.name}: a noise current of {peak_noise:.3g} could take the integer "
                         "step beyond 2^53 (method.epsilon too large)")


def emulated_passes(in_loop: InLoop, model: SpikingModel, inputs: tuple, draw, directions: int,
                    epsilon: float) -> dict[str, Perturbed]:
    """Every sub-network's node-perturbation pass through the chip at in_loop's settings, cast
    to the model's dtype."""
    in_loop.check_cpu(model)
    chip = in_loop.convert(model)
    feeds = model_class(chip.kind).subnet_inputs(chip.subnets, inputs)
    dtype = next(model.parameters()).dtype
    runs = {}
    for name, net in model.subnets().items():
        run = subnet_pass(net, chip.subnets[name], feeds[name], chip.steps, chip.decode, chip.window,
                          chip.input_bits, chip.synaptic_delay, draw, directions, epsilon)
        runs[name] = Perturbed(Traced(*(t.to(dtype) if isinstance(t, Tensor) else t for t in run.traced)),
                               [LayerNoise(layer.rows, layer.weight.to(dtype), layer.bias.to(dtype),
                                           layer.divisor) for layer in run.layers])
    return runs
