"""Forward-mode tangents through the study's networks: the primal and N tangents in one pass.

This is the production path of the forward-gradient estimator. `torch.func.jvp` gives the same
numbers (the tests check it) but dispatches every op through autograd's forward mode and
Norse's layer-by-layer loop holds the whole (T, ...) spike train of each layer. Here, inside
`torch.no_grad()`:
- time-major: every layer advances one step before the next step starts, and only the current
  LIF/LI states and the decode accumulator are kept, so memory does not grow with T;
- the N tangents are a leading batch dimension, so one kernel serves all of them;
- the spike's tangent is `surrogate.derivative(u) * du` with ONE derivative per spike call
  shared by all N tangents (for Stein: the jvp of the network with that noise held fixed);
- tangent rows join where their first perturbed Linear is (see `rows.JoinPlan`): layers before it run
  primal-only for them (a layer with no live rows draws no surrogate derivative either),
  which is what makes layer-wise directions cheap.
The primal is the models' arithmetic op for op (`fwdsnn.snn.neuron`'s steps and decode),
so it equals `model(*inputs)` to rounding.

Stein noise is drawn time-major (layer after layer within a step), where the model draws layer
by layer over all steps: with one generator shared by all LIF layers the two passes use
different noise, with one generator per LIF layer they use the same.

Tangents come as a dict {parameter name: Tensor(N, *parameter.shape)} (a missing name is a
zero tangent), or as a list of such dicts ("blocks", each zero outside its parameters) whose
rows are stacked in order: layer-wise directions go in as one block per layer.
"""

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fwdsnn.grad.base import mse
from fwdsnn.grad.rows import Blocks, JoinPlan, block_rows
from fwdsnn.snn.models import SpikingDeepONet, SpikingMLP, SpikingSepONet
from fwdsnn.snn.neuron import TangentRows


@torch.no_grad()
def propagate(model: nn.Module, inputs: tuple, tangents: Mapping[str, Tensor] | Blocks
              ) -> tuple[Tensor, Tensor]:
    """(model(*inputs), its tangents (N, *output.shape)) for tangents of the parameters."""
    blocks = [tangents] if isinstance(tangents, Mapping) else list(tangents)
    rows = block_rows(model, blocks)
    if isinstance(model, SpikingMLP):
        output, tangent = _mlp(model, "", inputs[0], blocks, rows)
    elif isinstance(model, SpikingDeepONet):
        output, tangent = _deeponet(model, *inputs, blocks, rows)
    elif isinstance(model, SpikingSepONet):
        output, tangent = _seponet(model, *inputs, blocks, rows)
    else:
        raise TypeError(f"no forward-mode propagation for {type(model).__name__}")
    if tangent is None:
        tangent = output.new_zeros(sum(rows), *output.shape)
    return output, tangent


