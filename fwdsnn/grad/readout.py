"""The exact gradient of the parameters after the last LIF layer, forward in time.

The readout Linear feeds the LI readout, and both are linear and time-invariant, so the decoded
output of a sub-network is y = W_out (sum_s c_s h_s) + b_out sum_s c_s + const, with h_s the
last hidden layer's spikes at step s and c_s the decode's weight of step s through the LI
impulse response. Given g = dL/dy (autograd through `combine` and the loss only: cheap, outside
the spiking network), dL/dW_out = g^T (sum_s c_s h_s) and dL/db_out = (sum_b g_b) sum_s c_s;
the model's own scalars (a DeepONet's b0) get theirs from the same autograd call. The filtered
spikes sum_s c_s h_s (B, width) are accumulated while the windows run, so nothing grows with T.
"""

from typing import NamedTuple

import torch
from torch import Tensor

from fwdsnn.grad.base import mse
from fwdsnn.grad.rows import WINDOW_STEPS, Blocks, block_rows, run_subnets, subnet_prefixes
from fwdsnn.grad.tangents import TangentPlan, combine_tangents
from fwdsnn.snn.models import SpikingModel
from fwdsnn.snn.neuron import decode_window, li_window

READOUTS = ("exact", "perturbed")


def readout_setting(method: dict, default: str) -> str:
    """The method's `readout` key (absent: the estimator's `default`), checked."""
    readout = method.get("readout", default)
    if readout not in READOUTS:
        raise ValueError(f"unknown readout {readout!r} (one of {READOUTS})")
    return readout


def readout_parameters(model: SpikingModel) -> list[str]:
    """Names of the parameters this module differentiates exactly: every sub-network's readout
    Linear and the model's scalars, in the model's parameter order."""
    prefixes = subnet_prefixes(model)
    names = {f"{prefixes[id(net)]}readout.{part}" for net in model.subnets().values()
             for part in ("weight", "bias")} | set(model.scalars())
    return [name for name, _ in model.named_parameters() if name in names]


def decode_weights(net) -> Tensor:
    """c_s (steps,) in float64: the decoded output per unit readout current at step s, i.e.
    (1 / count) sum over the decoded steps t >= s of the LI impulse response H[t, s]. The
    response comes from `li_window` itself, a window at a time."""
    steps, p, dt = net.steps, net.li.p, net.li.dt
    impulse = torch.zeros(steps, 1, 1, dtype=torch.float64, device=p.v_leak.device)
    impulse[0] = 1.0
    state, responses = None, []
    for chunk in impulse.split(WINDOW_STEPS):
        v, state = li_window(chunk, state, p, dt)
        responses.append(v.flatten() - p.v_leak)
    total = torch.cat(responses).cumsum(0)  # total[m] = H[0, 0] + ... + H[m, 0]
    first, count = decode_window(steps, net.decode, net.window)
    lag = first - 1 - torch.arange(steps, device=total.device)  # steps before the window
    before = torch.where(lag >= 0, total[lag.clamp(min=0)], 0.0)
    return (total.flip(0) - before) / count


class Traced(NamedTuple):
    """A sub-network's output (B, out), its tangent rows (or None), the filtered spikes
    sum_s c_s h_s (B, width) entering its readout, and gain = sum_s c_s."""

    output: Tensor
    tangent: Tensor | None
    filtered: Tensor
    gain: float


class DecodeFilter:
    """sum_s c_s h_s (B, width) of the readout Linear's input h, accumulated window by window
    (h: (n, B, width)), and gain = sum_s c_s. The tanh twin has no time: its output is the
    readout of its last hidden layer (c = 1)."""

    def __init__(self, net):
        self.weights = decode_weights(net) if net.spiking else None
        self.elapsed, self.filtered = 0, None

    def add(self, h: Tensor) -> None:
        if self.weights is None:
            self.filtered = h
            return
        n = h.shape[0]
        weights = self.weights[self.elapsed:self.elapsed + n].to(h)
        self.elapsed += n
        term = torch.tensordot(weights, h, dims=1)
        self.filtered = term if self.filtered is None else self.filtered.add_(term)

    @property
    def gain(self) -> float:
        return 1.0 if self.weights is None else self.weights.sum().item()


class TracedPlan(TangentPlan):
    """`TangentPlan` that also filters the readout Linear's input with the decode weights."""

    def __init__(self, net, prefix: str, blocks: Blocks, rows: list[int]):
        super().__init__(net, prefix, blocks, rows)
        self.decoded = DecodeFilter(net)

    def linear(self, k: int, value: tuple) -> tuple[Tensor, Tensor | None]:
        if k == len(self.linears) - 1:
            self.decoded.add(value[0])
        return super().linear(k, value)

    def finish(self, value: tuple) -> Traced:
        y, tangent = super().finish(value)
        return Traced(y, tangent, self.decoded.filtered, self.decoded.gain)


def output_gradients(model: SpikingModel, outputs: dict[str, Tensor], target: Tensor
                     ) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
    """(loss, dL/d(each sub-network's output), dL/d(each model scalar)) by autograd through
    `model.combine` and the loss only."""
    with torch.enable_grad():
        leaves = {name: y.detach().requires_grad_() for name, y in outputs.items()}
        scalars = {name: s.detach().requires_grad_() for name, s in model.scalars().items()}
        loss = mse(model.combine(leaves, scalars), target)
        grads = torch.autograd.grad(loss, [*leaves.values(), *scalars.values()])
    return (loss.detach(), dict(zip(leaves, grads[:len(leaves)])),
            dict(zip(scalars, grads[len(leaves):])))


def readout_gradients(model: SpikingModel, traced: dict[str, Traced],
                      output_grads: dict[str, Tensor], scalar_grads: dict[str, Tensor]
                      ) -> dict[str, Tensor]:
    """The exact gradient of every `readout_parameters` name."""
    prefixes = subnet_prefixes(model)
    grads = dict(scalar_grads)
    for name, net in model.subnets().items():
        g, run = output_grads[name], traced[name]
        prefix = f"{prefixes[id(net)]}readout."
        grads[prefix + "weight"] = g.T @ run.filtered
        grads[prefix + "bias"] = g.sum(0) * run.gain
    return grads


@torch.no_grad()
def propagate_traced(model: SpikingModel, inputs: tuple, blocks: Blocks, target: Tensor
                     ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """`tangents.propagate` of weight-tangent blocks, plus the exact readout gradients:
    (output, tangents (N, *output.shape), {readout parameter: gradient})."""
    rows = block_rows(model, blocks)
    traced = run_subnets(model, inputs, TracedPlan, blocks, rows)
    outputs = {name: run.output for name, run in traced.items()}
    output, tangents = combine_tangents(model, outputs, {name: run.tangent for name, run
                                                         in traced.items()}, blocks, rows)
    _, output_grads, scalar_grads = output_gradients(model, outputs, target)
    return output, tangents, readout_gradients(model, traced, output_grads, scalar_grads)
