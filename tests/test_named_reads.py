"""Data are checked after the cast to float32 and again when read; every read of a stage's file
that is not what it needs fails naming the file and the variable, parameter or attribute."""

import re

import numpy as np
import pytest
import torch
import xarray as xr

from fwdsnn import io
from fwdsnn.config import target_params, validate_config
from fwdsnn.data import make_problem
from fwdsnn.metrics import metrics_run
from fwdsnn.reference import make_reference, write_reference
from fwdsnn.registry import estimator_class, family_module
from fwdsnn import train as train_stage
from fwdsnn.train import run_training
from fwdsnn.weights import load_model, load_parameters

SETTINGS = validate_config({
    "targets": {"p": {"family": "function", "expression": "x**2", "domain": [[-1, 1]]}},
    "models": {"mlp": {"kind": "spiking_mlp", "width": 8, "depth": 2, "steps": 4, "window": 2}},
    "methods": {"bp": {"estimator": "backprop"}},
    "train": {"steps": 4, "eval_every": 2, "checkpoint_every": 2, "batch": 8},
    "experiments": [{"target": "p", "model": "mlp", "methods": ["bp"]}],
})
HEAT = target_params("heat1d", nx=11, nt=6, n_sensors=11, fine_points=65, modes=16, n_train=4, n_test=2)


def function_target(expression):
    return target_params("function", expression=expression, domain=[[-1, 1]], n_train=64, n_test=32)


def outputs(directory):
    return {name: directory / f"{name}.nc" for name in ("model", "history", "prediction")}


def train(reference, directory):
    return run_training(reference, SETTINGS["models"]["mlp"], SETTINGS["methods"]["bp"],
                        SETTINGS["train"], seed=0, device="cpu", outputs=outputs(directory),
                        estimator=estimator_class("backprop"))


def rewrite(path, change):
    """Read a stage's file, change it, and write it back in place (keeping its stage)."""
    ds = io.read_dataset(path)
    ds = change(ds)
    io.write_dataset(ds, path, stage=ds.attrs["stage"], config={})
    return path


@pytest.fixture(scope="module")
def trained(parabola, tmp_path_factory):
    """model.nc, history.nc, prediction.nc of a tiny run, and a checkpoint it left on the way."""
    directory = tmp_path_factory.mktemp("run")
    save = train_stage.save_checkpoint

    class Killed(Exception):
        pass

    def save_then_stop(*args, **kwargs):
        save(*args, **kwargs)
        raise Killed  # a kill right after the first checkpoint: the file stays

    train_stage.save_checkpoint = save_then_stop
    try:
        with pytest.raises(Killed):
            train(parabola, directory)
    finally:
        train_stage.save_checkpoint = save
    checkpoint = directory / "checkpoint.nc"
    keep = tmp_path_factory.mktemp("kept") / "checkpoint.nc"
    keep.write_bytes(checkpoint.read_bytes())
    assert train(parabola, directory) == "completed"
    return {**outputs(directory), "checkpoint": keep}


def copy(path, tmp_path):
    dest = tmp_path / path.name
    dest.write_bytes(path.read_bytes())
    return dest


# --- the reference stage checks the stored (float32) values ---------------------------------

def test_overflow_in_the_stored_dtype_is_refused_naming_target_and_variable():
    with pytest.raises(FloatingPointError, match=r"target parabola: variable 'u': \d+ of 96 values overflow float32"):
        make_reference("parabola", function_target("exp(500*x)"), family_module("function"))


def test_underflow_to_all_zeros_is_refused():
    with pytest.raises(FloatingPointError, match="target tiny: variable 'u': every value underflows to zero"):
        make_reference("tiny", function_target("1e-50*x"), family_module("function"))


def test_a_target_that_is_zero_is_stored_as_zeros():
    ds = make_reference("zero", function_target("0*x"), family_module("function"))
    assert ds["u"].dtype == np.float32 and not np.any(ds["u"].values)


# --- reading data for training ------------------------------------------------------------------

@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_training_on_data_with_a_non_finite_u_fails_naming_file_and_variable(parabola, tmp_path, value):
    def poison(ds):
        ds["u"].values[3] = value
        return ds
    reference = rewrite(copy(parabola, tmp_path), poison)
    with pytest.raises(io.DatasetError, match=rf"^{reference}: variable 'u' holds 1 non-finite value"):
        train(reference, tmp_path / "run")
    assert not (tmp_path / "run" / "history.nc").exists()  # an error, not a "diverged" run


@pytest.fixture(scope="module")
def heat(tmp_path_factory):
    return write_reference("heat", HEAT, family_module("heat1d"), tmp_path_factory.mktemp("heat") / "heat.nc")


def test_operator_data_with_a_non_finite_input_fails_naming_file_and_variable(heat, tmp_path):
    def poison(ds):
        ds["a"].values[1, 2] = np.nan
        return ds
    reference = rewrite(copy(heat, tmp_path), poison)
    with pytest.raises(io.DatasetError, match=rf"^{reference}: variable 'a' holds 1 non-finite"):
        make_problem(io.read_dataset(reference), "spiking_seponet")


def test_operator_data_without_inputs_fail_naming_file_and_variable(heat, tmp_path):
    reference = rewrite(copy(heat, tmp_path), lambda ds: ds.drop_vars("a"))
    with pytest.raises(io.DatasetError, match=rf"^{reference}: missing variable\(s\) a "):
        make_problem(io.read_dataset(reference), "spiking_deeponet")


