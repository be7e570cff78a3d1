"""Randomized forward-mode gradient (RFG): g = (1/K) sum_k (grad L . v_k) v_k.

Each directional derivative grad L . v_k comes from one forward-mode tangent of the network
(`fwdsnn.grad.tangents`), so the estimate needs no backward pass and no stored history. The
estimate is unbiased because E[v v^T] = I for standard Gaussian and Rademacher entries.
Scope "global": K directions over all parameters at once; "layer": K directions per layer,
each zero outside its layer — smaller random spaces, so each layer's estimate is less noisy
(cosine to the gradient ~ sqrt(K/d) with d the size of the space), at K tangents per layer.
"""

import torch

from fwdsnn.grad.base import Estimate, Estimator
from fwdsnn.grad.layers import parameter_layers
from fwdsnn.grad.tangents import mse_tangent, propagate

SCOPES = ("global", "layer")
DISTRIBUTIONS = ("gaussian", "rademacher")


class ForwardGradient(Estimator):
    """RFG from one batched primal + tangent pass; method keys scope, directions,
    distribution; the spike derivative is the surrogate the model's LIF layers carry.

    Directions are drawn from `generator` layer by layer (one layer in global scope),
    parameter by parameter in the model's order, K at a time, so a re-seeded generator
    replays them."""

    def __init__(self, method: dict, generator: torch.Generator):
        self.scope, self.directions = method["scope"], int(method["directions"])
        self.distribution = method["distribution"]
        if self.scope not in SCOPES:
            raise ValueError(f"unknown scope {self.scope!r} (one of {SCOPES})")
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"unknown distribution {self.distribution!r} (one of {DISTRIBUTIONS})")
        if self.directions < 1:
            raise ValueError(f"directions must be at least 1, got {self.directions}")
        self.generator = generator

    def generators(self) -> dict[str, torch.Generator]:
        return {"directions": self.generator}

    def estimate(self, model: torch.nn.Module, inputs: tuple, target: torch.Tensor) -> Estimate:
        params = dict(model.named_parameters())
        groups = (list(parameter_layers(model).values()) if self.scope == "layer"
                  else [[name for name, p in params.items() if p.requires_grad]])
        # Layer scope: one block of K directions per layer, all in one pass; each block's
        # rows join the tangent batch at its own layer (earlier layers run primal-only).
        blocks = [{name: self._draw(params[name]) for name in group} for group in groups]
        prediction, tangents = propagate(model, inputs, blocks)
        loss, slopes = mse_tangent(prediction, tangents, target)  # (N,) = grad L . v_n
        model.zero_grad(set_to_none=True)
        for block, block_slopes in zip(blocks, slopes.split(self.directions)):
            for name, v in block.items():
                params[name].grad = torch.tensordot(block_slopes, v, dims=1) / self.directions
        # Cost convention: the primal pass plus one forward-equivalent pass per tangent, so
        # global costs 1 + K and layer 1 + K * (number of layers). Wall time is lower (the
        # tangents share the primal's spikes and surrogate derivatives, and layer-scope rows
        # skip the layers before their own); the benchmarks measure it.
        return Estimate(loss=loss.item(), forward_passes=1.0 + len(slopes))

    def _draw(self, p: torch.Tensor) -> torch.Tensor:
        """K directions for p (K, *p.shape), entries N(0, 1) or +-1, from the generator."""
        shape = (self.directions, *p.shape)
        device = self.generator.device
        if self.distribution == "gaussian":
            v = torch.randn(shape, generator=self.generator, dtype=p.dtype, device=device)
        else:
            bits = torch.randint(0, 2, shape, generator=self.generator, device=device)
            v = bits.to(p.dtype) * 2 - 1
        return v.to(p.device)
