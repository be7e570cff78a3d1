"""Fine-tuning in the loop (fwdsnn.finetune): from a trained run's float weights, the outputs
are the tuned network's fixed-point file and its emulation, exactly as the hardware stage would
write them for those weights; the kept weights never have a higher emulated training loss than
the trained ones; a diverged run gets placeholders; the same seed gives the same network; the
config block is checked before any job, naming its key."""

import copy

import numpy as np
import pytest
import torch

from fwdsnn import io
from fwdsnn.artifacts import MODEL
from fwdsnn.config import (ConfigError, finetune_settings, finetuned_runs, untrained_finetune_runs,
                           validate_config)
from fwdsnn.data import make_problem
from fwdsnn.finetune import run_finetune
from fwdsnn.grad.emulated import InLoop
from fwdsnn.grad.perturbation import WeightPerturbation
from fwdsnn.hardware.convert import convert_run
from fwdsnn.hardware.emulator import emulate_run
from fwdsnn.weights import load_model
from test_train import SETTINGS, train

BITS = 4
FINETUNE = {"method": "loop", "bits": [BITS], "train": {"steps": 6, "lr": 3.0e-3, "eval_every": 3,
                                                         "checkpoint_every": 3},
            "runs": [{"target": "p", "model": "mlp", "methods": ["bp"]}]}
STUDY = {**{k: v for k, v in SETTINGS.items() if k in ("targets", "models", "train", "experiments")},
         "seeds": [0, 1],
         "methods": {**{k: v for k, v in SETTINGS["methods"].items()},
                     "loop": {"estimator": "perturbation", "scope": "global", "directions": 2,
                              "epsilon": 1.0, "hardware": {"bits": 8}}},
         "hardware": {"bits": [4, 16], "finetune": FINETUNE}}


def paths(directory):
    return {name: directory / f"{name}_w{BITS}_tuned.nc" for name in ("model", "history", "fixed", "emulated")}


@pytest.fixture(scope="module")
def trained(parabola, tmp_path_factory):
    directory = tmp_path_factory.mktemp("run")
    status, _ = train(parabola, directory, steps=60, eval_every=30)
    assert status == "completed"
    return directory / "model.nc"


def finetune(parabola, model, directory, seed=0):
    settings = finetune_settings(validate_config(STUDY), "p", "mlp", "bp", BITS)
    status = run_finetune(model, parabola, BITS, settings, seed, paths(directory), WeightPerturbation)
    return status, {name: io.read_dataset(path) for name, path in paths(directory).items()}


@pytest.fixture(scope="module")
def tuned(parabola, trained, tmp_path_factory):
    return finetune(parabola, trained, tmp_path_factory.mktemp("tuned"))


def emulated_training_loss(model_path, parabola) -> float:
    model, _, _ = load_model(model_path)
    problem = make_problem(io.read_dataset(parabola), "spiking_mlp")
    index = torch.arange(problem.n_train)
    return float(InLoop({"bits": BITS}).losses(model, problem.model_inputs("train", index),
                                                     problem.targets("train", index), [])[0])


def test_the_settings_are_the_runs_own_with_the_finetune_overrides_at_the_jobs_bits():
    config = validate_config(STUDY)
    settings = finetune_settings(config, "p", "mlp", "bp", 3)
    assert settings["method"]["hardware"]["bits"] == 3 and settings["method"]["scope"] == "global"
    assert settings["train"]["batch"] == SETTINGS["train"]["batch"] and settings["train"]["steps"] == 6
    assert settings["model"] == config["models"]["mlp"]
    assert finetuned_runs(config) == ["p/mlp/bp/s0", "p/mlp/bp/s1"]


def test_the_outputs_are_the_hardware_stages_files_of_the_tuned_weights(parabola, tuned, tmp_path):
    status, files = tuned
    assert status == "completed"
    assert files["history"].sizes["step"] == FINETUNE["train"]["steps"]
    assert files["history"]["forward_passes"].values[-1] == 6 * (1 + 2 * 2)  # emulator passes
    assert files["model"].attrs["selected_step"] in (0, 6)
    # the same conversion and emulation of the kept weights, done here, give the same files
    model_path = tmp_path / "model.nc"
    io.write_dataset(files["model"], model_path, stage=MODEL.stage, config={})
    convert_run(model_path, BITS, tmp_path / "fixed.nc")
    emulate_run(model_path, [(tmp_path / "fixed.nc", tmp_path / "emulated.nc")], parabola)
    again = io.read_dataset(tmp_path / "emulated.nc")
    np.testing.assert_array_equal(again["u_pred"].values, files["emulated"]["u_pred"].values)
    assert files["emulated"].attrs["weight_bits"] == BITS


