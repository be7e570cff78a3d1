"""Eligibility traces (e-prop, OSTL): the exact gradient of every sub-network's last hidden LIF
layer, forward in time; activity perturbation rows for the LIF layers before it.

The hidden layers are feed-forward (no recurrent weights), so the trace of LIF neuron j of
example b to its weight W_jk is e_{b,j,k} = d u_d(t) / d W_jk (u_d: the decayed voltage minus
threshold, where the spike is taken), per example, neuron and input, through the synaptic
current, the membrane and the reset exactly as `lif_window` steps them:
  xbar_t = x_t + keep xbar_(t-1)                     (the synaptic current's trace, per input)
  e_t = alpha xbar_t + (1 - alpha) carry(t-1) e_(t-1)   (carry: d u / d u_d through the reset)
and the spike's is D(t) e_t with the surrogate derivative D that BPTT uses. The decoded output
is y = W_out sum_t c_t h_t + ... (`readout.decode_weights`), so dL/dW_jk = sum_b (W_out^T g_b)_j
E_{b,j,k} with E = sum_t c_t D(t) e_t and g = dL/dy (`readout.output_gradients`). The bias'
trace is the weight's for an input of constant one, so it is carried as one more input.

E is accumulated as the windows run, and nothing of the past is kept: within a window of n
steps e is linear in the trace carried in and the window's xbar, so the window's share of E
and the trace it carries out are batched matmuls of (B, width, n) coefficients, formed by
a backward recursion over the window's (B, width) neuron values, with xbar (B, n, in + 1),
added into the two buffers in place. Memory is B x width x (in + 1) twice per sub-network,
flat in T.

The earlier LIF layers get `activity.ActivityPerturbation`'s rows in layer scope (K per layer),
which also carry their noise through the traced layer to the output; the readout is exact.
With `first_layer: jacobian` the first layer's rows are instead the unit vectors of its
neurons: its current is computed once from the encoding (constant in time), so these width
rows carry every example's exact dL/dz to the output, and with the traces a sub-network of
two hidden layers gets its whole gradient exactly, at width tangent rows.
"""

from functools import partial

import torch
from torch import Tensor

from fwdsnn.grad.activity import ActivityPerturbation, ActivityPlan, Perturbed
from fwdsnn.snn.neuron import LIFWindow, decay_factors, leaky_scan

FIRST_LAYERS = ("activity", "jacobian")