def mse_tangent(prediction: Tensor, tangents: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """The training loss (`mse`) and its directional derivatives (N,): the mean over the
    target's elements of 2 (prediction - target) * prediction tangent."""
    loss = mse(prediction, target)
    dims = tuple(range(-target.ndim, 0))
    return loss, torch.mean(2.0 * (prediction - target) * tangents, dim=dims)


class _Plan(JoinPlan):
    """`JoinPlan` for tangents: rows live before Linear k get W dx, joining rows start from
    dW x + db alone; rows of blocks absent from this network are zero."""

    def linear(self, k: int, x: Tensor, dx: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Linear k as nn.Linear computes it, and the tangent rows live after it."""
        layer = self.linears[k]
        y = F.linear(x, layer.weight, layer.bias)
        if not self.live[k]:
            return y, None
        before = 0 if dx is None else dx.shape[0]
        parts = [] if dx is None else [torch.matmul(dx, layer.weight.T)]
        parts += [_direct(x, w, b) for span, w, b in self.terms[k] if span.start >= before]
        dy = parts[0] if len(parts) == 1 else torch.cat(parts)
        for span, w, b in self.terms[k]:
            if span.start < before:
                dy[span] += _direct(x, w, b)
        return y, dy

    def scatter(self, tangent: Tensor | None) -> Tensor | None:
        """Live rows back to their places among all N rows (zeros for blocks not here)."""
        if tangent is None or self.positions is None:
            return tangent
        full = tangent.new_zeros(self.total, *tangent.shape[1:])
        return full.index_copy_(0, self.positions.to(tangent.device), tangent)


def _direct(x: Tensor, weight: Tensor | None, bias: Tensor | None) -> Tensor:
    """dW x + db: (n, B, out) for one block's tangents dW (n, out, in), db (n, out), x (B, in)."""
    n = (weight if weight is not None else bias).shape[0]
    if weight is None:
        return bias.unsqueeze(1).expand(n, x.shape[0], bias.shape[-1])
    x = x.expand(n, *x.shape)
    if bias is None:
        return torch.bmm(x, weight.transpose(1, 2))
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def _mlp(net: SpikingMLP, prefix: str, x: Tensor, blocks: Blocks, rows: list[int]
         ) -> tuple[Tensor, Tensor | None]:
    plan = _Plan(net, prefix, blocks, rows)
    y, dy = (_spiking_mlp if net.spiking else _tanh_mlp)(net, x, plan)
    return y, plan.scatter(dy)


def _tanh_mlp(net: SpikingMLP, x: Tensor, plan: _Plan) -> tuple[Tensor, Tensor | None]:
    h, dh = x, None
    for k in range(len(net.linears)):
        h, dh = plan.linear(k, h, dh)
        h = torch.tanh(h)
        if dh is not None:
            dh = dh * (1.0 - h * h)
    return plan.linear(len(net.linears), h, dh)


def _spiking_mlp(net: SpikingMLP, x: Tensor, plan: _Plan) -> tuple[Tensor, Tensor | None]:
    """SpikingMLP.forward time-major: input current, LIF layers, readout, LI, decode."""
    for lif in net.lifs:
        if lif.surrogate is None:
            raise ValueError("forward-mode tangents need a spike surrogate; the LIF layers have "
                             "none (inside bare_spikes?)")
    current, dcurrent = plan.linear(0, x, None)  # the same current at every step
    neurons = [TangentRows(lif, current, plan.live[k]) for k, lif in enumerate(net.lifs)]
    readout = len(net.linears)
    li = TangentRows(net.li, current.new_zeros(*current.shape[:-1], net.readout.out_features),
                 plan.live[readout])
    start = net.steps - (1 if net.decode == "last" else net.window)
    total = dtotal = None
    for t in range(net.steps):
        h, dh = current, dcurrent
        for k, neuron in enumerate(neurons):
            if k:
                h, dh = plan.linear(k, h, dh)
            h, dh = neuron.lif_step(h, dh)
        h, dh = plan.linear(readout, h, dh)
        v, dv = li.li_step(h, dh)
        if t >= start:
            total = v if total is None else total + v
            dtotal = dv if dtotal is None else dtotal + dv
    if net.decode == "last":
        return total, dtotal
    return total / net.window, None if dtotal is None else dtotal / net.window


def _deeponet(model: SpikingDeepONet, a: Tensor, coords: Tensor, blocks: Blocks,
              rows: list[int]) -> tuple[Tensor, Tensor | None]:
    b, db = _mlp(model.branch, "branch.", a, blocks, rows)
    t, dt = _mlp(model.trunk, "trunk.", coords, blocks, rows)
    terms = [] if db is None else [db @ t.T]
    terms += [] if dt is None else [b @ dt.transpose(-1, -2)]
    output = b @ t.T + model.b0
    return output, _sum(output, terms, _bias(blocks, rows, "b0"))


def _seponet(model: SpikingSepONet, a: Tensor, axes: list[Tensor], blocks: Blocks,
             rows: list[int]) -> tuple[Tensor, Tensor | None]:
    if len(axes) != len(model.trunks):
        raise ValueError(f"{len(axes)} axes given, the model has {len(model.trunks)}")
    grid = "ijklmnopq"[:len(axes)]
    subscripts = ["fr"] + [f"{c}r" for c in grid]
    outs = [_mlp(model.branch, "branch.", a, blocks, rows)]
    outs += [_mlp(trunk, f"trunks.{m}.", x, blocks, rows)
             for m, (trunk, x) in enumerate(zip(model.trunks, axes))]
    factors = [y for y, _ in outs]
    output = torch.einsum(",".join(subscripts) + "->f" + grid, *factors) + model.b0
    terms = []  # product rule: one factor's tangent at a time
    for m, (_, tangent) in enumerate(outs):
        if tangent is not None:
            subs = [("n" + s if j == m else s) for j, s in enumerate(subscripts)]
            operands = [tangent if j == m else y for j, y in enumerate(factors)]
            terms.append(torch.einsum(",".join(subs) + "->nf" + grid, *operands))
    return output, _sum(output, terms, _bias(blocks, rows, "b0"))


def _bias(blocks: Blocks, rows: list[int], name: str) -> Tensor | None:
    """A scalar parameter's tangent over all N rows (zeros in blocks without it), or None."""
    present = [block[name] for block in blocks if name in block]
    if not present:
        return None
    like = present[0]
    return torch.cat([block.get(name, like.new_zeros(n)) for block, n in zip(blocks, rows)])


def _sum(output: Tensor, terms: list[Tensor], scalar: Tensor | None) -> Tensor | None:
    """Output tangents (N, *output.shape): the terms plus a scalar parameter's tangent (N,)."""
    if scalar is not None:
        terms = terms + [scalar.reshape(-1, *[1] * output.ndim).expand(-1, *output.shape)]
    total = None
    for term in terms:
        total = term if total is None else total + term
    return total
