"""Back-propagation (through time, through the spike's surrogate): the exact-gradient baseline."""

import torch

from fwdsnn.grad.base import Estimate, Estimator, mse

# One forward pass plus a backward pass that costs about two more (Baydin et al. 2022).
BACKPROP_PASSES = 3.0


class Backprop(Estimator):
    def __init__(self, method: dict | None = None, generator: torch.Generator | None = None):
        """Built like every estimator, from (method, generator); BPTT needs neither."""

    def estimate(self, model: torch.nn.Module, inputs: tuple, target: torch.Tensor) -> Estimate:
        model.zero_grad(set_to_none=True)
        loss = mse(model(*inputs), target)
        loss.backward()
        return Estimate(loss=loss.item(), forward_passes=BACKPROP_PASSES)
