"""Activity perturbation (Ren, Kornblith, Liao, Hinton 2023): forward gradients in the space of
each LIF layer's input currents instead of its weights.

For LIF layer l with input x and current z = W x + b, noise u ~ N(0, 1) (or +-1) per example,
per neuron and per time step is the tangent of z (time-constant at a sub-network's first
layer: its input, the encoding, is constant in time, so its current is computed once). One
forward-mode tangent row carries it to the sub-network's output; contracted per example with
the exact dL/d(output) (`readout.output_gradients`) it gives s_b = sum_{t,j} dL/dz_{b,t,j}
u_{b,t,j}, and g_W = sum_b s_b sum_t u_{b,t} x_{b,t}^T, g_b = sum_b s_b sum_t u_{b,t} are
unbiased. The random space per example is a layer's activity, far smaller than its weights,
and every example carries its own noise, so the batch averages it. The sums
sum_t u x^T (B, out, in) and sum_t u (B, out) are accumulated as the windows run, so memory
does not grow with T.

This works per sub-network example (an MLP's batch, a DeepONet's functions and points), because
a sub-network treats its examples independently. Scope "global": a row carries noise at every
LIF layer at once; "layer": a row per LIF layer, carrying only its own; `directions` K rows of
each, averaged. The readout Linears and the model's scalars get their exact gradient
(`readout: exact`, the default) or the forward gradient (grad . v) v of K random directions
(`readout: perturbed`), the directional derivative formed from the same filtered spikes (the
readout and its LI are linear, so a tangent row through them would give the same number).
"""

from functools import partial
from itertools import accumulate
from typing import NamedTuple

import torch
from torch import Tensor

from fwdsnn.grad.base import Estimate
from fwdsnn.grad.directions import DirectionalEstimator
from fwdsnn.grad.readout import (Traced, TracedPlan, output_gradients, readout_gradients,
                                 readout_parameters, readout_setting)
from fwdsnn.grad.rows import run_subnets, subnet_prefixes


class LayerNoise(NamedTuple):
    """What a LIF layer's rows leave for the estimate: the rows carrying its noise, per
    example sum_t u x^T (B, rows, out, in) and sum_t u (B, rows, out), and what the rows'
    estimates are divided by (K random rows are averaged; unit rows, a Jacobian, are summed)."""

    rows: slice
    weight: Tensor
    bias: Tensor
    divisor: int


class Perturbed(NamedTuple):
    """A sub-network's pass: its output, tangent rows and filtered spikes, its noisy layers'
    sums, and what an algebra built on this one adds (`eligibility`'s traces)."""

    traced: Traced
    layers: list[LayerNoise]
    trace: Tensor | None = None


def accumulate_noise(sums: list, k: int, x: Tensor, u: Tensor) -> None:
    """Into sums[k] (None: first), per example sum_t u x^T (B, R, out, in) and sum_t u
    (B, R, out) of LIF layer k's input x (B, in) or (n, B, in) and noise u (R, [n,] B, out)."""
    if x.ndim == 2:  # no time: the encoding's current, or the tanh twin
        x, u = x.unsqueeze(0), u.unsqueeze(1)
    rows, steps, batch, width = u.shape
    per_example = u.permute(2, 0, 3, 1).reshape(batch, rows * width, steps)
    if sums[k] is None:
        sums[k] = (x.new_zeros(batch, rows, width, x.shape[-1]), x.new_zeros(batch, rows, width))
    weight, bias = sums[k]
    weight.view(batch, rows * width, -1).baddbmm_(per_example, x.transpose(0, 1))
    bias.add_(u.sum(1).transpose(0, 1))


class ActivityPlan(TracedPlan):
    """The tangent rows of `TracedPlan` with no weight tangents (`run_subnets` passes no
    blocks): rows join at an LIF layer's input Linear with dz = u (global scope: one set of
    rows from the first Linear on, every later LIF Linear adding its own u to W dx)."""

    def __init__(self, net, prefix: str, blocks, rows, *, draw, directions: int, scope: str,
                 noisy_layers: int | None = None):
        """`draw(like)`: `directions` noise rows (K, *like.shape) in like's dtype and device;
        `noisy_layers`: how many LIF layers from the first carry noise (None: all)."""
        super().__init__(net, prefix, (), [])
        self.draw = draw
        layers = len(net.linears) if noisy_layers is None else noisy_layers
        self.layout([directions] * layers, [directions] * layers, scope)

    def layout(self, counts: list[int], divisors: list[int], scope: str) -> None:
        """counts[k] noise rows at LIF layer k (the same rows for every layer in global scope),
        their estimates divided by divisors[k]; the rows live after each Linear follow."""
        ends = list(accumulate(counts))
        if scope == "layer":
            self.noisy = [slice(end - n, end) for n, end in zip(counts, ends)]
            self.live = [ends[min(k, len(ends) - 1)] if ends else 0
                         for k in range(len(self.linears))]
        else:
            self.noisy = [slice(0, n) for n in counts]
            self.live = [max(counts, default=0)] * len(self.linears)
        self.total, self.divisors = self.live[-1], divisors
        self.sums: list[tuple[Tensor, Tensor] | None] = [None] * len(counts)

    def noise(self, k: int, like: Tensor) -> Tensor:
        """LIF layer k's noise rows for a current shaped like `like`."""
        return self.draw(like)

    def linear(self, k: int, value: tuple) -> tuple[Tensor, Tensor | None]:
        y, dy = super().linear(k, value)
        if k >= len(self.noisy):
            return y, dy
        rows = dy[self.noisy[k]]
        u = self.noise(k, rows[0])
        joined = value[1] is None or self.noisy[k].start >= value[1].shape[0]
        if joined:
            rows.copy_(u)
        else:
            rows.add_(u)
        accumulate_noise(self.sums, k, value[0], u)
        return y, dy

    def finish(self, value: tuple) -> Perturbed:
        return Perturbed(super().finish(value),
                         [LayerNoise(span, *sums, divisor) for span, sums, divisor
                          in zip(self.noisy, self.sums, self.divisors)])


