"""LIF neurons and the LI readout as Norse modules, with fwdsnn's spike in the LIF step.

Norse's `SNN` base class loops over time calling `self.activation(x_t, state, p, dt)`; the
layers here subclass Norse's `LIF` / `LI` and change only what must differ:
- the LIF activation is `lif_step` (Norse's feed-forward step with `spike` as threshold), so
  the dynamics stay Norse's while forward-mode AD and vmap work;
- the initial state is built here: Norse's is float32 whatever the input dtype and sets
  `requires_grad=True` on v, which makes autograd record the whole run of any pass outside
  `torch.no_grad()` (forward-mode and perturbation passes included) and mixes dtypes in
  float64 models;
- the neuron constants (0-d tensors in `p`, not parameters) follow `.to()` / `.double()`.
"""

from contextlib import contextmanager

import torch
from norse.torch import LI, LIF
from norse.torch.functional.leaky_integrator import LIState
from norse.torch.functional.lif import LIFFeedForwardState, LIFParameters
from torch import Tensor

from fwdsnn.snn.spike import spike


def lif_step(input_current: Tensor, state: LIFFeedForwardState, p: LIFParameters, dt: float,
             surrogate) -> tuple[Tensor, LIFFeedForwardState]:
    """One Euler step of Norse's `lif_feed_forward_step`, op for op (bit-identical output),
    with `spike(., surrogate)` as the threshold. As in Norse, z is not detached in the reset."""
    i_new = state.i + input_current
    dv = dt * p.tau_mem_inv * ((p.v_leak - state.v) + i_new)
    v_decayed = state.v + dv
    di = -dt * p.tau_syn_inv * i_new
    i_decayed = i_new + di
    z_new = spike(v_decayed - p.v_th, surrogate)
    v_new = (1 - z_new) * v_decayed + z_new * p.v_reset
    return z_new, LIFFeedForwardState(v=v_new, i=i_decayed)



class SteppedInPlace:
    """The state (v, i) of an LIF or LI layer over a whole batch, stepped in place (callers run
    under `torch.no_grad()`): for passes whose step time is dominated by allocating the ~13
    temporaries of `lif_step`, not by its arithmetic.

    Values equal `lif_step` and Norse's `li_feed_forward_step` operation for operation (same
    roundings, same order), with two exact rewrites: the spike H(v - v_th) is v > v_th (with
    gradual underflow v - v_th > 0 exactly when v > v_th), and at v_reset = 0 the reset drops
    the term z * v_reset = +0. Spikes are compared straight into floats: bool masks are several
    times slower on CPU (masked_fill_ 35x).
    """

    def __init__(self, layer, shape: tuple, like: Tensor):
        p = layer.p
        self.p = p
        self.i = like.new_zeros(shape)
        self.v = self.i + p.v_leak  # `_AtRest.initial_state`
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


class _AtRest:
    """Mixin for Norse time-major layers: rest state in the input's dtype, p follows .to()."""

    state_type: type

    def initial_state(self, input_tensor: Tensor):
        zeros = torch.zeros_like(input_tensor[0])
        return self.state_type(v=zeros + self.p.v_leak, i=zeros)

    def _apply(self, fn, recurse=True):
        self.p = type(self.p)(*(fn(x) if isinstance(x, Tensor) else x for x in self.p))
        return super()._apply(fn, recurse)


class LIFLayer(_AtRest, LIF):
    """Norse `LIF` (input (T, B, F) currents -> spikes (T, B, F), final state) whose spike
    derivative is `self.surrogate` (None: the bare step, for derivative-free passes)."""

    state_type = LIFFeedForwardState

    def __init__(self, p: LIFParameters, surrogate, dt: float = 1e-3):
        super().__init__(p, dt=dt)
        self.surrogate = surrogate
        self.activation = self._step
        self.activation_sparse = None

    def _step(self, input_current, state, p, dt):
        return lif_step(input_current, state, p, dt, self.surrogate)


class LILayer(_AtRest, LI):
    """Norse `LI` readout (its own `li_feed_forward_step`): (T, B, F) currents -> voltages."""

    state_type = LIState


@contextmanager
def bare_spikes(model: torch.nn.Module):
    """Within the block every LIF layer of model spikes without a surrogate: evaluation and
    derivative-free passes then skip the derivative (Stein's costs M threshold samples)."""
    layers = [m for m in model.modules() if isinstance(m, LIFLayer)]
    saved = [layer.surrogate for layer in layers]
    for layer in layers:
        layer.surrogate = None
    try:
        yield model
    finally:
        for layer, surrogate in zip(layers, saved):
            layer.surrogate = surrogate
