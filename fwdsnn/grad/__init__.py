"""Gradient estimators; fwdsnn.registry names the class behind each method's ``estimator`` key."""

from fwdsnn.grad.base import Estimate, Estimator, mse

__all__ = ["Estimate", "Estimator", "mse"]
