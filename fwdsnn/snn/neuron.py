"""The only float definition of the study's neuron dynamics (LIF hidden layers, LI readout)
and of the readout decode, in Norse's functional style: a step maps (input, state) to
(output, state) for parameters `p` (Norse's `LIFParameters` / `LIParameters`) and dt.

Every pass over the network steps through here, so the passes cannot drift apart:
- `lif_step` / `li_step`: one step with autograd (the Norse modules' activations, BPTT through
  them, `torch.func.jvp` / vmap through `spike`), op for op Norse's `lif_feed_forward_step` /
  `li_feed_forward_step` (bit-identical);
- `lif_window` / `li_window`: a layer over a window of n steps at once (time at dim -3, any
  leading row dimensions), for the passes that are bound by per-op overhead: the synaptic
  current and the LI voltage are linear recursions, done as one (n, n) matmul over time or
  stepped in place for large rows (`leaky_scan`); only the threshold and reset of the LIF voltage are stepped, three ops a
  step. `lif_window` also returns what derivative passes need (`LIFWindow`): the adjoint of
  BPTT (`fwdsnn.snn.adjoint`) and the forward-mode tangents (`lif_tangent_window`,
  `li_tangent_window`, the same recursions on tangent rows);
- `integrate_` / `spike_`: a batch of rows stepped in place (weight perturbation's parameter
  sets, whose many rows make a step's buffers large already), over an `LIState` the pass owns;
- `decode_window` / `decode`: which readout steps make the output.
The window and in-place forms equal the steps up to the order of floating-point operations
(the in-place forms: to the last bit).
"""

from functools import lru_cache
from typing import NamedTuple

import torch
from torch import Tensor

from fwdsnn.snn.norse_api import LIFFeedForwardState, LIState
from fwdsnn.snn.spike import spike

DECODES = ("last", "mean")
_STEPPED_SCAN_ELEMENTS = 4096  # elements per step from which a scan steps instead of a matmul


def rest_state(state_type: type, like: Tensor, p):
    """The state at rest (v = v_leak, i = 0) in `like`'s dtype, device and shape."""
    zeros = torch.zeros_like(like)
    return state_type(v=zeros + p.v_leak, i=zeros)


def li_step(input_current: Tensor, state: LIState, p, dt: float) -> tuple[Tensor, LIState]:
    """Norse's `li_feed_forward_step` op for op: synaptic jump, Euler update of v and i."""
    i_jump = state.i + input_current
    dv = dt * p.tau_mem_inv * ((p.v_leak - state.v) + i_jump)
    v_new = state.v + dv
    di = -dt * p.tau_syn_inv * i_jump
    i_decayed = i_jump + di
    return v_new, LIState(v_new, i_decayed)


def lif_step(input_current: Tensor, state: LIFFeedForwardState, p, dt: float,
             surrogate) -> tuple[Tensor, LIFFeedForwardState]:
    """Norse's `lif_feed_forward_step` op for op (bit-identical output) with `spike(.,
    surrogate)` as the threshold. As in Norse, z is not detached in the reset."""
    v_decayed, integrated = li_step(input_current, state, p, dt)
    z_new = spike(v_decayed - p.v_th, surrogate)
    v_new = (1 - z_new) * v_decayed + z_new * p.v_reset
    return z_new, LIFFeedForwardState(v=v_new, i=integrated.i)


def decode_window(steps: int, decode: str, window: int) -> tuple[int, int]:
    """(first step, number of steps) of the readout voltage the decode averages."""
    if decode not in DECODES:
        raise ValueError(f"unknown decode '{decode}' (one of {DECODES})")
    count = 1 if decode == "last" else window
    return steps - count, count


def decode(voltages: Tensor, decode: str, window: int) -> Tensor:
    """The output from readout voltages (T, ...): the last step, or the mean of the last window."""
    return voltages[-1] if decode == "last" else voltages[-window:].mean(0)


