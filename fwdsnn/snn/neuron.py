"""The only float definition of the study's neuron dynamics (LIF hidden layers, LI readout)
and of the readout decode, in Norse's functional style: a step maps (input, state) to
(output, state) for parameters `p` (Norse's `LIFParameters` / `LIParameters`) and dt.

Every pass over the network steps through here, so the passes cannot drift apart:
- `lif_step` / `li_step`: the autograd primal (BPTT; `torch.func.jvp` / vmap through `spike`),
  op for op Norse's `lif_feed_forward_step` / `li_feed_forward_step` (bit-identical);
- `TangentRows`: the primal and N tangent rows of one layer (forward-mode tangents);
- `InPlaceRows`: a batch of rows stepped in place (weight perturbation's parameter sets);
- `decode_window` / `decode`: which readout steps make the output.
The row variants keep their state as attributes (the state of a time-major pass is only the
current step's); their primal values equal `lif_step` / `li_step` to the last bit.
"""

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


class TangentRows:
    """The state (v, i) of one LIF or LI layer and its live tangent rows (dv, di), N rows
    leading. The primal is `lif_step` / `li_step` with the 0-d factors dt * tau^-1 formed once;
    a spike's tangent is `surrogate.derivative(u) * dv`, ONE derivative per step shared by all
    rows (for Stein: the jvp with that noise held fixed)."""

    def __init__(self, layer, like: Tensor, live: int):
        p, dt = layer.p, layer.dt
        self.v, self.i = rest_state(LIState, like, p)
        self.p, self.surrogate = p, getattr(layer, "surrogate", None)
        self.alpha_mem = dt * p.tau_mem_inv
        self.lerp_weight = float(self.alpha_mem)
        self.minus_alpha_syn = -dt * p.tau_syn_inv
        self.keep_syn = 1.0 + self.minus_alpha_syn
        self.dv = self.di = None
        if live:
            self.dv = like.new_zeros(live, *like.shape)
            self.di = like.new_zeros(live, *like.shape)

    def _integrate(self, current: Tensor, dcurrent: Tensor | None) -> Tensor:
        """Synaptic jump and the voltage/current Euler update (common to LIF and LI)."""
        p = self.p
        i_new = self.i + current
        v_decayed = self.v + self.alpha_mem * ((p.v_leak - self.v) + i_new)
        self.i = i_new + self.minus_alpha_syn * i_new
        self.v = v_decayed
        if self.dv is not None:
            di_new = self.di + dcurrent
            self.dv = torch.lerp(self.dv, di_new, self.lerp_weight)
            self.di = di_new * self.keep_syn
        return v_decayed

    def li_step(self, current: Tensor, dcurrent: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """`li_step`: the readout voltage and its tangents."""
        return self._integrate(current, dcurrent), self.dv

    def lif_step(self, current: Tensor, dcurrent: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """`lif_step`: spikes and their tangents D(u) * dv, then the reset."""
        p = self.p
        v_decayed = self._integrate(current, dcurrent)
        u = v_decayed - p.v_th
        z = heaviside(u)
        not_z = 1 - z
        self.v = not_z * v_decayed + z * p.v_reset
        if self.dv is None:
            return z, None
        derivative = self.surrogate.derivative(u)  # one draw, shared by all tangent rows
        dz = derivative * self.dv
        # v = (1 - z) v_decayed + z v_reset  =>  dv = (1 - z) dv_decayed + dz (v_reset - v_decayed)
        self.dv = self.dv * (not_z + derivative * (p.v_reset - v_decayed))
        return z, dz


class InPlaceRows:
    """The state (v, i) of an LIF or LI layer over a batch of rows, stepped in place (callers
    run under `torch.no_grad()`): for passes whose step time is dominated by allocating the ~13
    temporaries of `lif_step`, not by its arithmetic.

    Values equal `lif_step` and `li_step` operation for operation (same roundings, same order),
    with two exact rewrites: the spike H(v - v_th) is v > v_th (with gradual underflow
    v - v_th > 0 exactly when v > v_th), and at v_reset = 0 the reset drops the term
    z * v_reset = +0. Spikes are compared straight into floats: bool masks are several times
    slower on CPU (masked_fill_ 35x).
    """

    def __init__(self, layer, shape: tuple, like: Tensor):
        p = layer.p
        self.p = p
        self.v, self.i = rest_state(LIState, like.new_zeros(shape), p)
        self._scratch = torch.empty_like(self.i)
        self._leak_zero = bool(p.v_leak == 0)
        self._one = torch.ones((), dtype=like.dtype, device=like.device)
        self._reset_to_zero = bool(getattr(p, "v_reset", 0) == 0)  # LI readouts have none
        self.alpha_mem = layer.dt * p.tau_mem_inv  # the 0-d factors the step forms first
        self.minus_alpha_syn = -layer.dt * p.tau_syn_inv

    def integrate(self, current: Tensor) -> Tensor:
        """i += x; v += alpha_mem ((v_leak - v) + i); i += -alpha_syn i. Returns v (live state)."""
        i, v, scratch = self.i, self.v, self._scratch
        i.add_(current)
        if self._leak_zero:  # (0 - v) + i == i - v exactly
            torch.sub(i, v, out=scratch)
        else:
            torch.sub(self.p.v_leak, v, out=scratch)
            scratch.add_(i)
        scratch.mul_(self.alpha_mem)
        v.add_(scratch)
        torch.mul(i, self.minus_alpha_syn, out=scratch)
        i.add_(scratch)
        return v

    def spike(self, out: Tensor) -> Tensor:
        """Spikes z into `out` (the state's dtype), then v = (1 - z) v + z v_reset."""
        torch.gt(self.v, self.p.v_th, out=out)
        torch.sub(self._one, out, out=self._scratch)
        self.v.mul_(self._scratch)
        if not self._reset_to_zero:
            torch.mul(out, self.p.v_reset, out=self._scratch)
            self.v.add_(self._scratch)
        return out
