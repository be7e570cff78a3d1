"""Gradient diagnostics: per-layer cosines to BPTT for every forward-only method of an experiment."""

import copy

import numpy as np
import pytest
import torch

import fwdsnn.config
from fwdsnn import io, registry
from fwdsnn.artifacts import DIAGNOSTICS
from fwdsnn.config import diagnosed_methods, load_schema, validate_config
from fwdsnn.diagnostics import DERIVATIVE_FREE_REFERENCE, GRADIENTS, gradient_quality
from fwdsnn.grad.backprop import Backprop
from fwdsnn.grad.base import Estimator
from fwdsnn.reference import read_reference
from fwdsnn.registry import ESTIMATOR_GRADIENT, ESTIMATORS, estimator_class, estimator_gradient

METHODS = {
    "ann": {"estimator": "backprop", "spiking": False},
    "bp": {"estimator": "backprop"},
    "rfg-global": {"estimator": "forward", "scope": "global", "directions": 4},
    "rfg-layer": {"estimator": "forward", "scope": "layer"},
    "rfg-exact": {"estimator": "forward", "scope": "layer", "readout": "exact"},
    "rfg-stein": {"estimator": "forward", "surrogate": {"kind": "stein", "samples": 4}},
    "wp": {"estimator": "perturbation", "directions": 1},
    "ap": {"estimator": "activity"},
}
CONFIG = {
    "targets": {"p": {"family": "function", "expression": "x**2", "domain": [[-1, 1]]}},
    "models": {"mlp": {"kind": "spiking_mlp", "width": 8, "depth": 2, "steps": 8, "window": 4}},
    "methods": METHODS,
    "experiments": [{"target": "p", "model": "mlp", "methods": list(METHODS),
                     "method_overrides": {"wp": {"directions": 4}}}],
    "diagnostics": {"batch": 16, "directions": [1, 4, 16], "draws": 24},
}


def stage(config: dict, reference, **extra):
    """The workflow script's path: names resolved in the registry, classes handed to the stage."""
    methods = diagnosed_methods(config)["p/mlp"]
    return gradient_quality(read_reference(reference), config["models"]["mlp"], methods,
                            {n: estimator_class(m["method"]["estimator"]) for n, m in methods.items()},
                            config["diagnostics"], dtype=torch.float64, **extra)


@pytest.fixture(scope="module")
def quality(parabola):
    return stage(validate_config(CONFIG), parabola)


def test_every_forward_only_spiking_method_is_diagnosed(quality):
    config = validate_config(CONFIG)
    expected = [m for m in METHODS if m not in ("ann", "bp")]  # exact, or no spikes
    assert list(diagnosed_methods(config)["p/mlp"]) == expected
    assert list(quality.method.values) == expected
    assert not np.isnan(quality.overall_cosine.sel({"method": expected}).sel(directions=1)).any()


def test_a_method_trained_in_the_loop_is_not_diagnosed():
    """Its estimate is of the emulator's loss, which has no BPTT gradient to compare with."""
    config = copy.deepcopy(CONFIG)
    config["methods"]["wp-loop"] = {**METHODS["wp"], "epsilon": 2.0, "hardware": {"bits": 8}}
    config["experiments"][0]["methods"].append("wp-loop")
    assert "wp-loop" not in diagnosed_methods(validate_config(config))["p/mlp"]


def test_an_exact_readout_layer_has_cosine_one(quality):
    exact = quality.cosine.sel({"method": "rfg-exact", "layer": "readout"})
    np.testing.assert_allclose(exact, 1.0, atol=1e-10)
    perturbed = quality.cosine.sel({"method": "rfg-layer", "layer": "readout"}).sel(directions=1)
    assert (np.abs(perturbed - 1) > 1e-3).all()


def test_layer_scope_cosine_grows_as_sqrt_k_over_layer_size(quality):
    mean = quality.cosine.sel({"method": "rfg-layer"}).mean("draw")
    d = quality.layer_parameters
    # E[cos] of K Gaussian directions in d_l dimensions is ~ sqrt(K / (K + d_l)) ~ sqrt(K / d_l)
    ratio = mean / np.sqrt(quality.directions / (quality.directions + d))
    assert ((ratio > 0.6) & (ratio < 1.3)).all(), ratio.values
    assert (mean.diff("directions") > 0).all()
    np.testing.assert_allclose(quality.theory_layer, np.sqrt(quality.directions / d))