def decay_factors(p, dt: float) -> tuple[float, float]:
    """(alpha_mem, keep_syn) = (dt tau_mem^-1, 1 - dt tau_syn^-1): the voltage's step towards
    its drive and the synaptic current's decay per step, formed as the steps form them."""
    return float(dt * p.tau_mem_inv), float(1 - dt * p.tau_syn_inv)


def _lower_toeplitz(response: Tensor) -> Tensor:
    """(n, n) matrix M[t, s] = response[t - s] for s <= t, else 0: a causal, time-invariant
    linear map over n steps from its impulse response."""
    lag = torch.arange(len(response)).unsqueeze(1) - torch.arange(len(response))
    return torch.where(lag >= 0, response[lag.clamp(min=0)], 0.0)


@lru_cache(maxsize=64)
def _decay_kernel(steps: int, decay: float, dtype: torch.dtype, device: torch.device
                  ) -> tuple[Tensor, Tensor, Tensor]:
    """(L, powers, gains), formed in float64: L[t, s] = decay^(t - s) for s <= t (else 0),
    powers[t] = decay^t, gains[t] = sum of powers up to t; powers and gains as (steps, 1, 1)."""
    powers = torch.full((steps,), decay, dtype=torch.float64).cumprod(0) / decay
    kernel = _lower_toeplitz(powers)
    columns = powers.view(steps, 1, 1)
    return tuple(t.to(dtype=dtype, device=device) for t in (kernel, columns, columns.cumsum(0)))


def leaky_scan(x: Tensor, carried: Tensor | None, decay: float, overwrite: bool = False
                ) -> Tensor:
    """y_t = x_t + decay y_(t-1) over time (dim -3) with decay y_(-1) = `carried` (None: 0).
    An input constant in time (stride 0, the encoding's current) is a broadcast product with
    the cumulative gains; small rows and autograd (the LI readout in BPTT) take one matmul
    over time, where per-op overhead dominates; large rows step the recursion in place, where
    the matmul's n-fold arithmetic would dominate (in x itself when `overwrite`)."""
    steps = x.shape[-3]
    kernel, powers, gains = _decay_kernel(steps, decay, x.dtype, x.device)
    if x.stride(-3) == 0:
        y = gains * x[..., :1, :, :]
    elif (torch.is_grad_enabled() and x.requires_grad
          or x[..., 0, :, :].numel() < _STEPPED_SCAN_ELEMENTS):
        y = torch.matmul(kernel, x.flatten(-2)).view(x.shape)
    else:
        y = x if overwrite and x.is_contiguous() else x.clone(memory_format=torch.contiguous_format)
        rows = y.unbind(-3)
        if carried is not None:
            rows[0].add_(carried)
        for t in range(1, steps):
            rows[t].add_(rows[t - 1], alpha=decay)
        return y
    return y if carried is None else y.addcmul_(powers, carried.unsqueeze(-3))


def li_window(x: Tensor, state: LIState | None, p, dt: float) -> tuple[Tensor, LIState]:
    """`li_step` over the n steps of currents x (..., n, B, F) from `state` (None: at rest):
    (voltages, state after)."""
    return _li_affine(x, state, p, dt, p.v_leak)


def li_tangent_window(dx: Tensor, state: LIState, p, dt: float) -> tuple[Tensor, LIState]:
    """Tangent rows of `li_window` (it is affine in (x, state)): (dv, tangent state)."""
    return _li_affine(dx, state, p, dt, 0.0)


@lru_cache(maxsize=64)
def _li_kernels(steps: int, alpha: float, keep: float, dtype: torch.dtype, device: torch.device
                ) -> tuple[Tensor, Tensor, Tensor]:
    """The LI step's linear maps over a window, formed in float64: (H, memory, synapse) with
    H[t, s] the voltage at step t per unit current at step s, memory[t] = (1 - alpha)^(t + 1)
    (what is left of the initial voltage) and synapse[s] = keep^(n - s) (the current left at
    the end per unit current at step s)."""
    response, i, v = [], 0.0, 0.0
    for t in range(steps):
        i += 1.0 if t == 0 else 0.0
        v += alpha * (i - v)
        i -= (1 - keep) * i
        response.append(v)
    kernel = _lower_toeplitz(torch.tensor(response, dtype=torch.float64))
    memory = torch.full((steps,), 1 - alpha, dtype=torch.float64).cumprod(0).view(steps, 1, 1)
    synapse = torch.full((steps,), keep, dtype=torch.float64).cumprod(0).flip(0)
    return tuple(t.to(dtype=dtype, device=device) for t in (kernel, memory, synapse))


