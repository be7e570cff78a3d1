"""The estimator interface: every method trains with the same loop.

An estimator fills ``p.grad`` of every trainable parameter with its estimate of the gradient of
the batch loss, so any ``torch.optim`` optimiser can step on it, and reports what the step cost
in forward-equivalent passes (the currency in which forward-only training is cheap).
"""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch

LossFn = Callable[[torch.nn.Module], torch.Tensor]


@dataclass(frozen=True)
class Estimate:
    loss: float            # batch loss at the current parameters
    forward_passes: float  # forward-equivalent passes the step cost


class Estimator(ABC):
    """Turns a loss on a batch into per-parameter gradient estimates in ``p.grad``."""

    @abstractmethod
    def estimate(self, model: torch.nn.Module, loss_fn: LossFn) -> Estimate:
        ...

    def generators(self) -> dict[str, torch.Generator]:
        """Random generators whose state a checkpoint must keep (none for exact gradients)."""
        return {}
