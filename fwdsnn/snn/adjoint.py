"""BPTT through the LIF layers and the LI readout without recording every step for autograd.

Norse's modules make autograd record ~13 ops per neuron step and replay ~25 in the backward
pass, so a BPTT step is bound by per-op overhead. Here each layer is one autograd node over
all T steps:
- an LIF layer is `LIFAdjoint`: its forward steps the dynamics under no_grad, keeping only the
  decayed voltages, the spikes and the surrogate derivatives; its backward is the exact
  reverse-time recursion of `lif_step` (the reset's dependence on z included, as Norse does
  not detach it), two ops per step;
- the LI readout is linear and time-invariant: T steps are one (T, T) impulse-response matmul,
  which autograd differentiates as it is.
`adjoint_layers(model)` swaps these in for the duration of a block, so the models' own forward
(linear layers, encoding, decode, operator combination) is unchanged. The values equal Norse's
steps up to the order of floating-point operations.
"""

from contextlib import contextmanager
from functools import lru_cache

import torch
from torch import Tensor, nn

from fwdsnn.snn.lif import LIFLayer, LILayer


class LIFAdjoint(torch.autograd.Function):
    """Spikes (T, B, F) of an LIF layer at rest driven by currents (T, B, F); d/dx by the adjoint.

    Per step: i' = i + x; v_d = (1 - a_m) v + a_m (v_leak + i'); i = (1 - a_s) i';
    z = H(v_d - v_th) with derivative D = surrogate(v_d - v_th); v = v_d + z (v_reset - v_d).
    """

    @staticmethod
    def forward(ctx, x: Tensor, p, dt: float, surrogate) -> Tensor:
        alpha_mem, keep_syn = float(dt * p.tau_mem_inv), float(1 - dt * p.tau_syn_inv)
        steps = x.shape[0]
        drive = torch.empty(x.shape, dtype=x.dtype, device=x.device)  # i' of every step
        drive[0].copy_(x[0])
        for t in range(1, steps):
            torch.add(x[t], drive[t - 1], alpha=keep_syn, out=drive[t])
        drive.add_(p.v_leak).mul_(alpha_mem)
        decayed, spikes = torch.empty_like(drive), torch.empty_like(drive)
        v = torch.full_like(drive[0], float(p.v_leak))
        v_reset = p.v_reset.to(drive)
        for t in range(steps):
            torch.add(drive[t], v, alpha=1 - alpha_mem, out=decayed[t])
            torch.gt(decayed[t], p.v_th, out=spikes[t])
            torch.lerp(decayed[t], v_reset, spikes[t], out=v)
        u = decayed.sub_(p.v_th)
        if surrogate.random:  # the reference's draws, step by step in order
            derivative = torch.stack([surrogate.derivative(u[t]) for t in range(steps)])
        else:
            derivative = surrogate.derivative(u)
        # v_reset - v_d = (v_reset - v_th) - u; the factor of a_{t+1} in the adjoint of v_d
        carry = ((1 - spikes) + ((v_reset - p.v_th) - u) * derivative).mul_(1 - alpha_mem)
        ctx.save_for_backward(carry, derivative)
        ctx.constants = alpha_mem, keep_syn
        return spikes

    @staticmethod
    def backward(ctx, grad_spikes: Tensor):
        carry, derivative = ctx.saved_tensors
        alpha_mem, keep_syn = ctx.constants
        steps = carry.shape[0]
        adjoint = grad_spikes * derivative  # dL/dv_d, filled backwards in time
        for t in range(steps - 2, -1, -1):
            adjoint[t].addcmul_(adjoint[t + 1], carry[t])
        adjoint.mul_(alpha_mem)  # dL/di' then follows the synaptic decay backwards
        for t in range(steps - 2, -1, -1):
            adjoint[t].add_(adjoint[t + 1], alpha=keep_syn)
        return adjoint, None, None, None


@lru_cache(maxsize=64)
def _impulse_response(steps: int, alpha_mem: float, alpha_syn: float) -> Tensor:
    """(T, T) lower-triangular matrix: LI voltage at step s per unit current at step j."""
    response, i, v = [], 0.0, 0.0
    for s in range(steps):
        i += 1.0 if s == 0 else 0.0
        v += alpha_mem * (i - v)
        i -= alpha_syn * i
        response.append(v)
    h = torch.tensor(response, dtype=torch.float64)
    lag = torch.arange(steps).unsqueeze(1) - torch.arange(steps)
    return torch.where(lag >= 0, h[lag.clamp(min=0)], 0.0)


def _lif_forward(layer: LIFLayer, x: Tensor) -> tuple[Tensor, None]:
    """LIFLayer's output without its final state (the models discard it)."""
    if layer.surrogate is None:
        raise ValueError("BPTT needs a spike surrogate; the LIF layer has none (bare_spikes?)")
    return LIFAdjoint.apply(x, layer.p, layer.dt, layer.surrogate), None


def _li_forward(layer: LILayer, x: Tensor) -> tuple[Tensor, None]:
    """LILayer's voltages (T, B, F) from rest as one matmul over time."""
    p = layer.p
    kernel = _impulse_response(x.shape[0], float(layer.dt * p.tau_mem_inv),
                               float(layer.dt * p.tau_syn_inv)).to(x)
    return torch.tensordot(kernel, x, dims=1) + p.v_leak.to(x), None


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