def test_the_kept_weights_never_have_a_higher_emulated_training_loss(parabola, trained, tuned, tmp_path):
    _, files = tuned
    io.write_dataset(files["model"], tmp_path / "kept.nc", stage=MODEL.stage, config={})
    assert emulated_training_loss(tmp_path / "kept.nc", parabola) <= emulated_training_loss(trained, parabola)


def test_the_same_seed_gives_the_same_network_and_another_seed_another(parabola, trained, tuned, tmp_path):
    _, files = tuned
    _, again = finetune(parabola, trained, tmp_path / "again")
    for name, var in files["model"].data_vars.items():
        np.testing.assert_array_equal(var.values, again["model"][name].values)
    np.testing.assert_array_equal(files["history"]["loss"].values, again["history"]["loss"].values)
    _, other = finetune(parabola, trained, tmp_path / "other", seed=1)
    assert not np.array_equal(files["history"]["loss"].values, other["history"]["loss"].values)


def test_a_diverged_run_gets_placeholders_that_say_so(parabola, tmp_path):
    status, _ = train(parabola, tmp_path / "run", lr=1e30)
    assert status == "diverged"
    status, files = finetune(parabola, tmp_path / "run" / "model.nc", tmp_path / "tuned")
    assert status == "diverged"
    for name in ("fixed", "emulated", "history", "model"):
        assert files[name].attrs["status"] == "diverged", name


def change(path: str, value):
    config = copy.deepcopy(STUDY)
    *parents, leaf = path.split(".")
    node = config
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(leaf) if isinstance(node, list) else leaf] = value
    return config


@pytest.mark.parametrize("path, value, message", [
    ("hardware.finetune.method", "absent", "config key 'hardware.finetune.method': 'absent' is not defined"),
    ("hardware.finetune.method", "bp", "config key 'hardware.finetune.method': 'bp' must be weight or node perturbation"),
    ("hardware.finetune.bits", [6], "config key 'hardware.finetune.bits': [6] not in hardware.bits"),
    ("hardware.finetune.runs.0.methods", ["stein", "x"], "config key 'hardware.finetune.runs.0.methods': 'x'"),
    ("hardware.finetune.runs.0.model", "absent", "config key 'hardware.finetune.runs.0.model': 'absent' is not defined under models"),
    ("hardware.finetune.runs.0.target", "absent", "config key 'hardware.finetune.runs.0.target': 'absent' is not defined under targets"),
    ("hardware.finetune.train", {"steps": 0}, "config key 'hardware.finetune.train.steps'"),
    ("hardware.finetune.runs.0", {"target": "p", "model": "mlp"}, "'methods' is a required property"),
])
def test_bad_finetune_settings_fail_naming_the_key(path, value, message):
    with pytest.raises(ConfigError) as err:
        validate_config(change(path, value))
    assert message in str(err.value)


def test_runs_without_a_method_fail_and_no_runs_need_none():
    config = copy.deepcopy(STUDY)
    del config["hardware"]["finetune"]["method"]
    with pytest.raises(ConfigError, match="'method' is a required property"):
        validate_config(config)
    config["hardware"]["finetune"]["runs"] = []
    assert finetuned_runs(validate_config(config)) == []


def test_runs_no_experiment_trains_are_skipped_and_named():
    """An overlay that replaces the experiments must not break the default fine-tune block."""
    config = copy.deepcopy(STUDY)
    config["hardware"]["finetune"]["runs"] = [{"target": "p", "model": "mlp", "methods": ["bp", "stein"]}]
    config["experiments"] = [{**e, "methods": [m for m in e["methods"] if m != "bp"]}
                             for e in config["experiments"]]
    validated = validate_config(config)
    assert untrained_finetune_runs(validated) == ["p/mlp/bp"]
    assert finetuned_runs(validated) == ["p/mlp/stein/s0", "p/mlp/stein/s1"]
