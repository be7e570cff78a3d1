"""BPTT through the LIF layers and the LI readout without recording every step for autograd.

Through Norse's modules autograd records a dozen ops per neuron step and replays about twice
as many backwards, so a BPTT step is bound by per-op overhead. Here each layer is one autograd
node over all T steps:
- an LIF layer is `LIFAdjoint`: its forward steps the dynamics without recording, keeping only
  what the adjoint needs (the surrogate derivative and the factor through which dL/dv flows
  to the step before); its backward is the exact reverse-time recursion of `lif_step` (the
  reset's dependence on z included, as Norse does not detach it), two ops per step;
- the LI readout is linear and time-invariant: T steps are one (T, T) impulse-response matmul
  (T^2 per output, small beside the hidden layers), which autograd differentiates as it is.
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

    Per step, in the voltage above threshold u = v - v_th: i' = i + x;
    u_d = (1 - a_m) u + a_m (i' + v_leak - v_th); i = (1 - a_s) i'; z = H(u_d), with derivative
    D = surrogate(u_d); u = u_d + z (v_reset - v_th - u_d). Views are unbound once: the loops
    run on small tensors, where each indexing op costs as much as the arithmetic.
    """

    @staticmethod
    def forward(ctx, x: Tensor, p, dt: float, surrogate) -> Tensor:
        alpha_mem, keep_syn = float(dt * p.tau_mem_inv), float(1 - dt * p.tau_syn_inv)
        if x.stride(0) == 0:  # one current every step (the encoding): i'_t = x sum_k<=t keep^k
            gains = torch.ones(x.shape[0], dtype=torch.float64).mul_(keep_syn).cumprod(0)
            gains = gains.div_(keep_syn).cumsum(0).to(x).view(-1, *[1] * (x.ndim - 1))
            drive = torch.mul(gains, x[0])
        else:
            drive = torch.empty(x.shape, dtype=x.dtype, device=x.device)
            inputs, drives = x.unbind(0), drive.unbind(0)
            drives[0].copy_(inputs[0])
            for t in range(1, len(drives)):  # i' of every step
                torch.add(inputs[t], drives[t - 1], alpha=keep_syn, out=drives[t])
        offset = (alpha_mem * (p.v_leak - p.v_th)).to(drive)
        torch.add(offset, drive, alpha=alpha_mem, out=drive)
        above, spikes = torch.empty_like(drive), torch.empty_like(drive)  # u_d, z
        u = torch.full_like(drive[0], float(p.v_leak - p.v_th))
        reset = (p.v_reset - p.v_th).to(drive)
        for drive_t, above_t, spikes_t in zip(drive.unbind(0), above.unbind(0), spikes.unbind(0)):
            torch.add(drive_t, u, alpha=1 - alpha_mem, out=above_t)
            torch.gt(above_t, 0.0, out=spikes_t)
            torch.lerp(above_t, reset, spikes_t, out=u)
        if surrogate.random:  # the reference's draws, step by step in order
            derivative = torch.stack([surrogate.derivative(u_t) for u_t in above.unbind(0)])
        else:
            derivative = surrogate.derivative(above)
        # dL/du_d(t) gets (1 - a_m) dL/du_d(t+1) times (1 - z) + (v_reset - v_th - u_d) D;
        # written into the buffers of i' and u_d (fresh large tensors cost page faults)
        carry = torch.sub(spikes.new_ones(()), spikes, out=drive)
        carry.addcmul_(torch.sub(reset, above, out=above), derivative)
        ctx.save_for_backward(carry, derivative)
        ctx.constants = alpha_mem, keep_syn
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
