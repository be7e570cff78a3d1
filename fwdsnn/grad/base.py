"""The estimator interface: every method trains with the same loop.

An estimator fills ``p.grad`` of every trainable parameter with its estimate of the gradient of
the batch loss (the mean squared error of ``model(*inputs)`` against ``target``), so any
optimiser (training uses fwdsnn.adam.Adam) can step on it, and reports what the step cost in forward-equivalent
passes (the currency in which forward-only training is cheap). Estimators get the batch, not a
loss closure, because forward-mode and perturbation estimators run their own passes.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Estimate:
    loss: float            # batch loss at the current parameters
    forward_passes: float  # forward-equivalent passes the step cost


class Estimator(ABC):
    """Turns a loss on a batch into per-parameter gradient estimates in ``p.grad``."""

    @abstractmethod
    def estimate(self, model: torch.nn.Module, inputs: tuple, target: torch.Tensor) -> Estimate:
        ...

    def generators(self) -> dict[str, torch.Generator]:
        """Random generators whose state a checkpoint must keep (none for exact gradients)."""
        return {}


def mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The training loss; shapes must match (broadcasting would silently pair every sample)."""
    if prediction.shape[-target.ndim:] != target.shape:
        raise ValueError(f"model output {tuple(prediction.shape)} does not match the target "
                         f"{tuple(target.shape)}")
    return torch.mean((prediction - target) ** 2, dim=tuple(range(-target.ndim, 0)))
