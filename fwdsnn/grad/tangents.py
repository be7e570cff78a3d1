"""Forward-mode tangents through the study's networks: the primal and N tangents in one pass.

This is the production path of the forward-gradient estimator. `torch.func.jvp` gives the same
numbers (the tests check it) but dispatches every op through autograd's forward mode and
Norse's layer-by-layer loop holds the whole (T, ...) spike train of each layer. Here, inside
`torch.no_grad()`:
- time-major in windows (`rows.interpret`): every layer advances one window of steps before
  the next window starts, and only the LIF/LI states and the decode sum are kept across
  windows, so memory does not grow with T;
- the N tangents are a leading batch dimension, so one kernel serves all of them;
- the spike's tangent is `surrogate.derivative(u) * du` with ONE derivative per spike call
  shared by all N tangents (for Stein: the jvp of the network with that noise held fixed);
- tangent rows join where their first perturbed Linear is (see `rows.JoinPlan`): layers before it run
  primal-only for them (a layer with no live rows draws no surrogate derivative either),
  which is what makes layer-wise directions cheap.
The primal is `fwdsnn.snn.neuron`'s window forms of the models' steps, so it equals
`model(*inputs)` to rounding; the sub-networks' outputs meet in the model's own `combine` and
`combine_tangent`.

Stein noise is drawn window by window (layer after layer within a window), where the model
draws layer by layer over all steps: with one generator shared by all LIF layers the two
passes use different noise, with one generator per LIF layer they use the same.

Tangents come as a dict {parameter name: Tensor(N, *parameter.shape)} (a missing name is a
zero tangent), or as a list of such dicts ("blocks", each zero outside its parameters) whose
rows are stacked in order: layer-wise directions go in as one block per layer.
"""

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from fwdsnn.grad.base import mse
from fwdsnn.grad.rows import Blocks, JoinPlan, block_rows, run_subnets
from fwdsnn.snn.models import SpikingModel
from fwdsnn.snn.norse_api import LIFFeedForwardState, LIState
from fwdsnn.snn.neuron import (li_tangent_window, li_window, lif_tangent_window, lif_window,
                               rest_state)


@torch.no_grad()
def propagate(model: SpikingModel, inputs: tuple, tangents: Mapping[str, Tensor] | Blocks
              ) -> tuple[Tensor, Tensor]:
    """(model(*inputs), its tangents (N, *output.shape)) for tangents of the parameters."""
    blocks = [tangents] if isinstance(tangents, Mapping) else list(tangents)
    rows = block_rows(model, blocks)
    pairs = run_subnets(model, inputs, TangentPlan, blocks, rows)
    return combine_tangents(model, {name: y for name, (y, _) in pairs.items()},
                            {name: dy for name, (_, dy) in pairs.items()}, blocks, rows)


def combine_tangents(model: SpikingModel, outputs: dict[str, Tensor],
                     tangents: dict[str, Tensor | None], blocks: Blocks, rows: list[int]
                     ) -> tuple[Tensor, Tensor]:
    """(model output, its tangents (N, *output.shape)) from the sub-networks' outputs and
    output tangents, with the scalars' rows taken from the blocks."""
    scalars = model.scalars()
    output = model.combine(outputs, scalars)
    tangent = model.combine_tangent(outputs, tangents,
                                    {name: _scalar(blocks, rows, name) for name in scalars})
    if tangent is None:
        tangent = output.new_zeros(sum(rows), *output.shape)
    return output, tangent


