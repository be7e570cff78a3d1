"""Random directions, the common ground of the forward-gradient and perturbation estimators.

Both estimate g = (1/K) sum_k (grad L . v_k) v_k and differ only in how they obtain
grad L . v_k; the scope (which parameters a direction spans), K, the distribution of the
entries and the generator that a checkpoint must keep live here once.
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

    def draw(self, parameter: torch.Tensor) -> torch.Tensor:
        """K directions (K, *shape), entries N(0, 1) or +-1, drawn on the generator's device
        (so a re-seeded generator replays them) and moved to the parameter's."""
        shape = (self.directions, *parameter.shape)
        device = self.generator.device
        if self.distribution == "gaussian":
            v = torch.randn(shape, generator=self.generator, dtype=parameter.dtype, device=device)
        else:
            bits = torch.randint(0, 2, shape, generator=self.generator, device=device)
            v = bits.to(parameter.dtype) * 2 - 1
        return v.to(parameter.device)