def _li_affine(x: Tensor, state: LIState | None, p, dt: float, leak) -> tuple[Tensor, LIState]:
    """v_t = leak + sum_s H[t, s] x_s, plus (from a state) memory[t] (v_0 - leak) + H[t, 0] i_0;
    the current after: sum_s synapse[s] x_s + keep^n i_0."""
    alpha, keep = decay_factors(p, dt)
    kernel, memory, synapse = _li_kernels(x.shape[-3], alpha, keep, x.dtype, x.device)
    v = torch.matmul(kernel, x.flatten(-2)).view(x.shape) + leak
    i = torch.matmul(synapse, x.flatten(-2)).view(*x.shape[:-3], *x.shape[-2:])
    if state is not None:
        v.addcmul_(memory, (state.v - leak).unsqueeze(-3))
        v.addcmul_(kernel[:, :1].unsqueeze(-1), state.i.unsqueeze(-3))
        i = i.add(state.i, alpha=keep ** x.shape[-3])
    return v, LIState(v=v[..., -1, :, :], i=i)


class LIFWindow(NamedTuple):
    """What derivative passes need of an LIF window, per step: the surrogate derivative D at
    u_d (the decayed voltage minus threshold, where the spike is taken) and `carry`, the
    factor d u_t / d u_d(t) = (1 - z) + D (v_reset - v_th - u_d) through the reset."""

    derivative: Tensor
    carry: Tensor


def lif_window(x: Tensor, state: LIFFeedForwardState | None, p, dt: float, surrogate,
               overwrite: bool = False) -> tuple[Tensor, LIFFeedForwardState, LIFWindow | None]:
    """`lif_step` over the n steps of currents x (..., n, B, F) from `state` (None: at rest):
    (spikes, state after, and the `LIFWindow` when a surrogate is given). In the voltage above
    threshold u = v - v_th: u_d(t) = (1 - alpha) u(t-1) + alpha (i'_t + v_leak - v_th),
    z = H(u_d), u(t) = u_d + z (v_reset - v_th - u_d). `overwrite`: x is a buffer the caller
    gives up, used as scratch."""
    alpha, keep = decay_factors(p, dt)
    current = leaky_scan(x, None if state is None else state.i, keep, overwrite)
    i = keep * current[..., -1, :, :]
    drive = torch.add(alpha * (p.v_leak - p.v_th), current, alpha=alpha, out=current)
    above, spikes = torch.empty_like(drive), torch.empty_like(drive)
    u = (torch.full_like(drive[..., 0, :, :], float(p.v_leak - p.v_th)) if state is None
         else state.v - p.v_th)
    reset = (p.v_reset - p.v_th).to(drive)
    for drive_t, above_t, spikes_t in zip(drive.unbind(-3), above.unbind(-3), spikes.unbind(-3)):
        torch.add(drive_t, u, alpha=1 - alpha, out=above_t)
        torch.gt(above_t, 0.0, out=spikes_t)
        torch.lerp(above_t, reset, spikes_t, out=u)
    state = LIFFeedForwardState(v=u + p.v_th, i=i)
    if surrogate is None:
        return spikes, state, None
    if surrogate.random:  # draws step by step in order, as the Norse modules' BPTT does
        derivative = torch.stack([surrogate.derivative(a) for a in above.unbind(-3)], -3)
    else:
        derivative = surrogate.derivative(above)
    # carry, written into the drive's buffer (fresh large tensors cost page faults)
    carry = torch.sub(spikes.new_ones(()), spikes, out=drive)
    carry.addcmul_(torch.sub(reset, above, out=above), derivative)
    return spikes, state, LIFWindow(derivative, carry)


