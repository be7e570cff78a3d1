"""Rows of a batched pass that join at their first perturbed Linear: shared by the forward-mode
tangents (`tangents`) and the perturbed parameter sets of weight perturbation (`perturbation`).

Both passes carry, besides the unperturbed network, N extra rows (tangents, or parameter sets)
given in blocks: dicts {parameter name: Tensor(n, *parameter.shape)}, each block's rows
stacked after the previous block's. A block's rows equal the unperturbed pass (a tangent row is
zero, a parameter set's row is the primal) until the first Linear whose parameters it names,
so they are computed only from there on: layer-wise blocks then skip the layers before their
own, which is what makes layer scope cheap.
"""

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor, nn

Blocks = Sequence[Mapping[str, Tensor]]


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
    of live row j (None when live rows are all N rows in order).
    """

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
