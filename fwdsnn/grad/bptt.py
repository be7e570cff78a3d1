"""Back-propagation through time with one adjoint per layer (`fwdsnn.snn.adjoint`): the
exact-gradient baseline at a cost that grows linearly in T. `backprop.Backprop` (Norse's
modules recorded step by step) stays as the reference it is tested against."""

import torch

from fwdsnn.grad.backprop import Backprop
from fwdsnn.grad.base import Estimate
from fwdsnn.snn.adjoint import adjoint_layers


class AdjointBackprop(Backprop):
    """`Backprop` with the model's LIF and LI layers swapped for their adjoint forms."""

    def estimate(self, model: torch.nn.Module, inputs: tuple, target: torch.Tensor) -> Estimate:
        with adjoint_layers(model):
            return super().estimate(model, inputs, target)
