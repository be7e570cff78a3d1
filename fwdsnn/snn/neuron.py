"""The only float definition of the study's neuron dynamics (LIF hidden layers, LI readout)
and of the readout decode, in Norse's functional style: a step maps (input, state) to
(output, state) for parameters `p` (Norse's `LIFParameters` / `LIParameters`) and dt.

Every pass over the network steps through here, so the passes cannot drift apart:
- `lif_step` / `li_step`: the autograd primal (BPTT; `torch.func.jvp` / vmap through `spike`),
  op for op Norse's `lif_feed_forward_step` / `li_feed_forward_step` (bit-identical);
- `lif_tangent_step` / `li_tangent_step`: the primal and N tangent rows of one layer
  (forward-mode tangents), over a `TangentState`;
- `integrate_` / `spike_`: a batch of rows stepped in place (weight perturbation's parameter
  sets), over an `LIState` the pass owns;
- `decode_window` / `decode`: which readout steps make the output.
The row variants take their constants as `Factors`, formed once per pass; their primal values
equal `lif_step` / `li_step` to the last bit.
"""

from typing import NamedTuple

import torch
from norse.torch.functional.leaky_integrator import LIState
from norse.torch.functional.lif import LIFFeedForwardState
from torch import Tensor

from fwdsnn.snn.spike import heaviside, spike

DECODES = ("last", "mean")


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


class TangentState(NamedTuple):
    """A layer's state (v, i) and its live tangent rows (dv, di), N rows leading (None: none)."""

    v: Tensor
    i: Tensor
    dv: Tensor | None
    di: Tensor | None


def tangent_rest(like: Tensor, p, live: int) -> TangentState:
    """The rest state shaped like `like`, with `live` zero tangent rows."""
    v, i = rest_state(LIState, like, p)
    rows = like.new_zeros(live, *like.shape) if live else None
    return TangentState(v, i, rows, None if rows is None else torch.zeros_like(rows))


def _integrate_tangent(current: Tensor, dcurrent: Tensor | None, s: TangentState, p,
                       f: Factors) -> tuple[Tensor, TangentState]:
    """`li_step` with the factors formed once, and its tangent rows: (v, new state)."""
    i_new = s.i + current
    v_decayed = s.v + f.alpha_mem * ((p.v_leak - s.v) + i_new)
    i_decayed = i_new + f.minus_alpha_syn * i_new
    if s.dv is None:
        return v_decayed, TangentState(v_decayed, i_decayed, None, None)
    di_new = s.di + dcurrent
    return v_decayed, TangentState(v_decayed, i_decayed, torch.lerp(s.dv, di_new, f.lerp_weight),
                                   di_new * f.keep_syn)


def li_tangent_step(current: Tensor, dcurrent: Tensor | None, state: TangentState, p,
                    f: Factors) -> tuple[tuple[Tensor, Tensor | None], TangentState]:
    """`li_step` and its tangents: ((v, dv), state)."""
    v, state = _integrate_tangent(current, dcurrent, state, p, f)
    return (v, state.dv), state


def lif_tangent_step(current: Tensor, dcurrent: Tensor | None, state: TangentState, p,
                     f: Factors, surrogate) -> tuple[tuple[Tensor, Tensor | None], TangentState]:
    """`lif_step` and its tangents: ((z, dz), state). A spike's tangent is D(u) dv with ONE
    surrogate derivative per step shared by all rows (for Stein: the jvp with that noise
    held fixed)."""
    v_decayed, s = _integrate_tangent(current, dcurrent, state, p, f)
    u = v_decayed - p.v_th
    z = heaviside(u)
    not_z = 1 - z
    v = not_z * v_decayed + z * p.v_reset
    if s.dv is None:
        return (z, None), s._replace(v=v)
    derivative = surrogate.derivative(u)  # one draw, shared by all tangent rows
    # v = (1 - z) v_decayed + z v_reset  =>  dv = (1 - z) dv_decayed + dz (v_reset - v_decayed)
    dv = s.dv * (not_z + derivative * (p.v_reset - v_decayed))
    return (z, derivative * s.dv), s._replace(v=v, dv=dv)


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
