"""Weight averaging: an exponential moving average (EMA) of the optimiser's iterates.

A noisy gradient estimate leaves the iterates jittering around a minimum at a spread set by
the learning rate and the estimate's variance; their running average sits closer to the
minimum than any one iterate (Polyak averaging). The average never feeds back into the
steps, so training follows the same path with or without it: only what is evaluated and
written (the test errors of the history, model.nc, prediction.nc) are the averaged weights.

The decay at step t (0-based) is min(decay, (1 + t) / (10 + t)), so early steps, far from
the minimum, are forgotten fast instead of being kept in the average for ~1/(1-decay) steps.
"""

import torch
from torch import nn

from fwdsnn.parameters import holding


class WeightAverage:
    """The EMA of a model's parameters (`train.ema`, the decay; 0 switches it off)."""

    def __init__(self, model: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"train.ema {decay!r} must be in (0, 1) (0 switches averaging off)")
        self.decay = decay
        self.params = dict(model.named_parameters())
        self.average = {name: p.detach().clone() for name, p in self.params.items()}

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Fold in the parameters after optimiser step ``step`` (0-based)."""
        keep = min(self.decay, (1 + step) / (10 + step))
        for name, p in self.params.items():
            self.average[name].mul_(keep).add_(p.detach(), alpha=1 - keep)

    def applied(self):
        """Inside the block the model holds the averaged weights, its own again after it."""
        return holding(self.params, self.average)

    @torch.no_grad()
    def copy_into_model(self) -> None:
        for name, p in self.params.items():
            p.copy_(self.average[name])
