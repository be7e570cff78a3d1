"""Gradient estimators by the name a method's ``estimator`` key uses (see fwdsnn.estimators)."""

import importlib

import torch

from fwdsnn.estimators import ESTIMATORS, estimator_module
from fwdsnn.grad.base import Estimate, Estimator, mse

__all__ = ["Estimate", "Estimator", "make_estimator", "mse"]


def make_estimator(method: dict, generator: torch.Generator) -> Estimator:
    """The estimator a method config names; ``generator`` drives any random directions."""
    module = importlib.import_module(estimator_module(method["estimator"]))
    return getattr(module, ESTIMATORS[method["estimator"]][1])(method, generator)
