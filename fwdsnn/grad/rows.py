"""Rows of a batched pass that join at their first perturbed Linear: shared by the forward-mode
tangents (`tangents`) and the perturbed parameter sets of weight perturbation (`perturbation`).

Both passes carry, besides the unperturbed network, N extra rows (tangents, or parameter sets)
given in blocks: dicts {parameter name: Tensor(n, *parameter.shape)}, each block's rows
stacked after the previous block's. A block's rows equal the unperturbed pass (a tangent row is
zero, a parameter set's row is the primal) until the first Linear whose parameters it names,
so they are computed only from there on: layer-wise blocks then skip the layers before their
own, which is what makes layer scope cheap.

`interpret` is the one time-major walk of a sub-network both passes share; each pass supplies
only its row algebra (how a Linear makes rows, which neuron step of `fwdsnn.snn.neuron`).
"""

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

from fwdsnn.snn.neuron import decode_window

Blocks = Sequence[Mapping[str, Tensor]]
# A window is the time steps each layer advances before the next layer runs: per-op overhead
# is paid once per window, and memory is bounded by the window whatever T is. Windows are as
# long as a row buffer stays within WINDOW_ELEMENTS, up to WINDOW_STEPS.
WINDOW_STEPS = 16
WINDOW_ELEMENTS = 2 ** 21


def block_rows(model: nn.Module, blocks: Blocks) -> list[int]:
    """Rows per block; unknown names and misshapen rows are errors, not silent zeros."""
    params = dict(model.named_parameters())
    rows = []
    for block in blocks:
        sizes = set()
        for name, tensor in block.items():
            if name not in params:
                raise ValueError(f"rows for unknown parameter {name!r}")
            if tensor.shape[1:] != params[name].shape:
                raise ValueError(f"rows of {name!r} have shape {tuple(tensor.shape)}, "
                                 f"expected (N, *{tuple(params[name].shape)})")
            sizes.add(tensor.shape[0])
        if len(sizes) != 1:
            raise ValueError(f"a block needs one row count, got {sorted(sizes)}")
        rows.append(sizes.pop())
    return rows


class JoinPlan:
    """Which rows are live at each Linear of one SpikingMLP, and each block's terms there.

    Live rows are ordered by joining Linear, so at Linear k the rows live before it are a
    prefix and the rows joining there follow. `terms[k]` lists (span of live rows, weight rows,
    bias rows) for the blocks naming Linear k (None for a parameter a block does not name);
    `live[k]` counts the rows live after Linear k; `positions[j]` is the place among all N rows
    of live row j (None when live rows are all N rows in order). `window_steps`: the
    algebra's own window length for `interpret` (None: `window_steps` chooses by row count).
    """

    window_steps: int | None = None

    def __init__(self, net: nn.Module, prefix: str, blocks: Blocks, rows: list[int]):
        self.linears = [*net.linears, net.readout]
        names = [f"{prefix}linears.{k}" for k in range(len(net.linears))] + [f"{prefix}readout"]
        per_block = [[(block.get(f"{n}.weight"), block.get(f"{n}.bias")) for n in names]
                     for block in blocks]
        perturbed = [[k for k, (w, b) in enumerate(terms) if w is not None or b is not None]
                     for terms in per_block]  # Linears each block names
        starts = [sum(rows[:g]) for g in range(len(blocks))]
        self.terms: list[list[tuple[slice, Tensor | None, Tensor | None]]] = [[] for _ in names]
        self.live = [0] * len(names)
        positions, offset = [], 0
        for first, g in sorted((ks[0], g) for g, ks in enumerate(perturbed) if ks):
            span = slice(offset, offset + rows[g])
            offset += rows[g]
            positions.extend(range(starts[g], starts[g] + rows[g]))
            for k in perturbed[g]:
                self.terms[k].append((span, *per_block[g][k]))
            for k in range(first, len(names)):
                self.live[k] = offset
        self.total = sum(rows)
        identity = positions == list(range(self.total))
        self.positions = None if identity else torch.tensor(positions, dtype=torch.long)


def window_steps(rows: int, batch: int, width: int) -> int:
    """Steps per window for `rows` value rows of (batch, width) per step."""
    return max(1, min(WINDOW_STEPS, WINDOW_ELEMENTS // (rows * batch * width)))


def subnet_prefixes(model: nn.Module) -> dict[int, str]:
    """Parameter-name prefix ('', 'branch.', 'trunks.0.') of every sub-module, by id."""
    return {id(module): f"{path}." if path else "" for path, module in model.named_modules()}


def run_subnets(model, inputs: tuple, algebra: type, blocks: Blocks, rows: list[int]) -> dict:
    """Every sub-network of a protocol model (`fwdsnn.snn.models`) on its feed, interpreted
    with one `algebra` plan per sub-network: {name: the algebra's finished output value}."""
    nets = model.subnets()
    feeds = model.subnet_inputs(nets, inputs)
    prefixes = subnet_prefixes(model)
    outputs = {}
    for name, net in nets.items():
        plan = algebra(net, prefixes[id(net)], blocks, rows)
        outputs[name] = plan.finish(interpret(net, feeds[name], plan))
    return outputs


def interpret(net: nn.Module, x: Tensor, algebra):
    """`SpikingMLP.forward` over the algebra's values (primal + tangent rows, or parameter-set
    rows), time-major in windows of `WINDOW_STEPS`: every layer advances one window before the
    next window starts, and only the neuron states and the decode sum are kept across windows,
    so memory does not grow with T. Within a window a layer runs all its steps at once
    (`neuron.lif_window`), which is what makes a step cheap: a handful of ops per time step
    instead of a dozen per neuron step.

    The algebra supplies `start(x)`, `linear(k, value)` (Linear k; the readout is the last;
    values with a window's time dimension at -3, or without it for the ANN twin and the
    encoding), `tanh(value)` (the ANN twin), `repeat(value, n)` (the encoding's current over n
    steps), `neuron(k, layer, width)` (a window function for the neuron layer Linear k drives,
    at rest), `window_sum(value, first)` (the sum over a window's steps from `first` on),
    `add(total, v)` (None total: the first) and `divide(total, n)`."""
    readout = len(net.linears)
    if not net.spiking:
        h = algebra.start(x)
        for k in range(readout):
            h = algebra.tanh(algebra.linear(k, h))
        return algebra.linear(readout, h)
    current = algebra.linear(0, algebra.start(x))  # the same current at every step
    widths = [linear.out_features for linear in (*net.linears, net.readout)]
    neurons = [algebra.neuron(k, layer, widths[k]) for k, layer in enumerate([*net.lifs, net.li])]
    start, count = decode_window(net.steps, net.decode, net.window)
    length = algebra.window_steps or window_steps(1 + max(algebra.live), x.shape[0], max(widths))
    total = None
    for t0 in range(0, net.steps, length):
        n = min(length, net.steps - t0)
        h = algebra.repeat(current, n)
        for k in range(readout):
            h = neurons[k](algebra.linear(k, h) if k else h)
        v = neurons[readout](algebra.linear(readout, h))
        if t0 + n > start:
            total = algebra.add(total, algebra.window_sum(v, max(start - t0, 0)))
    return algebra.divide(total, count) if count > 1 else total
