"""LIF neurons and the LI readout as Norse modules, with fwdsnn's spike in the LIF step.

Norse's `SNN` base class loops over time calling `self.activation(x_t, state, p, dt)`; the
layers here subclass Norse's `LIF` / `LI` and change only what must differ:
- the activations are `fwdsnn.snn.neuron`'s steps (for LIF: Norse's feed-forward step with
  `spike` as threshold), so the dynamics stay Norse's while forward-mode AD and vmap work;
- the initial state is `neuron.rest_state`: Norse's is float32 whatever the input dtype and sets
  `requires_grad=True` on v, which makes autograd record the whole run of any pass outside
  `torch.no_grad()` (forward-mode and perturbation passes included) and mixes dtypes in
  float64 models;
- the neuron constants (0-d tensors in `p`, not parameters) follow `.to()` / `.double()`.
"""

from contextlib import contextmanager

import torch
from torch import Tensor

from fwdsnn.snn.neuron import li_step, lif_step, rest_state
from fwdsnn.snn.norse_api import LI, LIF, LIFFeedForwardState, LIFParameters, LIState


class _AtRest:
    """Mixin for Norse time-major layers: rest state in the input's dtype, p follows .to()."""

    state_type: type

    def initial_state(self, input_tensor: Tensor):
        return rest_state(self.state_type, input_tensor[0], self.p)

    def _apply(self, fn, recurse=True):
        self.p = type(self.p)(*(fn(x) if isinstance(x, Tensor) else x for x in self.p))
        return super()._apply(fn, recurse)


class LIFLayer(_AtRest, LIF):
    """Norse `LIF` (input (T, B, F) currents -> spikes (T, B, F), final state) whose spike
    derivative is `self.surrogate` (None: the bare step, for derivative-free passes)."""

    state_type = LIFFeedForwardState

    def __init__(self, p: LIFParameters, surrogate, dt: float = 1e-3):
        super().__init__(p, dt=dt)
        self.surrogate = surrogate
        self.activation = self._step
        self.activation_sparse = None

    def _step(self, input_current, state, p, dt):
        return lif_step(input_current, state, p, dt, self.surrogate)


class LILayer(_AtRest, LI):
    """Norse `LI` readout (activation `li_step`, Norse's own step): (T, B, F) currents -> voltages."""

    state_type = LIState

    def __init__(self, p, dt: float = 1e-3):
        super().__init__(p, dt=dt)
        self.activation = li_step


@contextmanager
def bare_spikes(model: torch.nn.Module):
    """Within the block every LIF layer of model spikes without a surrogate: evaluation and
    derivative-free passes then skip the derivative (Stein's costs M threshold samples)."""
    layers = [m for m in model.modules() if isinstance(m, LIFLayer)]
    saved = [layer.surrogate for layer in layers]
    for layer in layers:
        layer.surrogate = None
    try:
        yield model
    finally:
        for layer, surrogate in zip(layers, saved):
            layer.surrogate = surrogate