class EligibilityPlan(ActivityPlan):
    """`ActivityPlan` with noise on the LIF layers before the last, and the last one traced."""

    def __init__(self, net, prefix: str, blocks, rows, *, draw, directions: int,
                 first_layer: str):
        if not net.spiking:
            raise ValueError("estimator eligibility traces spiking layers over time; the tanh "
                             "twin (method spiking: false) has none: use backprop")
        self.traced_layer = len(net.linears) - 1  # the last hidden layer's Linear
        super().__init__(net, prefix, blocks, rows, draw=draw, directions=directions,
                         scope="layer", noisy_layers=self.traced_layer)
        self.jacobian = first_layer == "jacobian" and self.traced_layer > 0
        if self.jacobian:  # a unit row per neuron of the first current: summed, not averaged
            counts = noise_rows(net, directions, first_layer)
            self.layout(counts, [1] + [directions] * (len(counts) - 1), "layer")
        lif = net.lifs[self.traced_layer]
        self.alpha, self.keep = decay_factors(lif.p, lif.dt)
        self.input: Tensor | None = None  # the traced layer's input, with a column of ones
        self.synaptic: Tensor | None = None  # keep xbar at the last step, (B, in + 1)
        self.membrane: Tensor | None = None  # (1 - alpha) carry e at the last step, (B, n, in + 1)
        self.trace: Tensor | None = None  # E, (B, n, in + 1)
        self.step = 0

    def noise(self, k: int, like: Tensor) -> Tensor:
        """The first layer's current is constant in time: with `first_layer: jacobian` its
        rows are the unit vectors of its neurons (the same for every example), so they carry
        the exact dL/dz of every example to the output."""
        if k or not self.jacobian:
            return super().noise(k, like)
        width = like.shape[-1]
        eye = torch.eye(width, dtype=like.dtype, device=like.device)
        return eye.view(width, 1, width).expand(width, *like.shape)

    def linear(self, k: int, value: tuple) -> tuple[Tensor, Tensor | None]:
        if k == self.traced_layer:
            x = value[0]
            self.input = torch.cat([x, x.new_ones(*x.shape[:-1], 1)], -1)
        return super().linear(k, value)

    def observer(self, k: int):
        return self._window if k == self.traced_layer else None

    def _window(self, window: LIFWindow) -> None:
        """Advance the traces over one window and add its share of E (see the module doc)."""
        steps, width = window.derivative.shape[-3], window.derivative.shape[-1]
        x = self.input if self.input.ndim == 3 else self.input.expand(steps, *self.input.shape)
        xbar = leaky_scan(x, self.synaptic, self.keep)  # a constant input: a broadcast product
        self.synaptic = self.keep * xbar[-1]
        decay = window.carry * (1 - self.alpha)  # decay[s]: e_s's factor into e_(s+1)
        c = self.decoded.weights[self.step:self.step + steps].to(decay).view(steps, 1, 1)
        self.step += steps
        # back[s] = (sum_{t >= s} w_t P(s, t), decay[n-1] P(s, n-1)) with w = c D and P(s, t) the
        # product of decay[s .. t-1]: E's and the carried trace's factors of step s's input
        back = torch.cat([c * window.derivative, torch.zeros_like(decay)], -1)
        back[-1, :, width:] = decay[-1]
        factor = decay.repeat(1, 1, 2)
        for s in range(steps - 2, -1, -1):
            back[s].addcmul_(factor[s], back[s + 1])
        xbar = xbar.mul_(self.alpha).transpose(0, 1)  # (B, n, in + 1)
        share, carried = back[..., :width], back[..., width:]
        if self.trace is None:  # the first window: the matmuls write the buffers
            self.trace = torch.bmm(share.permute(1, 2, 0), xbar)
            self.membrane = torch.bmm(carried.permute(1, 2, 0), xbar)
            return
        self.trace.addcmul_(share[0].unsqueeze(-1), self.membrane)
        self.trace.baddbmm_(share.permute(1, 2, 0), xbar)
        self.membrane.mul_(carried[0].unsqueeze(-1))
        self.membrane.baddbmm_(carried.permute(1, 2, 0), xbar)

    def finish(self, value: tuple) -> Perturbed:
        return super().finish(value)._replace(trace=self.trace)


def noise_rows(net, directions: int, first_layer: str) -> list[int]:
    """Noise rows of each LIF layer before a sub-network's last: K each, or at the first one
    a unit row per neuron with `first_layer: jacobian`."""
    counts = [directions] * (len(net.linears) - 1)
    if counts and first_layer == "jacobian":
        counts[0] = net.linears[0].out_features
    return counts


class EligibilityTraces(ActivityPerturbation):
    """Method keys directions K (noise rows per LIF layer before the last), distribution and
    first_layer (activity: K noise rows there too; jacobian: its exact gradient from a unit
    row per neuron of its current, constant in time). Scope is layer and the readout exact,
    the only settings this estimator has."""

    def __init__(self, method: dict, generator: torch.Generator):
        for key, only in (("scope", "layer"), ("readout", "exact")):
            if method.get(key, only) != only:
                raise ValueError(f"estimator eligibility: {key} must be {only!r}, got "
                                 f"{method[key]!r}")
        self.first_layer = method.get("first_layer", "activity")
        if self.first_layer not in FIRST_LAYERS:
            raise ValueError(f"unknown first_layer {self.first_layer!r} (one of {FIRST_LAYERS})")
        super().__init__(method, generator)

    def plan(self):
        return partial(EligibilityPlan, draw=self.draw, directions=self.directions,
                       first_layer=self.first_layer)

    def hidden_gradients(self, net, prefix: str, run: Perturbed, output_grad: Tensor
                         ) -> dict[str, Tensor]:
        grads = super().hidden_gradients(net, prefix, run, output_grad)
        signal = output_grad @ net.readout.weight.detach()  # dL/d(filtered spikes), (B, n)
        exact = torch.einsum("bj,bjk->jk", signal, run.trace)
        linear = f"{prefix}linears.{len(net.linears) - 1}."
        grads[linear + "weight"], grads[linear + "bias"] = exact[:, :-1], exact[:, -1]
        return grads

    def forward_passes(self, model: torch.nn.Module) -> float:
        """The primal pass (which carries the traces) plus one per noise row (`noise_rows`)."""
        return 1.0 + sum(sum(noise_rows(net, self.directions, self.first_layer))
                         for net in model.subnets().values())
