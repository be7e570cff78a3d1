"""Spike trains of a float spiking model, recorded from its own forward pass.

Its own module so that training, which never needs it, does not depend on it (a change here
must not retrain the study)."""

import torch
from torch import Tensor, nn

from fwdsnn.snn.models import SpikingMLP


def record_spikes(model: nn.Module, inputs: tuple) -> dict[str, Tensor]:
    """Spike trains (steps, batch, n) of every LIF layer in one forward of a spiking model,
    named as in its spike log ('hidden0', 'branch.hidden1', ...): the float network's side of
    a comparison with the hardware emulator. The spike counts of the log would hide timing."""
    nets = {"": model} if isinstance(model, SpikingMLP) else {f"{n}.": net for n, net in model._subnets().items()}
    spikes, hooks = {}, []
    for prefix, net in nets.items():
        for k, lif in enumerate(net.lifs):
            def keep(module, args, output, key=f"{prefix}hidden{k}"):
                spikes[key] = output[0].detach()
            hooks.append(lif.register_forward_hook(keep))
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return spikes
