"""Weight perturbation (WP): gradient estimates from loss values alone, through the true spike.

For random directions v_k the directional derivative is taken as a central difference,
d_k = [L(θ + εv_k) − L(θ − εv_k)] / (2ε), and g = (1/K) Σ_k d_k v_k. No derivative of the
spike is used (the LIF layers step with the bare Heaviside), so what WP follows is the loss
smoothed over the scale ε: ε must be large enough to flip spikes (~1e-2–1e-1); at tiny ε a
hidden layer's estimate is zero unless a spike happens to flip, and then it is huge.
`epsilon_scale: rms` makes ε relative: each block's is ε times the RMS of the weights it
perturbs (`block_epsilons`), so one setting perturbs layers of any size alike.

All perturbed parameter sets, and the unperturbed one whose loss is reported, are evaluated in
one hand-written pass inside `torch.no_grad()` (`perturbed_outputs`):
- time-major in windows of one step (`rows.interpret`): every layer advances one step before
  the next step starts and only the current LIF/LI states are kept (stepped in place:
  `neuron.integrate_` / `spike_`), so memory does not grow with T;
- the sets are a leading batch dimension: a Linear is one batched matmul over them;
- a set equals the unperturbed network until its first perturbed Linear, so it joins the batch
  there (`rows.JoinPlan`): in layer scope the layers before a block's own run once, unbatched.
The arithmetic is the model's op for op, so each row equals `model(*inputs)` with that set
loaded under `bare_spikes` to rounding (the tests check it).

With the method key `hardware` every loss is instead the integer emulator's, all sets in one
batched emulator pass (training in the loop: `fwdsnn.grad.emulated`).
"""

import torch
from torch import Tensor, nn

from fwdsnn.grad.base import Estimate, mse
from fwdsnn.grad.directions import DirectionalEstimator
from fwdsnn.grad.emulated import InLoop
from fwdsnn.grad.rows import Blocks, JoinPlan, block_rows, run_subnets
from fwdsnn.snn.models import SpikingModel
from fwdsnn.snn.norse_api import LIState
from fwdsnn.snn.neuron import integrate_, rest_state, spike_, step_factors


# Rows of a combined output are made and reduced to their losses a few at a time, so that no
# buffer is larger than this many elements: a SepONet's grid rows would otherwise be fresh
# allocations of tens of MB per step, paid in page faults rather than arithmetic.
LOSS_CHUNK_ELEMENTS = 2 ** 18
EPSILON_SCALES = ("absolute", "rms")


@torch.no_grad()
def _sub_network_rows(model: SpikingModel, inputs: tuple, offsets: Blocks):
    """Every sub-network's output rows and every scalar parameter's rows (1 + N, ...)."""
    rows = block_rows(model, offsets)
    outputs = run_subnets(model, inputs, _Sets, offsets, rows)
    scalars = {name: _scalar_rows(value, offsets, rows, name)
               for name, value in model.scalars().items()}
    return outputs, scalars


@torch.no_grad()
def perturbed_outputs(model: SpikingModel, inputs: tuple, offsets: Blocks) -> Tensor:
    """Outputs (1 + N, *output.shape) through the bare spike: row 0 at θ, then row n at θ plus
    offset row n. `offsets` are blocks {parameter name: (n, *shape)}, rows stacked in order; a
    parameter a block does not name keeps its value in that block's rows."""
    return model.combine_rows(*_sub_network_rows(model, inputs, offsets))