def test_coordinates_attributes_and_references(quality, tmp_path):
    assert quality.cosine.dims == ("method", "directions", "layer", "draw")
    assert quality.overall_cosine.dims == ("method", "directions", "draw")
    for name in [*quality.data_vars, *quality.coords]:
        assert {"long_name", "units"} <= set(quality[name].attrs), name
    assert quality.attrs["parameters"] == int(quality.layer_parameters.sum())
    assert list(quality.directions.values) == CONFIG["diagnostics"]["directions"]
    assert set(quality.gradient.values) <= set(GRADIENTS)
    wp = quality.sel({"method": "wp"})
    assert (wp.gradient, wp.estimator, wp.training_directions) == ("derivative_free", "perturbation", 4)
    assert wp.reference == "fast_sigmoid slope=10"
    # a derivative-free method's K above its training K is not swept
    assert np.isnan(wp.cosine.sel(directions=16)).all() and not np.isnan(wp.cosine.sel(directions=4)).any()
    assert quality.sel({"method": "rfg-stein"}).reference == "gaussian sigma=0.3"
    assert quality.sel({"method": "rfg-layer"}).reference == "fast_sigmoid slope=10"
    path = tmp_path / "gradient_quality.nc"
    io.write_dataset(quality, path, stage=DIAGNOSTICS.stage, config=CONFIG, seed=0, inputs=[])
    back = io.read_artifact(path, DIAGNOSTICS)
    np.testing.assert_array_equal(back.cosine, quality.cosine)
    assert list(back.method.values) == list(quality.method.values)


def test_the_derivative_free_reference_is_the_schema_default_surrogate():
    default = validate_config(CONFIG)["methods"]["wp"]["surrogate"]
    assert {key: default[key] for key in DERIVATIVE_FREE_REFERENCE} == DERIVATIVE_FREE_REFERENCE


def test_every_estimator_states_what_it_estimates():
    assert sorted(ESTIMATOR_GRADIENT) == sorted(ESTIMATORS)
    assert set(ESTIMATOR_GRADIENT.values()) <= {"exact", *GRADIENTS}
    with pytest.raises(ValueError, match="unknown estimator 'adjoint'"):
        estimator_gradient("adjoint")


class Reversed(Estimator):
    """A test estimator: minus the BPTT gradient of the model's own surrogate."""

    def __init__(self, method, generator):
        pass

    def estimate(self, model, inputs, target):
        estimate = Backprop().estimate(model, inputs, target)
        for p in model.parameters():
            p.grad.neg_()
        return estimate


def test_a_registered_estimator_is_diagnosed_with_no_edit_to_the_stage(parabola, monkeypatch):
    monkeypatch.setitem(registry.ESTIMATORS, "reversed", f"{__name__}:Reversed")
    monkeypatch.setitem(registry.ESTIMATOR_GRADIENT, "reversed", "surrogate")
    monkeypatch.setitem(registry.ESTIMATOR_MEMORY, "reversed", registry.ESTIMATOR_MEMORY["backprop"])
    schema = load_schema()
    schema["$defs"]["method"]["properties"]["estimator"]["enum"].append("reversed")
    monkeypatch.setattr(fwdsnn.config, "_parsed_schema", lambda: schema)
    config = {**CONFIG, "methods": {"bp": {"estimator": "backprop"}, "rev": {"estimator": "reversed"}},
              "experiments": [{"target": "p", "model": "mlp", "methods": ["bp", "rev"]}],
              "diagnostics": {"batch": 8, "directions": [1, 2], "draws": 2}}
    quality = stage(validate_config(config), parabola)
    assert list(quality.method.values) == ["rev"]
    np.testing.assert_allclose(quality.cosine, -1.0, atol=1e-12)


def test_adding_a_method_changes_only_its_experiments_diagnostics():
    two = {**CONFIG, "targets": {**CONFIG["targets"], "q": CONFIG["targets"]["p"]},
           "experiments": [{"target": "p", "model": "mlp", "methods": ["bp", "rfg-layer"]},
                           {"target": "q", "model": "mlp", "methods": ["bp", "rfg-layer"]}]}
    before = diagnosed_methods(validate_config(two))
    two["experiments"][1]["methods"].append("wp")
    after = diagnosed_methods(validate_config(two))
    assert after["p/mlp"] == before["p/mlp"]
    assert list(after["q/mlp"]) == ["rfg-layer", "wp"]
    assert after["q/mlp"]["wp"]["method"] == validate_config(two)["methods"]["wp"]
    assert after["q/mlp"]["wp"]["directions"] == [1]  # a derivative-free method: up to its K