def test_clean_data_pass_the_read_checks(heat):
    assert make_problem(io.read_dataset(heat), "spiking_seponet").n_train == HEAT["n_train"]


# --- model.nc -----------------------------------------------------------------------------------

def first_parameter(ds):
    return next(name for name, var in ds.data_vars.items() if "parameter_name" in var.attrs)


def test_the_model_file_loads_as_written(trained):
    model, inputs, output = load_model(trained["model"])
    assert sum(p.numel() for p in model.parameters()) > 0 and "x" in inputs


def with_wrong_shape(ds, name):
    var = ds[name]
    return ds.drop_vars(name).assign({name: xr.Variable(
        tuple(f"{d}.wrong" for d in var.dims), np.zeros([n + 1 for n in var.shape]), var.attrs)})


def test_a_parameter_of_the_wrong_shape_is_named(trained, tmp_path):
    name = first_parameter(io.read_dataset(trained["model"]))
    path = rewrite(copy(trained["model"], tmp_path), lambda ds: with_wrong_shape(ds, name))
    with pytest.raises(io.DatasetError, match=rf"^{path}: parameter '{name}' has shape"):
        load_model(path)


def test_a_missing_parameter_is_named(trained, tmp_path):
    name = first_parameter(io.read_dataset(trained["model"]))
    path = rewrite(copy(trained["model"], tmp_path), lambda ds: ds.drop_vars(name))
    with pytest.raises(io.DatasetError, match=rf"^{path}: missing parameter variable\(s\) {name}"):
        load_model(path)


def test_an_unexpected_parameter_is_named(trained, tmp_path):
    def extra(ds):
        return ds.assign(spare=xr.Variable(("spare.axis0",), np.zeros(3), {
            "long_name": "network parameter", "units": "1", "parameter_name": "spare"}))
    path = rewrite(copy(trained["model"], tmp_path), extra)
    with pytest.raises(io.DatasetError, match=rf"^{path}: parameter variable\(s\) spare not in the model"):
        load_model(path)


@pytest.mark.parametrize("attr", ["model_json", "method_json", "shapes_json"])
def test_a_missing_settings_attribute_is_named(trained, tmp_path, attr):
    def drop(ds):
        del ds.attrs[attr]
        return ds
    path = rewrite(copy(trained["model"], tmp_path), drop)
    with pytest.raises(io.DatasetError, match=rf"^{path}: missing attribute\(s\) {attr}"):
        load_model(path)


@pytest.mark.parametrize("value, message", [
    ("{in_features: 1", "attribute 'shapes_json' is not valid JSON"),  # not JSON
    ('{"n_sensors": 3}', "model_json/method_json/shapes_json"),  # JSON, but of no model
])
def test_settings_that_describe_no_model_are_named(trained, tmp_path, value, message):
    def garble(ds):
        ds.attrs["shapes_json"] = value
        return ds
    path = rewrite(copy(trained["model"], tmp_path), garble)
    with pytest.raises(io.DatasetError, match=rf"^{path}: {re.escape(message)}"):
        load_model(path)


# --- history.nc and the checkpoint ----------------------------------------------------------

def test_a_history_without_status_is_named(trained, tmp_path):
    def drop(ds):
        del ds.attrs["status"]
        return ds
    history = rewrite(copy(trained["history"], tmp_path), drop)
    with pytest.raises(io.DatasetError, match=rf"^{history}: missing attribute\(s\) status"):
        metrics_run(history, trained["prediction"], tmp_path / "metrics.nc")


def checkpoint_model(trained):
    """A network of the run's architecture (built from its model.nc) to load checkpoints into."""
    return load_model(trained["model"])[0]


def test_the_checkpoint_loads_into_the_model(trained):
    load_parameters(checkpoint_model(trained), io.read_dataset(trained["checkpoint"]), "param.")


def test_a_checkpoint_parameter_of_the_wrong_shape_is_named(trained, tmp_path):
    name = next(n for n in io.read_dataset(trained["checkpoint"]).data_vars if n.startswith("param."))
    path = rewrite(copy(trained["checkpoint"], tmp_path), lambda ds: with_wrong_shape(ds, name))
    with pytest.raises(io.DatasetError, match=rf"^{path}: parameter '{re.escape(name)}' has shape"):
        load_parameters(checkpoint_model(trained), io.read_dataset(path), "param.")


def test_a_checkpoint_without_its_step_is_named_and_set_aside(trained, parabola, tmp_path, caplog):
    def drop(ds):
        del ds.attrs["next_step"]
        return ds
    path = rewrite(copy(trained["checkpoint"], tmp_path), drop)
    run = train_stage.build_run(io.read_dataset(parabola), SETTINGS["models"]["mlp"],
                                SETTINGS["methods"]["bp"], SETTINGS["train"], 0, torch.device("cpu"),
                                estimator_class("backprop"))
    attrs = io.read_dataset(path).attrs
    with caplog.at_level("WARNING"):
        history, step = train_stage.load_checkpoint(run, path, attrs["digest"], attrs["code_fingerprint"])
    assert step == 0 and not history.loss and not path.exists()
    assert f"checkpoint {path} is unusable" in caplog.text and "next_step" in caplog.text
