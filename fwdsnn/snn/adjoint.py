"""BPTT through the LIF layers and the LI readout without recording every step for autograd.

Through Norse's modules autograd records a dozen ops per neuron step and replays about twice
as many backwards, so a BPTT step is bound by per-op overhead. Here each layer is one autograd
node over all T steps:
- an LIF layer is `LIFAdjoint`: its forward is `neuron.lif_window` without recording, keeping
  only what the adjoint needs (the surrogate derivative and the factor through which dL/dv
  flows to the step before); its backward is the exact reverse-time recursion of `lif_step`
  (the reset's dependence on z included, as Norse does not detach it), two ops per step;
- the LI readout is linear and time-invariant: `neuron.li_window`'s matmuls over time (T^2
  per output, small beside the hidden layers), which autograd differentiates as they are.
`adjoint_layers(model)` swaps these in for the duration of a block, so the models' own forward
(linear layers, encoding, decode, operator combination) is unchanged. The values equal Norse's
steps up to the order of floating-point operations.
"""

from contextlib import contextmanager

import torch
from torch import Tensor, nn

from fwdsnn.snn.lif import LIFLayer, LILayer
from fwdsnn.snn.neuron import decay_factors, li_window, lif_window


class LIFAdjoint(torch.autograd.Function):
    """Spikes (T, B, F) of an LIF layer at rest driven by currents (T, B, F); d/dx by the adjoint.

    The forward is `neuron.lif_window` over all T steps; the backward runs its recursion in
    reverse time on the saved `LIFWindow`: dL/du_d(t) = D(t) dL/dz(t) + (1 - alpha) carry(t)
    dL/du_d(t + 1), then dL/di'(t) = alpha dL/du_d(t) + keep dL/di'(t + 1) = dL/dx(t).
    """

    @staticmethod
    def forward(ctx, x: Tensor, p, dt: float, surrogate) -> Tensor:
        spikes, _, window = lif_window(x, None, p, dt, surrogate)
        ctx.save_for_backward(window.carry, window.derivative)
        ctx.constants = decay_factors(p, dt)
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: Tensor):
        carry, derivative = ctx.saved_tensors
        alpha_mem, keep_syn = ctx.constants
        adjoint = grad_spikes * derivative  # dL/du_d, filled backwards in time
        steps, carries = adjoint.unbind(0), carry.unbind(0)
        for t in range(len(steps) - 2, -1, -1):
            steps[t].addcmul_(steps[t + 1], carries[t], value=1 - alpha_mem)
        adjoint.mul_(alpha_mem)  # dL/di' then follows the synaptic decay backwards
        for t in range(len(steps) - 2, -1, -1):
            steps[t].add_(steps[t + 1], alpha=keep_syn)
        return adjoint, None, None, None


def _lif_forward(layer: LIFLayer, x: Tensor) -> tuple[Tensor, None]:
    """LIFLayer's output without its final state (the models discard it)."""
    if layer.surrogate is None:
        raise ValueError("BPTT needs a spike surrogate; the LIF layer has none (bare_spikes?)")
    return LIFAdjoint.apply(x, layer.p, layer.dt, layer.surrogate), None


def _li_forward(layer: LILayer, x: Tensor) -> tuple[Tensor, None]:
    """LILayer's voltages (T, B, F) from rest by `neuron.li_window`: matmuls over time, which
    autograd differentiates as they are."""
    return li_window(x, None, layer.p, layer.dt)[0], None


@contextmanager
def adjoint_layers(model: nn.Module):
    """Within the block the model's LIF and LI layers run as `LIFAdjoint` / one matmul."""
    swapped = []
    for module in model.modules():
        if isinstance(module, (LIFLayer, LILayer)):
            fast = _lif_forward if isinstance(module, LIFLayer) else _li_forward
            module.forward = fast.__get__(module)
            swapped.append(module)
    try:
        yield model
    finally:
        for module in swapped:
            del module.forward