@torch.no_grad()
def perturbed_losses(model: nn.Module, inputs: tuple, target: Tensor, offsets: Blocks) -> Tensor:
    """Losses (1 + N,) of `perturbed_outputs`: the unperturbed loss, then one per offset row,
    combined and reduced in chunks of rows (`LOSS_CHUNK_ELEMENTS`)."""
    outputs, scalars = _sub_network_rows(model, inputs, offsets)
    total = 1 + sum(block_rows(model, offsets))
    chunk = max(1, LOSS_CHUNK_ELEMENTS // target.numel())
    losses = []
    for first in range(0, total, chunk):
        part = slice(first, first + chunk)
        losses.append(mse(model.combine_rows({name: v[part] for name, v in outputs.items()},
                                             {name: v[part] for name, v in scalars.items()}),
                          target))
    return torch.cat(losses)


def central_slopes(model: nn.Module, inputs: tuple, target: Tensor, directions: Blocks,
                   epsilon: float | list, losses=None) -> tuple[Tensor, Tensor]:
    """Central differences d_k (N,) along the direction rows of the blocks `directions`, and
    the unperturbed loss: one pass over 2N + 1 sets, each block's +εv rows then its -εv.
    `epsilon`: one ε for every block, or a list with each block's. losses: how a pass is
    evaluated (`perturbed_losses`, or the emulator's in the loop)."""
    epsilons = epsilon if isinstance(epsilon, list) else [epsilon] * len(directions)
    offsets = [{name: eps * torch.cat([v, -v]) for name, v in block.items()}
               for block, eps in zip(directions, epsilons, strict=True)]
    losses = (losses or perturbed_losses)(model, inputs, target, offsets)
    pairs = losses[1:].split([2 * n for n in block_rows(model, directions)])
    slopes = [(pair[:len(pair) // 2] - pair[len(pair) // 2:]) / (2.0 * eps)
              for pair, eps in zip(pairs, epsilons)]
    return torch.cat(slopes), losses[0]


@torch.no_grad()
def block_epsilons(params: dict[str, Tensor], blocks: list[list[str]], epsilon: float,
                   scale: str) -> list:
    """Each block's ε: `epsilon` itself (scale "absolute"), or ("rms") `epsilon` times the
    root mean square of every weight the block perturbs at their current values, taken
    together (a layer's weight and bias; all parameters in global scope), a 0-d tensor on their
    device. A block whose weights are all zero (a zero-initialised b0) has no scale of its own:
    its RMS counts as 1, i.e. the absolute ε, the scale of the normalised data, until it moves."""
    if scale == "absolute":
        return [epsilon] * len(blocks)
    epsilons = []
    for names in blocks:
        squares = sum(params[name].detach().square().sum() for name in names)
        rms = (squares / sum(params[name].numel() for name in names)).sqrt()
        epsilons.append(epsilon * torch.where(rms > 0, rms, torch.ones_like(rms)))
    return epsilons


class _Sets(JoinPlan):
    """The parameter-set row algebra for `rows.interpret`: values are rows (1 + live, B, n),
    live row j being state row 1 + j (row 0 is θ); neurons step in place. Each Linear
    is at most two batched matmuls into a buffer reused every step: the rows that have their
    own input (θ's weights, or per-row weights θ + offset where a live block names it), and
    the rows joining there, which take row 0's input with their own weights."""

    window_steps = 1  # its rows are many: stepping buffers in place beats window buffers

    def __init__(self, net: nn.Module, prefix: str, offsets: Blocks, rows: list[int]):
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

    def start(self, x: Tensor) -> Tensor:
        self.like, self.batch = x, x.shape[0]
        return x.unsqueeze(0)

    tanh = staticmethod(torch.tanh)

    @staticmethod
    def repeat(h: Tensor, n: int) -> Tensor:
        return h  # windows of one step: values carry no time dimension

    @staticmethod
    def window_sum(v: Tensor, first: int) -> Tensor:
        return v

    def neuron(self, k: int, layer, width: int):
        """In-place step of the neuron layer Linear k drives (LIF: spikes into a buffer)."""
        p = layer.p
        state = rest_state(LIState, self.like.new_zeros(1 + self.live[k], self.batch, width), p)
        factors = step_factors(p, layer.dt, self.like)
        scratch = torch.empty_like(state.i)
        if k == len(self.linears) - 1:
            return lambda current: integrate_(current, state, p, factors, scratch)
        spikes = torch.empty_like(state.v)

        def step(current: Tensor) -> Tensor:
            integrate_(current, state, p, factors, scratch)
            return spike_(state, p, factors, spikes, scratch)
        return step

    @staticmethod
    def add(total: Tensor | None, v: Tensor) -> Tensor:
        return v.clone() if total is None else total.add_(v)

    @staticmethod
    def divide(total: Tensor, n: int) -> Tensor:
        return total / n

    def finish(self, y: Tensor) -> Tensor:
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


def _scalar_rows(parameter: Tensor, offsets: Blocks, rows: list[int], name: str) -> Tensor:
    """A scalar parameter per row (1 + N,): θ's, or θ + offset in blocks naming it."""
    values = parameter.expand(1 + sum(rows)).clone()
    start = 1
    for block, n in zip(offsets, rows):
        if name in block:
            values[start:start + n] = parameter + block[name]
        start += n
    return values


class WeightPerturbation(DirectionalEstimator):
    """WP with K antithetic direction pairs: over all trainable parameters at once (scope
    "global") or per layer of `parameter_layers`, each zero outside its layer ("layer").
    `epsilon_scale` (absent: absolute) says whether `epsilon` is ε or ε per unit weight RMS
    of each block: per layer in layer scope, one RMS over all parameters in global scope, so
    that a global direction stays one direction of one central difference.

    `forward_passes` counts the parameter sets evaluated, one forward pass each: 2K per group
    plus the unperturbed set whose loss is reported (2K + 1 global, 2KL + 1 over L layers).
    All groups share one pass and a layer's sets join it at that layer, so in layer scope wall
    time grows more slowly than this count.
    """

    def __init__(self, method: dict, generator: torch.Generator):
        super().__init__(method, generator)
        self.epsilon = float(method["epsilon"])
        self.epsilon_scale = method.get("epsilon_scale", "absolute")
        if self.epsilon_scale not in EPSILON_SCALES:
            raise ValueError(f"unknown epsilon_scale {self.epsilon_scale!r} (one of {EPSILON_SCALES})")
        hardware = method.get("hardware")
        if hardware is not None and self.epsilon_scale != "absolute":
            raise ValueError("method.epsilon_scale must be absent with method.hardware, whose "
                             "epsilon counts quantisation steps")
        self.in_loop = None if hardware is None else InLoop(hardware)
        if self.in_loop is not None and self.epsilon < 1:
            raise ValueError(f"method.epsilon {self.epsilon} is below one quantisation step: with "
                             "method.hardware it counts steps of each layer's weights and must be "
                             "at least 1, or the perturbations round away")

    def estimate(self, model: nn.Module, inputs: tuple, target: Tensor) -> Estimate:
        """In the loop (`method.hardware`), a direction v moves a parameter by ε q v, q its
        layer's quantisation step: the slopes are along q v, so the estimate divides by q."""
        params = dict(model.named_parameters())
        groups = self.groups(model)
        blocks = [self.draw_block(params, group) for group in groups]
        if self.in_loop is None:
            steps, losses = dict.fromkeys(params, 1.0), None
            epsilons = block_epsilons(params, groups, self.epsilon, self.epsilon_scale)
        else:
            steps, losses, epsilons = self.in_loop.steps(model), self.in_loop.losses, self.epsilon
        scaled = [{name: steps[name] * v for name, v in block.items()} for block in blocks]
        slopes, loss = central_slopes(model, inputs, target, scaled, epsilons, losses)
        model.zero_grad(set_to_none=True)
        for block, block_slopes in zip(blocks, slopes.split(self.directions)):
            for name, v in block.items():
                params[name].grad = torch.tensordot(block_slopes, v, dims=1) / (self.directions * steps[name])
        return Estimate(loss=loss.item(), forward_passes=2 * self.directions * len(blocks) + 1)