def lif_tangent_window(dx: Tensor, state: LIFFeedForwardState, window: LIFWindow, p, dt: float,
                       overwrite: bool = False) -> tuple[Tensor, LIFFeedForwardState]:
    """Tangent rows (R, n, B, F) of `lif_window`'s spikes for current tangents dx, from the
    tangent state (dv, di): du_d(t) = alpha di'_t + (1 - alpha) carry(t-1) du_d(t-1),
    dz = D du_d. ONE surrogate derivative per step is shared by all rows (for Stein: the jvp
    with that noise held fixed). `overwrite` as for `lif_window`."""
    alpha, keep = decay_factors(p, dt)
    drive = leaky_scan(dx, state.i, keep, overwrite)
    i = keep * drive[..., -1, :, :]
    drive.mul_(alpha)  # now du_d, filled forwards in time
    steps, carries = drive.unbind(-3), window.carry.unbind(-3)
    steps[0].add_(state.v, alpha=1 - alpha)
    for t in range(1, len(steps)):
        steps[t].addcmul_(steps[t - 1], carries[t - 1], value=1 - alpha)
    v = steps[-1] * carries[-1]
    return drive.mul_(window.derivative), LIFFeedForwardState(v=v, i=i)


class Factors(NamedTuple):
    """The constant factors of a step, formed once per pass: the same 0-d products dt * tau^-1
    the step forms (so values stay bit-identical), and what the row steps derive from them."""

    alpha_mem: Tensor
    minus_alpha_syn: Tensor
    keep_syn: Tensor
    lerp_weight: float
    one: Tensor
    leak_zero: bool
    reset_to_zero: bool


def step_factors(p, dt: float, like: Tensor) -> Factors:
    """`Factors` of parameters p at dt, for states of `like`'s dtype and device."""
    alpha_mem = dt * p.tau_mem_inv
    minus_alpha_syn = -dt * p.tau_syn_inv
    return Factors(alpha_mem=alpha_mem, minus_alpha_syn=minus_alpha_syn,
                   keep_syn=1.0 + minus_alpha_syn, lerp_weight=float(alpha_mem),
                   one=torch.ones((), dtype=like.dtype, device=like.device),
                   leak_zero=bool(p.v_leak == 0),
                   reset_to_zero=bool(getattr(p, "v_reset", 0) == 0))  # LI readouts have none


def integrate_(current: Tensor, state: LIState, p, f: Factors, scratch: Tensor) -> Tensor:
    """`li_step` in place on a batch of rows (callers run under `torch.no_grad()`), for passes
    whose step time is dominated by allocating the step's temporaries, not by its arithmetic:
    i += x; v += alpha_mem ((v_leak - v) + i); i += -alpha_syn i. Returns v (the live state).
    Same operations and roundings as `li_step`; `scratch` is a buffer shaped like the state."""
    i, v = state.i, state.v
    i.add_(current)
    if f.leak_zero:  # (0 - v) + i == i - v exactly
        torch.sub(i, v, out=scratch)
    else:
        torch.sub(p.v_leak, v, out=scratch)
        scratch.add_(i)
    scratch.mul_(f.alpha_mem)
    v.add_(scratch)
    torch.mul(i, f.minus_alpha_syn, out=scratch)
    i.add_(scratch)
    return v


def spike_(state: LIState, p, f: Factors, out: Tensor, scratch: Tensor) -> Tensor:
    """`lif_step`'s spike and reset in place: z into `out` (the state's dtype), then
    v = (1 - z) v + z v_reset. Exact rewrites: H(v - v_th) is v > v_th (with gradual underflow
    v - v_th > 0 exactly when v > v_th), and at v_reset = 0 the term z v_reset = +0 is dropped.
    Spikes are compared straight into floats: bool masks are several times slower on CPU."""
    torch.gt(state.v, p.v_th, out=out)
    torch.sub(f.one, out, out=scratch)
    state.v.mul_(scratch)
    if not f.reset_to_zero:
        torch.mul(out, p.v_reset, out=scratch)
        state.v.add_(scratch)
    return out