def mse_tangent(prediction: Tensor, tangents: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """The training loss (`mse`) and its directional derivatives (N,): the mean over the
    target's elements of 2 (prediction - target) * prediction tangent."""
    loss = mse(prediction, target)
    dims = tuple(range(-target.ndim, 0))
    return loss, torch.mean(2.0 * (prediction - target) * tangents, dim=dims)


class TangentPlan(JoinPlan):
    """The tangent row algebra for `rows.interpret`: values are (primal, live tangent rows or
    None). Rows live before Linear k get W dx, joining rows start from dW x + db alone; rows
    of blocks absent from this network are zero."""

    def linear(self, k: int, value: tuple) -> tuple[Tensor, Tensor | None]:
        """Linear k as nn.Linear computes it, and the tangent rows live after it: W dx for the
        rows live before, dW x + db for the rows joining, written into one buffer."""
        x, dx = value
        layer = self.linears[k]
        y = F.linear(x, layer.weight, layer.bias)
        if not self.live[k]:
            return y, None
        before = 0 if dx is None else dx.shape[0]
        dy = y.new_empty(self.live[k], *y.shape)
        if dx is not None:
            torch.matmul(dx, layer.weight.T, out=dy[:before])
        for span, w, b in self.terms[k]:
            _add_direct(dy[span], x, w, b, accumulate=span.start < before)
        return y, dy

    def start(self, x: Tensor) -> tuple[Tensor, None]:
        self.like = x
        return x, None

    @staticmethod
    def tanh(value: tuple) -> tuple[Tensor, Tensor | None]:
        h = torch.tanh(value[0])
        return h, None if value[1] is None else value[1] * (1.0 - h * h)

    @staticmethod
    def repeat(value: tuple, n: int) -> tuple[Tensor, Tensor | None]:
        x, dx = value
        return x.expand(n, *x.shape), None if dx is None else dx.unsqueeze(1).expand(
            dx.shape[0], n, *dx.shape[1:])

    def neuron(self, k: int, layer, width: int):
        """Tangent window of the neuron layer Linear k drives (LIF: spike tangents)."""
        p, readout, live = layer.p, k == len(self.linears) - 1, self.live[k]
        observe = None if readout else self.observer(k)
        if not readout and layer.surrogate is None:
            raise ValueError("forward-mode tangents need a spike surrogate; the LIF layers have "
                             "none (inside bare_spikes?)")
        like = self.like.new_zeros(*self.like.shape[:-1], width)
        state = rest_state(LIState if readout else LIFFeedForwardState, like, p)
        rows = like.new_zeros(live, *like.shape)
        tangent_state = LIState(v=rows, i=torch.zeros_like(rows)) if live else None

        def window(value: tuple) -> tuple[Tensor, Tensor | None]:
            nonlocal state, tangent_state
            x, dx = value
            if readout:
                v, state = li_window(x, state, p, layer.dt)
                if tangent_state is None:
                    return v, None
                dv, tangent_state = li_tangent_window(dx, tangent_state, p, layer.dt)
                return v, dv
            # the currents are this pass's own fresh buffers: the windows may overwrite them
            wanted = tangent_state is not None or observe is not None
            z, state, derivatives = lif_window(x, state, p, layer.dt,
                                               layer.surrogate if wanted else None, overwrite=True)
            if observe is not None:
                observe(derivatives)
            if tangent_state is None:
                return z, None
            dz, tangent_state = lif_tangent_window(dx, tangent_state, derivatives, p, layer.dt,
                                                   overwrite=True)
            return z, dz
        return window

    def observer(self, k: int):
        """A function to call with each window's `LIFWindow` of LIF layer k (None: no call),
        for algebras that carry more than tangent rows through a layer: it then draws its
        surrogate derivatives even where no row is live."""
        return None

    @staticmethod
    def window_sum(value: tuple, first: int) -> tuple[Tensor, Tensor | None]:
        v, dv = value
        return v[first:].sum(0), None if dv is None else dv[:, first:].sum(1)

    @staticmethod
    def add(total: tuple | None, value: tuple) -> tuple:
        if total is None:
            return value
        return total[0] + value[0], None if value[1] is None else total[1] + value[1]

    @staticmethod
    def divide(total: tuple, n: int) -> tuple:
        return total[0] / n, None if total[1] is None else total[1] / n

    def finish(self, value: tuple) -> tuple[Tensor, Tensor | None]:
        """Live rows back to their places among all N rows (zeros for blocks not here)."""
        y, tangent = value
        if tangent is None or self.positions is None:
            return y, tangent
        full = tangent.new_zeros(self.total, *tangent.shape[1:])
        return y, full.index_copy_(0, self.positions.to(tangent.device), tangent)


def _add_direct(out: Tensor, x: Tensor, weight: Tensor | None, bias: Tensor | None,
                accumulate: bool) -> None:
    """out (n, *lead, out) = (or +=, when `accumulate`) dW x + db for one block's tangents
    dW (n, out, in), db (n, out) and inputs x (*lead, in)."""
    n = out.shape[0]
    flat_out = out.view(n, -1, out.shape[-1])
    if weight is not None:
        flat = x.reshape(1, -1, x.shape[-1]).expand(n, -1, -1)
        if accumulate:
            flat_out.baddbmm_(flat, weight.transpose(1, 2))
        else:
            torch.bmm(flat, weight.transpose(1, 2), out=flat_out)
    elif not accumulate:
        flat_out.zero_()
    if bias is not None:
        flat_out.add_(bias.unsqueeze(1))


def _scalar(blocks: Blocks, rows: list[int], name: str) -> Tensor | None:
    """A scalar parameter's tangent over all N rows (zeros in blocks without it), or None."""
    present = [block[name] for block in blocks if name in block]
    if not present:
        return None
    like = present[0]
    return torch.cat([block.get(name, like.new_zeros(n)) for block, n in zip(blocks, rows)])