class ActivityPerturbation(DirectionalEstimator):
    """Method keys scope, directions K (noise rows per LIF layer, or per pass in global scope),
    distribution (of the noise and of the readout directions) and readout (exact | perturbed).
    Noise is drawn window by window, layer by layer, sub-network by sub-network, then the
    readout directions, so a re-seeded generator replays an estimate."""

    def __init__(self, method: dict, generator: torch.Generator):
        super().__init__(method, generator)
        self.readout = readout_setting(method, "exact")

    def estimate(self, model: torch.nn.Module, inputs: tuple, target: torch.Tensor) -> Estimate:
        runs = self.passes(model, inputs)
        traced = {name: run.traced for name, run in runs.items()}
        loss, output_grads, scalar_grads = output_gradients(
            model, {name: run.output for name, run in traced.items()}, target)
        grads = self._readout(model, readout_gradients(model, traced, output_grads, scalar_grads))
        prefixes, nets = subnet_prefixes(model), model.subnets()
        for name, run in runs.items():
            prefix = prefixes[id(nets[name])]
            grads.update(self.hidden_gradients(nets[name], prefix, run, output_grads[name]))
        model.zero_grad(set_to_none=True)
        for name, parameter in model.named_parameters():
            if parameter.requires_grad:
                parameter.grad = grads[name]
        return Estimate(loss=loss.item(), forward_passes=self.forward_passes(model))

    @torch.no_grad()
    def passes(self, model: torch.nn.Module, inputs: tuple) -> dict[str, Perturbed]:
        """Each sub-network's perturbed pass, by name."""
        return run_subnets(model, inputs, self.plan(), (), [])

    def plan(self):
        """The row algebra of one pass (built per sub-network by `run_subnets`)."""
        return partial(ActivityPlan, draw=self.draw, directions=self.directions,
                       scope=self.scope)

    def hidden_gradients(self, net, prefix: str, run: Perturbed, output_grad: Tensor
                         ) -> dict[str, Tensor]:
        """The noisy LIF layers' estimates of one sub-network from its pass and dL/d(output)."""
        if not run.layers:
            return {}
        # s[r, b]: row r's directional derivative of the loss through example b's noise
        slopes = torch.einsum("rbo,bo->rb", run.traced.tangent, output_grad)
        grads = {}
        for k, layer in enumerate(run.layers):
            s = slopes[layer.rows] / layer.divisor
            grads[f"{prefix}linears.{k}.weight"] = torch.einsum("rb,broi->oi", s, layer.weight)
            grads[f"{prefix}linears.{k}.bias"] = torch.einsum("rb,bro->o", s, layer.bias)
        return grads

    def forward_passes(self, model: torch.nn.Module) -> float:
        """Cost convention of the forward gradient: the primal pass plus one per tangent row
        (layer scope: K per LIF layer of the model; global: K, shared by the sub-networks)."""
        lif_layers = sum(len(net.linears) for net in model.subnets().values())
        return 1.0 + self.directions * (lif_layers if self.scope == "layer" else 1)

    def _readout(self, model: torch.nn.Module, exact: dict[str, Tensor]) -> dict[str, Tensor]:
        """The readout parameters' gradients: exact, or (1/K) sum_k (exact . v_k) v_k over
        K directions per layer (one block in global scope) drawn in the model's order."""
        if self.readout == "exact":
            return exact
        names = set(readout_parameters(model))
        groups = [kept for kept in ([name for name in group if name in names]
                                    for group in self.groups(model)) if kept]
        params, grads = dict(model.named_parameters()), {}
        for group in groups:
            v = self.draw_block(params, group)
            slopes = sum((v[name] * exact[name]).reshape(self.directions, -1).sum(1)
                         for name in group)
            grads.update({name: torch.tensordot(slopes, v[name], dims=1) / self.directions
                          for name in group})
        return grads

