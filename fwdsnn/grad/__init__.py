"""Gradient estimators by the name a method's ``estimator`` key uses."""

import torch

from fwdsnn.grad.backprop import Backprop
from fwdsnn.grad.base import Estimate, Estimator, mse
from fwdsnn.grad.forward import ForwardGradient
from fwdsnn.grad.perturbation import WeightPerturbation

__all__ = ["Estimate", "Estimator", "make_estimator", "mse"]

ESTIMATORS = {
    "backprop": lambda method, generator: Backprop(),
    "forward": ForwardGradient,
    "perturbation": WeightPerturbation,
}


def make_estimator(method: dict, generator: torch.Generator) -> Estimator:
    """The estimator a method config names; ``generator`` drives any random directions."""
    try:
        factory = ESTIMATORS[method["estimator"]]
    except KeyError:
        raise ValueError(f"unknown estimator {method['estimator']!r}; "
                         f"known: {', '.join(ESTIMATORS)}") from None
    return factory(method, generator)
