"""LIF and LI states stepped in place, for derivative-free passes over many weight sets.

Kept apart from `fwdsnn.snn.lif` (the modules every method trains) so that this fast path for
weight perturbation is code of the perturbation runs alone (their code fingerprint), not of
every training run.
"""

import torch
from torch import Tensor


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
