"""Parameter groups by layer: the unit of the layer-wise ("layer" scope) estimators.

A layer is the module that owns a parameter (a Linear's weight and bias belong together); a
parameter owned directly by the model (a DeepONet's output bias) is a layer of its own.
"""

from collections import OrderedDict

import torch


def parameter_layers(model: torch.nn.Module) -> "OrderedDict[str, list[str]]":
    """Layer name -> names of its trainable parameters, in the model's parameter order."""
    layers: OrderedDict[str, list[str]] = OrderedDict()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            owner = name.rpartition(".")[0] or name
            layers.setdefault(owner, []).append(name)
    return layers
