"""Node perturbation: the derivative-free twin of activity perturbation, through the true spike.

Where activity perturbation carries noise u on each LIF layer's input current z to the output
by a forward-mode tangent (through a surrogate derivative), node perturbation runs the network
with z + eps u and with z - eps u and takes the central difference of each sub-network's
output per example, dy_b = (y_b(+) - y_b(-)) / (2 eps). The spikes are the bare Heaviside in
every row: no derivative of the spike is used anywhere. Contracted with the exact dL/dy_b
(`readout.output_gradients`) it gives s_b, and g_W = sum_b s_b sum_t u x^T,
g_b = sum_b s_b sum_t u with x the layer's unperturbed input, as activity perturbation forms
them (`activity.accumulate_noise`). The noise is drawn as there: per example, per neuron, fresh every
step, and time-constant at a sub-network's first layer, whose current is computed once.

What this follows: by Stein's lemma, for Gaussian u the central difference is an unbiased
estimate of the gradient of the smoothed E_u F(z + eps u) with respect to the currents, where
F = dL/dy . y is the loss linearised at the unperturbed output (for the study's MSE the two
differ by O(eps^2) on smooth networks). As for weight perturbation, eps is a smoothing scale,
not a small step: it must flip spikes. It is given in units of the sub-network's LIF
threshold v_th (its LIF layers share one set of parameters); in the tanh twin, of its
pre-activations.

Scope "layer": 2K rows per LIF layer, joining the pass at that layer (the layers before run
once, unbatched), so the noise never reaches the layer's own input and x is exactly the input
every row of the pair sees. Scope "global": 2K rows with noise at every LIF layer at once; a
later layer's input then differs between the + and - rows and from the unperturbed one. The
sums use the unperturbed input (row 0's): the other layers' noise is independent and of zero
mean, so E[s_b u_l] is still dL/dz_l (to O(eps^2) on smooth networks) and the estimate pairs
it with the x at which the gradient is wanted; the perturbed rows' inputs are never read.

Made for the integer emulator (`fwdsnn.hardware.emulator`): the perturbation is only an
additive current per example, neuron and step, one more input to a layer's neurons beside its
Dense output (an integer added to a_in, as Lava sums several inputs into one LIF), with the
rows as extra batch entries; the only thing taken from the perturbed rows is their decoded
output, and the sums need only the unperturbed row's inputs.
"""

from functools import partial

import torch
from torch import Tensor

from fwdsnn.grad.activity import ActivityPerturbation, LayerNoise, Perturbed, accumulate_noise
from fwdsnn.grad.emulated import InLoop
from fwdsnn.grad.node_loop import emulated_passes
from fwdsnn.grad.readout import DecodeFilter, Traced
from fwdsnn.snn.neuron import li_window, lif_window


