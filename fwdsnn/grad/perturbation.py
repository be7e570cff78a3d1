"""Weight perturbation (WP): gradient estimates from loss values alone, through the true spike.

For random directions v_k the directional derivative is taken as a central difference,
d_k = [L(θ + εv_k) − L(θ − εv_k)] / (2ε), and g = (1/K) Σ_k d_k v_k. No derivative of the
spike is used (the LIF layers step with the bare Heaviside), so what WP follows is the loss
smoothed over the scale ε: ε must be large enough to flip spikes (~1e-2–1e-1); at tiny ε a
hidden layer's estimate is zero unless a spike happens to flip, and then it is huge.

All perturbed parameter sets, and the unperturbed one whose loss is reported, are evaluated in
one hand-written pass inside `torch.no_grad()` (`perturbed_outputs`):
- time-major: every layer advances one step before the next step starts and only the current
  LIF/LI states are kept (stepped in place, `InPlaceRows`), so memory does not grow with T;
- the sets are a leading batch dimension: a Linear is one batched matmul over them;
- a set equals the unperturbed network until its first perturbed Linear, so it joins the batch
  there (`rows.JoinPlan`): in layer scope the layers before a block's own run once, unbatched.
The arithmetic is the model's op for op, so each row equals `model(*inputs)` with that set
loaded under `bare_spikes` to rounding (the tests check it).
"""

import torch
from torch import Tensor, nn

from fwdsnn.grad.base import Estimate, mse
from fwdsnn.grad.directions import DirectionalEstimator
from fwdsnn.grad.rows import Blocks, JoinPlan, block_rows
from fwdsnn.snn.models import SpikingDeepONet, SpikingMLP, SpikingSepONet
from fwdsnn.snn.neuron import InPlaceRows


@torch.no_grad()
def perturbed_outputs(model: nn.Module, inputs: tuple, offsets: Blocks) -> Tensor:
    """Outputs (1 + N, *output.shape) through the bare spike: row 0 at θ, then row n at θ plus
    offset row n. `offsets` are blocks {parameter name: (n, *shape)}, rows stacked in order; a
    parameter a block does not name keeps its value in that block's rows."""
    rows = block_rows(model, offsets)
    if isinstance(model, SpikingMLP):
        return _mlp(model, "", inputs[0], offsets, rows)
    if isinstance(model, SpikingDeepONet):
        a, coords = inputs
        b = _mlp(model.branch, "branch.", a, offsets, rows)
        t = _mlp(model.trunk, "trunk.", coords, offsets, rows)
        return b @ t.transpose(-1, -2) + _scalar_rows(model.b0, offsets, rows, "b0", 2)
    if isinstance(model, SpikingSepONet):
        a, axes = inputs
        if len(axes) != len(model.trunks):
            raise ValueError(f"{len(axes)} axes given, the model has {len(model.trunks)}")
        grid = "ijklmnopq"[:len(axes)]
        equation = "nfr," + ",".join(f"n{c}r" for c in grid) + "->nf" + grid
        factors = [_mlp(trunk, f"trunks.{m}.", x, offsets, rows)
                   for m, (trunk, x) in enumerate(zip(model.trunks, axes))]
        return (torch.einsum(equation, _mlp(model.branch, "branch.", a, offsets, rows), *factors)
                + _scalar_rows(model.b0, offsets, rows, "b0", 1 + len(axes)))
    raise TypeError(f"no perturbation pass for {type(model).__name__}")


def perturbed_losses(model: nn.Module, inputs: tuple, target: Tensor, offsets: Blocks) -> Tensor:
    """Losses (1 + N,) of `perturbed_outputs`: the unperturbed loss, then one per offset row."""
    return mse(perturbed_outputs(model, inputs, offsets), target)


