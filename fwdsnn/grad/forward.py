"""Randomized forward-mode gradient (RFG): g = (1/K) sum_k (grad L . v_k) v_k.

Each directional derivative grad L . v_k comes from one forward-mode tangent of the network
(`fwdsnn.grad.tangents`), so the estimate needs no backward pass and no stored history. The
estimate is unbiased because E[v v^T] = I for standard Gaussian and Rademacher entries.
Scope "global": K directions over all parameters at once; "layer": K directions per layer,
each zero outside its layer — smaller random spaces, so each layer's estimate is less noisy
(cosine to the gradient ~ sqrt(K/d) with d the size of the space), at K tangents per layer.
`readout: exact` leaves the readout Linears and the model's scalars out of the directions and
gives them their exact gradient (`fwdsnn.grad.readout`); the default `perturbed` does not.
"""

import torch

from fwdsnn.grad.base import Estimate
from fwdsnn.grad.directions import DirectionalEstimator
from fwdsnn.grad.readout import propagate_traced, readout_parameters, readout_setting
from fwdsnn.grad.tangents import mse_tangent, propagate


class ForwardGradient(DirectionalEstimator):
    """RFG from one batched primal + tangent pass; the spike derivative is the surrogate the
    model's LIF layers carry. Directions are drawn layer by layer (one block in global scope),
    parameter by parameter in the model's order, K at a time, so a re-seeded generator
    replays them."""

    def __init__(self, method: dict, generator: torch.Generator):
        super().__init__(method, generator)
        self.readout = readout_setting(method, "perturbed")

    def estimate(self, model: torch.nn.Module, inputs: tuple, target: torch.Tensor) -> Estimate:
        params = dict(model.named_parameters())
        exact = set(readout_parameters(model)) if self.readout == "exact" else set()
        groups = [kept for kept in ([name for name in group if name not in exact]
                                    for group in self.groups(model)) if kept]
        # Layer scope: one block of K directions per layer, all in one pass; each block's
        # rows join the tangent batch at its own layer (earlier layers run primal-only).
        blocks = [self.draw_block(params, group) for group in groups]
        if exact:
            prediction, tangents, exact_grads = propagate_traced(model, inputs, blocks, target)
        else:
            (prediction, tangents), exact_grads = propagate(model, inputs, blocks), {}
        loss, slopes = mse_tangent(prediction, tangents, target)  # (N,) = grad L . v_n
        model.zero_grad(set_to_none=True)
        for name, grad in exact_grads.items():
            if params[name].requires_grad:
                params[name].grad = grad
        for block, block_slopes in zip(blocks, slopes.split(self.directions)):
            for name, v in block.items():
                params[name].grad = torch.tensordot(block_slopes, v, dims=1) / self.directions
        # Cost convention: the primal pass plus one forward-equivalent pass per tangent, so
        # global costs 1 + K and layer 1 + K * (number of layers). Wall time is lower (the
        # tangents share the primal's spikes and surrogate derivatives, and layer-scope rows
        # skip the layers before their own); the benchmarks measure it.
        return Estimate(loss=loss.item(), forward_passes=1.0 + len(slopes))
