"""Gradient quality: how well forward-gradient estimates point along the BPTT gradient.

For one network at its initial weights and one fixed training batch, the cosine between each
estimate and the exact surrogate gradient, over many draws, for every number of directions K,
global vs layer scope, and fast-sigmoid vs Stein spike derivatives. Theory for global scope:
E[cos] ~ sqrt(K / d) for d parameters. The Stein estimate is compared with the BPTT gradient of
the Gaussian surrogate of the same sigma, which is its expectation.
"""

import logging

import numpy as np
import torch
import xarray as xr

from fwdsnn.data import make_problem
from fwdsnn.grad.backprop import Backprop
from fwdsnn.grad.forward import ForwardGradient
from fwdsnn.snn.lif import LIFLayer
from fwdsnn.snn.models import build_model
from fwdsnn.snn.spike import make_surrogate

log = logging.getLogger(__name__)
SURROGATES = {"fast_sigmoid": ({"kind": "fast_sigmoid", "slope": 10.0}, {"kind": "fast_sigmoid", "slope": 10.0}),
              "stein": ({"kind": "stein", "sigma": 0.3, "samples": 4}, {"kind": "gaussian", "sigma": 0.3})}
SCOPES = ("global", "layer")


def _use_surrogate(model: torch.nn.Module, surrogate) -> None:
    for layer in model.modules():
        if isinstance(layer, LIFLayer):
            layer.surrogate = surrogate


def _flat_grad(model: torch.nn.Module) -> np.ndarray:
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double().numpy()


def gradient_quality(reference: xr.Dataset, model_cfg: dict, settings: dict, seed: int = 0) -> xr.Dataset:
    """Cosine to the BPTT gradient per surrogate, scope, K and draw."""
    torch.set_num_threads(1)
    problem = make_problem(reference, model_cfg["kind"])
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_model(model_cfg["kind"], problem.model_shapes(), model_cfg, None, True)
    index = problem.sample_batch(settings["batch"], generator)
    inputs, target = problem.model_inputs("train", index), problem.targets("train", index)
    d = sum(p.numel() for p in model.parameters())
    ks, draws = settings["directions"], settings["draws"]
    cosine = np.empty((len(SURROGATES), len(SCOPES), len(ks), draws))
    for i, (name, (estimate_cfg, reference_cfg)) in enumerate(SURROGATES.items()):
        _use_surrogate(model, make_surrogate(reference_cfg))
        Backprop().estimate(model, inputs, target)
        exact = _flat_grad(model)
        _use_surrogate(model, make_surrogate(estimate_cfg, torch.Generator().manual_seed(seed + 1)))
        for j, scope in enumerate(SCOPES):
            for k, directions in enumerate(ks):
                method = {"estimator": "forward", "scope": scope, "directions": directions,
                          "distribution": "gaussian"}
                estimator = ForwardGradient(method, torch.Generator().manual_seed(seed + 100 * k + j))
                for draw in range(draws):
                    estimator.estimate(model, inputs, target)
                    g = _flat_grad(model)
                    cosine[i, j, k, draw] = g @ exact / (np.linalg.norm(g) * np.linalg.norm(exact))
                log.info("%s %s K=%d: mean cosine %.3f", name, scope, directions, cosine[i, j, k].mean())
    ks_array = np.asarray(ks)
    return xr.Dataset(
        {"cosine": (("surrogate", "scope", "directions", "draw"), cosine,
                    {"long_name": "cosine between estimate and BPTT gradient", "units": "1"}),
         "theory_global": ("directions", np.sqrt(ks_array / d),
                           {"long_name": "sqrt(K / d), expected cosine of global directions", "units": "1"})},
        coords={"surrogate": ("surrogate", list(SURROGATES), {"long_name": "spike derivative", "units": "1"}),
                "scope": ("scope", list(SCOPES), {"long_name": "direction scope", "units": "1"}),
                "directions": ("directions", ks_array, {"long_name": "random directions K", "units": "1"}),
                "draw": ("draw", np.arange(draws), {"long_name": "independent draw", "units": "1"})},
        attrs={"parameters": d})
