"""Gradient quality: how well each forward-only estimator points along the BPTT gradient.

For one network at its initial weights and one fixed training batch, the cosine between each
estimate and the exact gradient, per parameter layer (`fwdsnn.grad.layers`) and overall, over
many draws, for every number of directions K. Per layer, because the overall cosine is
dominated by the few parameters with the largest gradients (b0, the readout). Each method is
built with its own settings, as training builds it; only K is swept. Theory for K directions
over a space of d parameters: E[cos] ~ sqrt(K / d).

The classes come from the caller (the workflow resolves them in fwdsnn.registry), so a new
estimator is diagnosed with no edit here. The reference gradient is BPTT with the method's own
surrogate, except for Stein (the Gaussian of the same sigma, its expectation) and for
derivative-free methods, which use no spike derivative (the default fast-sigmoid BPTT).
"""

import logging

import numpy as np
import torch
import xarray as xr

from fwdsnn.data import make_problem
from fwdsnn.grad.backprop import Backprop
from fwdsnn.grad.layers import parameter_layers
from fwdsnn.snn.lif import LIFLayer
from fwdsnn.snn.models import build_model
from fwdsnn.snn.spike import make_surrogate

log = logging.getLogger(__name__)
# The schema's default surrogate (tests check it): the reference of derivative-free methods.
DERIVATIVE_FREE_REFERENCE = {"kind": "fast_sigmoid", "slope": 10.0}
GRADIENTS = ("surrogate", "derivative_free")  # what a diagnosed estimator differentiates


def reference_surrogate(method: dict, gradient: str) -> dict:
    """The surrogate whose BPTT gradient the method's estimates are compared with."""
    if gradient == "derivative_free":
        return DERIVATIVE_FREE_REFERENCE
    surrogate = method["surrogate"]
    if surrogate["kind"] == "stein":
        return {"kind": "gaussian", "sigma": surrogate["sigma"]}
    return surrogate


def _describe(surrogate: dict) -> str:
    scale = "slope" if surrogate["kind"] == "fast_sigmoid" else "sigma"
    return f"{surrogate['kind']} {scale}={surrogate[scale]:g}"


def _use_surrogate(model: torch.nn.Module, surrogate) -> None:
    for layer in model.modules():
        if isinstance(layer, LIFLayer):
            layer.surrogate = surrogate


def _grads(model: torch.nn.Module, layers: dict[str, list[str]]) -> list[np.ndarray]:
    """The gradient in ``p.grad``, flattened per layer (float64)."""
    params = dict(model.named_parameters())
    return [torch.cat([params[name].grad.reshape(-1) for name in names]).double().cpu().numpy()
            for names in layers.values()]


