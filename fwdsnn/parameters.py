"""Parameters lent other values for the length of a block.

Both the weight average (evaluated in place of the iterates) and the in-the-loop estimator
(each perturbed weight set converted in turn) need a model that holds other weights for a
while and its own afterwards, even if the block raises.
"""

from collections.abc import Mapping
from contextlib import contextmanager

import torch
from torch import Tensor, nn


@contextmanager
def holding(params: Mapping[str, nn.Parameter], values: Mapping[str, Tensor]):
    """The parameters named in values hold those values inside the block, their own after it."""
    saved = {name: params[name].detach().clone() for name in values}
    try:
        with torch.no_grad():
            for name, value in values.items():
                params[name].copy_(value)
        yield
    finally:
        with torch.no_grad():
            for name, value in saved.items():
                params[name].copy_(value)
