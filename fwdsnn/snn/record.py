"""Spike trains of a float spiking model, recorded from its own forward pass.

Its own module so that training, which never needs it, does not depend on it (a change here
must not retrain the study)."""

import torch
from torch import Tensor

from fwdsnn.snn.models import SpikingModel, layer_name


def record_spikes(model: SpikingModel, inputs: tuple) -> dict[str, Tensor]:
    """Spike trains (steps, batch, n) of every LIF layer in one forward of a spiking model,
    named as in its spike log ('hidden0', 'branch.hidden1', ...): the float network's side of
    a comparison with the hardware emulator. The spike counts of the log would hide timing."""
    spikes, hooks = {}, []
    for subnet, net in model.subnets().items():
        for k, lif in enumerate(net.lifs):
            def keep(module, args, output, key=layer_name(subnet, f"hidden{k}")):
                spikes[key] = output[0].detach()
            hooks.append(lif.register_forward_hook(keep))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return spikes