def central_slopes(model: nn.Module, inputs: tuple, target: Tensor, directions: Blocks,
                   epsilon: float) -> tuple[Tensor, Tensor]:
    """Central differences d_k (N,) along the direction rows of the blocks `directions`, and
    the unperturbed loss: one pass over 2N + 1 sets, each block's +εv rows then its -εv."""
    offsets = [{name: epsilon * torch.cat([v, -v]) for name, v in block.items()}
               for block in directions]
    losses = perturbed_losses(model, inputs, target, offsets)
    pairs = losses[1:].split([2 * n for n in block_rows(model, directions)])
    slopes = [(pair[:len(pair) // 2] - pair[len(pair) // 2:]) / (2.0 * epsilon) for pair in pairs]
    return torch.cat(slopes), losses[0]


class _Sets(JoinPlan):
    """`JoinPlan` for parameter sets: live row j is state row 1 + j (row 0 is θ). Each Linear
    is at most two batched matmuls into a buffer reused every step: the rows that have their
    own input (θ's weights, or per-row weights θ + offset where a live block names it), and
    the rows joining there, which take row 0's input with their own weights."""

    def __init__(self, net: SpikingMLP, prefix: str, offsets: Blocks, rows: list[int]):
        super().__init__(net, prefix, offsets, rows)
        self.own, self.joining = [], []
        for k, layer in enumerate(self.linears):
            before = self.live[k - 1] if k else 0
            old = [term for term in self.terms[k] if term[0].start < before]
            new = [term for term in self.terms[k] if term[0].start >= before]
            self.own.append(_weight_rows(layer, 1 + before, old, 1) if old else None)
            self.joining.append(_weight_rows(layer, self.live[k] - before, new, -before)
                                if new else None)
        self.buffers: list[Tensor | None] = [None] * len(self.linears)

    def linear(self, k: int, h: Tensor) -> Tensor:
        """Linear k of rows h (1 + live before k, B, in): (1 + live after k, B, out)."""
        layer = self.linears[k]
        rows = 1 + self.live[k]
        if self.buffers[k] is None:
            self.buffers[k] = h.new_empty(rows, h.shape[1], layer.out_features)
        out, own = self.buffers[k], h.shape[0]
        if self.own[k] is None:  # θ's weights: one GEMM over all rows, as nn.Linear does it
            torch.addmm(layer.bias, h.reshape(-1, h.shape[-1]), layer.weight.T,
                        out=out[:own].view(-1, out.shape[-1]))
        else:
            bias, weight = self.own[k]
            torch.baddbmm(bias, h, weight, out=out[:own])
        if rows > own:
            bias, weight = self.joining[k]
            torch.baddbmm(bias, h[0].expand(rows - own, *h.shape[1:]), weight, out=out[own:])
        return out

    def gather(self, y: Tensor) -> Tensor:
        """Rows (1 + N, ...) in block order; rows of blocks absent from this network are θ's."""
        if self.positions is None:
            return y
        sources = torch.zeros(1 + self.total, dtype=torch.long)
        sources[1 + self.positions] = torch.arange(1, 1 + len(self.positions))
        return y.index_select(0, sources.to(y.device))


def _weight_rows(layer: nn.Linear, n: int, terms: list, shift: int) -> tuple[Tensor, Tensor]:
    """Bias (n, 1, out) and transposed weights (n, in, out) for n rows: θ's, plus the offset
    rows of `terms` at state rows span + shift (θ + offset, as `functional_call` would load)."""
    bias = layer.bias.expand(n, 1, layer.out_features).clone()
    weight = layer.weight.expand(n, *layer.weight.shape).clone()
    for span, w, b in terms:
        rows = slice(span.start + shift, span.stop + shift)
        if w is not None:
            weight[rows] = layer.weight + w
        if b is not None:
            bias[rows] = (layer.bias + b).unsqueeze(1)
    return bias, weight.transpose(1, 2)


def _mlp(net: SpikingMLP, prefix: str, x: Tensor, offsets: Blocks, rows: list[int]) -> Tensor:
    sets = _Sets(net, prefix, offsets, rows)
    return sets.gather((_spiking_mlp if net.spiking else _tanh_mlp)(net, x, sets))


def _tanh_mlp(net: SpikingMLP, x: Tensor, sets: _Sets) -> Tensor:
    h = x.unsqueeze(0)
    for k in range(len(net.linears)):
        h = torch.tanh(sets.linear(k, h))
    return sets.linear(len(net.linears), h)


def _spiking_mlp(net: SpikingMLP, x: Tensor, sets: _Sets) -> Tensor:
    """SpikingMLP.forward time-major: input current, LIF layers, readout, LI, decode."""
    current = sets.linear(0, x.unsqueeze(0))  # the same current at every step
    shape = (x.shape[0], net.readout.in_features)
    lifs = [InPlaceRows(lif, (1 + sets.live[k], *shape), x) for k, lif in enumerate(net.lifs)]
    spikes = [torch.empty_like(lif.v) for lif in lifs]
    readout = len(net.linears)
    li = InPlaceRows(net.li, (1 + sets.live[readout], x.shape[0], net.readout.out_features), x)
    start = net.steps - (1 if net.decode == "last" else net.window)
    total = None
    for t in range(net.steps):
        h = current
        for k, (lif, z) in enumerate(zip(lifs, spikes)):
            lif.integrate(sets.linear(k, h) if k else h)
            h = lif.spike(z)
        v = li.integrate(sets.linear(readout, h))
        if t >= start:
            total = v.clone() if total is None else total.add_(v)
    return total if net.decode == "last" else total / net.window


def _scalar_rows(parameter: Tensor, offsets: Blocks, rows: list[int], name: str,
                 dims: int) -> Tensor:
    """A scalar parameter per row (1 + N, 1, ..., 1): θ's, or θ + offset in blocks naming it."""
    values = parameter.expand(1 + sum(rows)).clone()
    start = 1
    for block, n in zip(offsets, rows):
        if name in block:
            values[start:start + n] = parameter + block[name]
        start += n
    return values.view(-1, *[1] * dims)


class WeightPerturbation(DirectionalEstimator):
    """WP with K antithetic direction pairs: over all trainable parameters at once (scope
    "global") or per layer of `parameter_layers`, each zero outside its layer ("layer").

    `forward_passes` counts the parameter sets evaluated, one forward pass each: 2K per group
    plus the unperturbed set whose loss is reported (2K + 1 global, 2KL + 1 over L layers).
    All groups share one pass and a layer's sets join it at that layer, so in layer scope wall
    time grows more slowly than this count.
    """

    def __init__(self, method: dict, generator: torch.Generator):
        super().__init__(method, generator)
        self.epsilon = float(method["epsilon"])

    def estimate(self, model: nn.Module, inputs: tuple, target: Tensor) -> Estimate:
        params = dict(model.named_parameters())
        blocks = [{name: self.draw(params[name]) for name in group} for group in self.groups(model)]
        slopes, loss = central_slopes(model, inputs, target, blocks, self.epsilon)
        model.zero_grad(set_to_none=True)
        for block, block_slopes in zip(blocks, slopes.split(self.directions)):
            for name, v in block.items():
                params[name].grad = torch.tensordot(block_slopes, v, dims=1) / self.directions
        return Estimate(loss=loss.item(), forward_passes=2 * self.directions * len(blocks) + 1)