def _cosines(estimate: list[np.ndarray], exact: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """Per-layer cosines and the overall one (NaN where either vector is zero)."""
    def cos(a, b):
        norm = np.linalg.norm(a) * np.linalg.norm(b)
        return a @ b / norm if norm > 0 else np.nan
    return (np.array([cos(a, b) for a, b in zip(estimate, exact)]),
            cos(np.concatenate(estimate), np.concatenate(exact)))


def gradient_quality(reference: xr.Dataset, model_cfg: dict, methods: dict[str, dict],
                     estimators: dict[str, type], settings: dict, seed: int = 0,
                     dtype: torch.dtype = torch.float32) -> xr.Dataset:
    """Cosine to the BPTT gradient per method, K, parameter layer and draw.

    ``methods``: name -> {"method": its settings, "gradient": one of GRADIENTS, "directions":
    the K to sweep, a subset of ``settings["directions"]``} (fwdsnn.config.diagnosed_methods);
    ``estimators``: name -> its class, built as ``cls(settings, generator)``. ``settings``: the
    config's ``diagnostics`` block. A K a method does not sweep is NaN.
    """
    if not methods:
        raise ValueError("gradient_quality needs at least one method to diagnose")
    ks, draws = list(settings["directions"]), settings["draws"]
    for name, entry in methods.items():
        if entry["gradient"] not in GRADIENTS:
            raise ValueError(f"method {name!r}: gradient {entry['gradient']!r} is not one of {GRADIENTS}")
        if not set(entry["directions"]) <= set(ks):
            raise ValueError(f"method {name!r}: directions {entry['directions']} are not all in "
                             f"diagnostics.directions {ks}")
    torch.set_num_threads(1)
    problem = make_problem(reference, model_cfg["kind"]).to(torch.device("cpu"), dtype)
    torch.manual_seed(seed)
    model = build_model(model_cfg["kind"], problem.model_shapes(), model_cfg, None, True).to(dtype)
    index = problem.sample_batch(settings["batch"], torch.Generator().manual_seed(seed))
    inputs, target = problem.model_inputs("train", index), problem.targets("train", index)
    layers = parameter_layers(model)
    params = dict(model.named_parameters())
    sizes = np.array([sum(params[n].numel() for n in names) for names in layers.values()])
    shape = (len(methods), len(ks), draws)
    cosine, overall = np.full((*shape[:2], len(layers), draws), np.nan), np.full(shape, np.nan)
    exact_cache: dict[str, list[np.ndarray]] = {}
    references = []
    for i, (name, entry) in enumerate(methods.items()):
        method = entry["method"]
        surrogate_cfg = reference_surrogate(method, entry["gradient"])
        references.append(_describe(surrogate_cfg))
        if references[-1] not in exact_cache:
            _use_surrogate(model, make_surrogate(surrogate_cfg))
            Backprop().estimate(model, inputs, target)
            exact_cache[references[-1]] = _grads(model, layers)
        exact = exact_cache[references[-1]]
        # the method's own spike derivative, with training's noise seed (seed + 1)
        _use_surrogate(model, make_surrogate(method["surrogate"], torch.Generator().manual_seed(seed + 1)))
        for k, directions in enumerate(ks):
            if directions not in entry["directions"]:
                continue
            estimator = estimators[name]({**method, "directions": directions},
                                         torch.Generator().manual_seed(seed + 100 + k))
            for draw in range(draws):
                estimator.estimate(model, inputs, target)
                cosine[i, k, :, draw], overall[i, k, draw] = _cosines(_grads(model, layers), exact)
            log.info("%s K=%d: mean cosine %.3f overall, per layer %s", name, directions,
                     overall[i, k].mean(), np.round(cosine[i, k].mean(-1), 3).tolist())
    ks_array, d = np.asarray(ks), int(sizes.sum())
    unit = {"units": "1"}
    return xr.Dataset(
        {"cosine": (("method", "directions", "layer", "draw"), cosine,
                    {"long_name": "cosine between a layer's estimate and its BPTT gradient "
                                  "(NaN: K not swept for the method)", **unit}),
         "overall_cosine": (("method", "directions", "draw"), overall,
                            {"long_name": "overall cosine to the BPTT gradient", **unit}),
         "theory_layer": (("directions", "layer"), np.sqrt(ks_array[:, None] / sizes[None, :]),
                          {"long_name": "sqrt(K / d_l), expected cosine of K directions in a layer",
                           **unit}),
         "theory_global": ("directions", np.sqrt(ks_array / d),
                           {"long_name": "sqrt(K / d), expected cosine of K global directions",
                            **unit})},
        coords={"method": ("method", list(methods), {"long_name": "training method", **unit}),
                "estimator": ("method", [m["method"]["estimator"] for m in methods.values()],
                              {"long_name": "gradient estimator of the method", **unit}),
                "gradient": ("method", [m["gradient"] for m in methods.values()],
                             {"long_name": "what the estimator differentiates (surrogate: a spike "
                                           "derivative; derivative_free: loss values only)", **unit}),
                "reference": ("method", references,
                              {"long_name": "surrogate of the BPTT reference gradient", **unit}),
                "training_directions": ("method", [m["method"]["directions"] for m in methods.values()],
                                        {"long_name": "directions K the method trains with", **unit}),
                "directions": ("directions", ks_array, {"long_name": "random directions K", **unit}),
                "layer": ("layer", list(layers), {"long_name": "parameter layer", **unit}),
                "layer_parameters": ("layer", sizes, {"long_name": "parameters d_l of the layer", **unit}),
                "draw": ("draw", np.arange(draws), {"long_name": "independent draw", **unit})},
        attrs={"parameters": d})