class NodePlan:
    """The row algebra of node perturbation for `rows.interpret`: values are rows
    (1 + live, [n,] B, F), row 0 unperturbed, then per block of directions its K rows at
    z + eps u and its K rows at z - eps u (a block per LIF layer in layer scope, joining at
    that layer's Linear as copies of row 0; one block from the first Linear on in global
    scope). Every row steps the bare LIF dynamics (`neuron.lif_window` with no surrogate)."""

    window_steps = None

    def __init__(self, net, prefix: str, blocks, rows, *, draw, directions: int, scope: str,
                 epsilon: float):
        """`draw(like)`: `directions` noise rows (K, *like.shape) in like's dtype and device."""
        self.linears = [*net.linears, net.readout]
        self.draw, self.directions, layers = draw, directions, len(net.linears)
        pair = 2 * directions
        if scope == "layer":  # block k: the live rows of layer k's pairs
            self.blocks = [slice(k * pair, (k + 1) * pair) for k in range(layers)]
            self.pairs = self.blocks
            self.live = [pair * (k + 1) for k in range(layers)] + [pair * layers]
            self.spans = [slice(k * directions, (k + 1) * directions) for k in range(layers)]
        else:
            self.blocks = [slice(0, pair)]
            self.pairs = self.blocks * layers
            self.live = [pair] * (layers + 1)
            self.spans = [slice(0, directions)] * layers
        self.scale = epsilon * (float(net.lifs[0].p.v_th) if net.spiking else 1.0)
        self.decoded = DecodeFilter(net)
        self.sums: list[tuple[Tensor, Tensor] | None] = [None] * layers

    def linear(self, k: int, h: Tensor) -> Tensor:
        """Linear k of rows h (1 + live before k, [n,] B, in) into (1 + live after k, ...):
        the rows joining here copy row 0's current; a layer's block gets +-eps u."""
        layer, readout = self.linears[k], k == len(self.linears) - 1
        if readout:
            self.decoded.add(h[0])
        own = h.shape[0]
        out = h.new_empty(1 + self.live[k], *h.shape[1:-1], layer.out_features)
        torch.addmm(layer.bias, h.reshape(-1, h.shape[-1]), layer.weight.T,
                    out=out[:own].view(-1, layer.out_features))
        if out.shape[0] > own:
            out[own:] = out[0]
        if not readout:
            u = self.draw(out[0])
            start = 1 + self.pairs[k].start
            out[start:start + self.directions].add_(u, alpha=self.scale)
            out[start + self.directions:start + 2 * self.directions].sub_(u, alpha=self.scale)
            accumulate_noise(self.sums, k, h[0], u)
        return out

    def start(self, x: Tensor) -> Tensor:
        return x.unsqueeze(0)

    tanh = staticmethod(torch.tanh)

    @staticmethod
    def repeat(h: Tensor, n: int) -> Tensor:
        return h.unsqueeze(-3).expand(*h.shape[:-2], n, *h.shape[-2:])

    def neuron(self, k: int, layer, width: int):
        """Window of the neuron layer Linear k drives, from rest: LIF spikes or LI voltages."""
        readout, state = k == len(self.linears) - 1, None

        def window(x: Tensor) -> Tensor:
            nonlocal state
            if readout:
                v, state = li_window(x, state, layer.p, layer.dt)
                return v
            # the currents are this pass's own buffers (or the encoding's, which a
            # constant-in-time scan never writes): the window may overwrite them
            z, state, _ = lif_window(x, state, layer.p, layer.dt, None, overwrite=True)
            return z
        return window

    @staticmethod
    def window_sum(v: Tensor, first: int) -> Tensor:
        return v[..., first:, :, :].sum(-3)

    @staticmethod
    def add(total: Tensor | None, v: Tensor) -> Tensor:
        return v if total is None else total.add_(v)

    @staticmethod
    def divide(total: Tensor, n: int) -> Tensor:
        return total / n

    def finish(self, y: Tensor) -> Perturbed:
        """Row 0's output, and in place of tangent rows the central differences
        (y(+) - y(-)) / (2 eps), K per block, laid out as activity's rows."""
        k = self.directions
        differences = [(y[1 + b.start:1 + b.start + k] - y[1 + b.start + k:1 + b.stop])
                       / (2.0 * self.scale) for b in self.blocks]
        traced = Traced(y[0], torch.cat(differences), self.decoded.filtered, self.decoded.gain)
        return Perturbed(traced, [LayerNoise(span, *sums, self.directions)
                                  for span, sums in zip(self.spans, self.sums)])


class NodePerturbation(ActivityPerturbation):
    """Method keys scope, directions K (noise pairs per LIF layer, or per pass in global
    scope), distribution (of the noise), epsilon (required, in units of v_th) and hardware (the
    passes run by the integer emulator, `node_loop`; layer scope); the readout is exact. Noise
    is drawn as activity perturbation draws it (window by window, layer by layer, sub-network
    by sub-network), so a re-seeded generator replays an estimate, and the
    same seed draws activity perturbation's noise wherever the windows agree (the tanh twin)."""

    def __init__(self, method: dict, generator: torch.Generator):
        super().__init__(method, generator)
        if self.readout != "exact":
            raise ValueError(f"readout {self.readout!r}: node perturbation's readout is exact "
                             "(leave readout out, or set it to exact)")
        if "epsilon" not in method:
            raise ValueError("node perturbation needs epsilon, the noise scale in units of the "
                             "LIF threshold v_th")
        self.epsilon = float(method["epsilon"])
        if not self.epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {self.epsilon}")
        hardware = method.get("hardware")
        self.in_loop = None if hardware is None else InLoop(hardware)
        if self.in_loop is not None and self.scope != "layer":
            raise ValueError(f"method.scope {self.scope!r}: node perturbation in the loop "
                             "(method.hardware) runs in layer scope")

    @torch.no_grad()
    def passes(self, model: torch.nn.Module, inputs: tuple) -> dict[str, Perturbed]:
        """In the loop (method.hardware), the chip's passes (`node_loop`); else the float network's."""
        if self.in_loop is None:
            return super().passes(model, inputs)
        return emulated_passes(self.in_loop, model, inputs, self.draw, self.directions, self.epsilon)

    def plan(self):
        return partial(NodePlan, draw=self.draw, directions=self.directions, scope=self.scope,
                       epsilon=self.epsilon)

    def forward_passes(self, model: torch.nn.Module) -> float:
        """The unperturbed pass plus two per noise row (its +eps and -eps passes)."""
        return 1.0 + 2 * (super().forward_passes(model) - 1.0)
