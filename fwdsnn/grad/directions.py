"""Random directions, the common ground of the forward-gradient and perturbation estimators.

Both estimate g = (1/K) sum_k (grad L . v_k) v_k and differ only in how they obtain
grad L . v_k; the scope (which parameters a direction spans), K, the distribution of the
entries and the generator that a checkpoint must keep live here once.

A block of one element (a DeepONet's scalar b0 in layer scope) is always drawn +-1: both are
unbiased (E v^2 = 1), but with v = +-1 the estimate (g v) v is g itself, where a Gaussian v
adds the variance of v^2 (E v^4 = 3 against 1). Larger blocks follow `distribution`.
"""

import torch

from fwdsnn.grad.base import Estimator
from fwdsnn.grad.layers import parameter_layers

SCOPES = ("global", "layer")
DISTRIBUTIONS = ("gaussian", "rademacher")


class DirectionalEstimator(Estimator):
    """Method keys scope (global | layer), directions K, distribution (gaussian | rademacher)."""

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

    def groups(self, model: torch.nn.Module) -> list[list[str]]:
        """Parameter names each block of K directions spans: all of them, or one layer each."""
        layers = list(parameter_layers(model).values())
        return layers if self.scope == "layer" else [[name for names in layers for name in names]]

    def draw_block(self, params: dict[str, torch.Tensor], names: list[str]) -> dict[str, torch.Tensor]:
        """K directions for each parameter of one block, in the order of `names`: +-1 where
        the block has one element, else as `distribution` says."""
        signs = sum(params[name].numel() for name in names) == 1
        return {name: self.draw(params[name], signs=signs) for name in names}

    def draw(self, parameter: torch.Tensor, signs: bool = False) -> torch.Tensor:
        """K directions (K, *shape), entries N(0, 1) or +-1 (always +-1 with `signs`), drawn on
        the generator's device (so a re-seeded generator replays them) and moved to the
        parameter's."""
        shape = (self.directions, *parameter.shape)
        device = self.generator.device
        if self.distribution == "gaussian" and not signs:
            v = torch.randn(shape, generator=self.generator, dtype=parameter.dtype, device=device)
        else:
            bits = torch.randint(0, 2, shape, generator=self.generator, device=device)
            v = bits.to(parameter.dtype) * 2 - 1
        return v.to(parameter.device)
