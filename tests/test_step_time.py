"""The step-time benchmark: every method of each model's first experiment, bp-norse beside bp."""

import numpy as np

from fwdsnn import io
from fwdsnn.config import step_time_runs, validate_config
from fwdsnn.reference import write_reference
from fwdsnn.registry import estimator_class, family_module
from fwdsnn.step_time import step_time

CONFIG = validate_config({
    "targets": {"p": {"family": "function", "expression": "x**2", "domain": [[-1, 1]],
                      "n_train": 16, "n_test": 8},
                "q": {"family": "function", "expression": "x", "domain": [[-1, 1]],
                      "n_train": 16, "n_test": 8}},
    "models": {"mlp": {"kind": "spiking_mlp", "width": 8, "depth": 2, "steps": 4, "window": 4}},
    "methods": {"bp": {"estimator": "backprop"},
                "rfg": {"estimator": "forward", "scope": "layer", "directions": 1}},
    "train": {"batch": 8},
    "experiments": [{"target": "p", "model": "mlp", "methods": ["bp", "rfg"],
                     "train": {"methods": {"rfg": {"batch": 4}}}},
                    {"target": "q", "model": "mlp", "methods": ["bp"]}],
})


def test_first_experiment_of_each_model_with_its_own_settings():
    runs = step_time_runs(CONFIG)
    assert list(runs) == ["mlp"] and runs["mlp"]["target"] == "p"
    methods = runs["mlp"]["methods"]
    assert list(methods) == ["bp", "rfg", "bp-norse"]
    assert methods["bp-norse"][0]["estimator"] == "backprop-norse"
    assert [train["batch"] for _, train in methods.values()] == [8, 4, 8]


def test_step_time_dataset(tmp_path):
    reference = write_reference("p", CONFIG["targets"]["p"], family_module("function"), tmp_path / "p.nc")
    estimators = {name: estimator_class(name) for name in ("backprop", "backprop-norse", "forward")}
    ds = step_time(step_time_runs(CONFIG), {"p": reference}, repeats=1, estimators=estimators)
    assert list(ds["estimator"].values) == ["bp", "rfg", "bp-norse"]
    assert ds["step_time"].dims == ("estimator", "model")
    assert np.all(ds["step_time"].values > 0)
    assert ds["batch"].sel(estimator="rfg", model="mlp") == 4
    assert io.measurement_variables(ds) == {"step_time": "timing", "norse_to_bp": "timing"}
    ratio = ds["step_time"].sel(estimator="bp-norse") / ds["step_time"].sel(estimator="bp")
    np.testing.assert_allclose(ds["norse_to_bp"], ratio)
