"""Training stage: reproducible, resumable after SIGKILL, diverged runs recorded, weights round-trip."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr

import fwdsnn.train
from fwdsnn import io
from fwdsnn.config import validate_config
from fwdsnn.data import make_problem
from fwdsnn.grad import mse
from fwdsnn.registry import estimator_class
from fwdsnn.train import resolve_device, run_training
from fwdsnn.weights import load_model

SETTINGS = validate_config({
    "targets": {"p": {"family": "function", "expression": "x**2", "domain": [[-1, 1]]}},
    "models": {"mlp": {"kind": "spiking_mlp", "width": 16, "depth": 2, "steps": 8, "window": 4}},
    "methods": {"bp": {"estimator": "backprop"},
                "stein": {"estimator": "backprop", "surrogate": {"kind": "stein", "samples": 4}}},
    "train": {"steps": 40, "eval_every": 10, "checkpoint_every": 10, "batch": 16, "lr": 0.01},
    "experiments": [{"target": "p", "model": "mlp", "methods": ["bp", "stein"]}],
})


def outputs(directory: Path) -> dict[str, Path]:
    return {name: directory / f"{name}.nc" for name in ("model", "history", "prediction")}


def train(reference, directory, method="bp", seed=0, **train_overrides):
    settings = {**SETTINGS["train"], **train_overrides}
    method_cfg = SETTINGS["methods"][method]
    status = run_training(reference, SETTINGS["models"]["mlp"], method_cfg, settings, seed=seed, device="cpu",
                          outputs=outputs(directory), estimator=estimator_class(method_cfg["estimator"]))
    return status, {name: io.read_dataset(path) for name, path in outputs(directory).items()}


def assert_same_run(a: dict, b: dict):
    for name in a:
        assert io.data_variables_equal(a[name], b[name]), (name, io.differing_variables(a[name], b[name]))


@pytest.mark.parametrize("method", ["bp", "stein"])
def test_same_seed_same_files_other_seed_other_weights(parabola, tmp_path, method):
    status, first = train(parabola, tmp_path / "a", method)
    _, second = train(parabola, tmp_path / "b", method)
    _, other = train(parabola, tmp_path / "c", method, seed=1)
    assert status == "completed"
    assert_same_run(first, second)
    assert not io.data_variables_equal(first["model"], other["model"])
    history = first["history"]
    assert history.sizes["step"] == 40 and list(history["eval_step"].values) == [10, 20, 30, 40]
    assert np.all(np.diff(history["wall_time"].values) >= 0)
    assert history["test_rel_l2_mean"].values[-1] < history["test_rel_l2_mean"].values[0]
    assert not (tmp_path / "a" / "checkpoint.nc").exists()


def test_weights_round_trip_through_netcdf(parabola, tmp_path):
    _, files = train(parabola, tmp_path)
    model, inputs, output = load_model(tmp_path / "model.nc")
    reference = io.read_dataset(parabola)
    problem = make_problem(reference, "spiking_mlp")
    with torch.no_grad():
        prediction = output.inverse(model(problem.test_x).numpy()[:, 0].astype(np.float64))
    np.testing.assert_allclose(prediction, files["prediction"]["u_pred"].values, rtol=1e-6, atol=1e-6)
    assert set(inputs) == {"x"}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_diverging_run_is_recorded_and_the_stage_succeeds(parabola, tmp_path):
    # a huge learning rate makes the loss overflow (non-finite data are refused before training)
    status, files = train(parabola, tmp_path / "run", lr=1.0e30)
    assert status == "diverged"
    assert files["history"].attrs["status"] == "diverged"
    assert 0 < files["history"].attrs["steps_completed"] < SETTINGS["train"]["steps"]
    assert files["model"].attrs["status"] == "diverged"


RESUME_SCRIPT = """
import sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from test_train import train
train(Path({reference!r}), Path({directory!r}), steps={steps})
"""


def test_killed_run_resumes_to_identical_results(parabola, tmp_path):
    steps = 200  # long enough to be killed after its first checkpoint (at step 10)
    _, uninterrupted = train(parabola, tmp_path / "whole", steps=steps)
    directory = tmp_path / "killed"
    script = RESUME_SCRIPT.format(tests=str(Path(__file__).parent), reference=str(parabola),
                                  directory=str(directory), steps=steps)
    proc = subprocess.Popen([sys.executable, "-c", script])
    checkpoint = directory / "checkpoint.nc"
    deadline = time.time() + 120
    while not checkpoint.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert checkpoint.exists() and not (directory / "model.nc").exists(), "the run was not killed mid-way"
    killed_at = io.read_dataset(checkpoint).attrs["next_step"]
    assert 0 < killed_at < steps
    _, resumed = train(parabola, directory, steps=steps)
    assert_same_run(uninterrupted, resumed)
    assert not checkpoint.exists()


class Interrupted(Exception):
    pass


def interrupted_run(reference, directory, monkeypatch, **train_overrides) -> Path:
    """A run stopped right after its first checkpoint: the checkpoint stays behind."""
    real = fwdsnn.train.save_checkpoint

    def save_then_stop(*args):
        real(*args)
        raise Interrupted

    with monkeypatch.context() as patch:
        patch.setattr(fwdsnn.train, "save_checkpoint", save_then_stop)
        with pytest.raises(Interrupted):
            train(reference, directory, **train_overrides)
    assert (directory / "checkpoint.nc").exists()
    return directory / "checkpoint.nc"


@pytest.fixture(scope="module")
def uninterrupted(parabola, tmp_path_factory) -> dict:
    return train(parabola, tmp_path_factory.mktemp("whole"))[1]


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "fwdsnn.train"]


def test_a_checkpoint_of_other_code_is_ignored(parabola, uninterrupted, tmp_path, monkeypatch, caplog):
    checkpoint = interrupted_run(parabola, tmp_path / "run", monkeypatch)
    monkeypatch.setattr(fwdsnn.train, "code_fingerprint", lambda *modules: "edited-code")
    with caplog.at_level("INFO", logger="fwdsnn.train"):
        _, restarted = train(parabola, tmp_path / "run")
    assert f"ignoring checkpoint {checkpoint}: it was made by other code; training from the start" \
        in messages(caplog)
    assert not any(m.startswith("resumed") for m in messages(caplog))
    assert_same_run(uninterrupted, restarted)  # from scratch, so the same as never interrupted


def test_a_checkpoint_resumes_under_the_same_code(parabola, tmp_path, monkeypatch, caplog):
    checkpoint = interrupted_run(parabola, tmp_path / "run", monkeypatch)
    with caplog.at_level("INFO", logger="fwdsnn.train"):
        train(parabola, tmp_path / "run")
    assert f"resumed from {checkpoint} at step 10" in messages(caplog)


def test_a_run_with_weight_averaging_resumes_to_identical_results(parabola, tmp_path, monkeypatch):
    """The average is part of the checkpoint: without it the resumed average would restart."""
    _, whole = train(parabola, tmp_path / "whole", ema=0.9)
    checkpoint = interrupted_run(parabola, tmp_path / "run", monkeypatch, ema=0.9)
    assert any(name.startswith("ema.") for name in io.read_dataset(checkpoint).data_vars)
    _, resumed = train(parabola, tmp_path / "run", ema=0.9)
    assert_same_run(whole, resumed)


def drop_a_parameter(checkpoint: Path) -> None:
    ds = io.read_dataset(checkpoint)
    io.write_dataset(ds.drop_vars("param.readout.bias"), checkpoint, stage="checkpoint", config={})


def truncate(checkpoint: Path) -> None:
    checkpoint.write_bytes(checkpoint.read_bytes()[:1000])


@pytest.mark.parametrize("damage,reason", [
    (truncate, "not a readable NetCDF file"),
    (drop_a_parameter, "missing parameter(s) readout.bias"),
])
def test_a_corrupt_checkpoint_is_set_aside_and_the_run_restarts(parabola, uninterrupted, tmp_path,
                                                                monkeypatch, caplog, damage, reason):
    checkpoint = interrupted_run(parabola, tmp_path / "run", monkeypatch)
    damage(checkpoint)
    damaged = checkpoint.read_bytes()
    with caplog.at_level("INFO", logger="fwdsnn.train"):
        _, restarted = train(parabola, tmp_path / "run")
    aside = list((tmp_path / "run").glob("checkpoint.nc.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    [warning] = [m for m in messages(caplog) if m.startswith(f"checkpoint {checkpoint} is unusable")]
    assert reason in warning and warning.endswith(f"moved to {aside[0]}; training from the start")
    assert_same_run(uninterrupted, restarted)
    assert not checkpoint.exists()


def test_loss_refuses_mismatched_shapes():
    with pytest.raises(ValueError, match=r"model output \(4, 1\) does not match the target \(4,\)"):
        mse(torch.zeros(4, 1), torch.zeros(4))


def test_device_auto_falls_back_to_the_cpu_with_one_log_line(monkeypatch, caplog):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level("INFO", logger="fwdsnn.train"):
        assert resolve_device("auto") == torch.device("cpu")
        assert resolve_device("cpu") == torch.device("cpu")
    assert [r.getMessage() for r in caplog.records] == ["CUDA unavailable: training on the CPU"]
    with pytest.raises(RuntimeError, match="device: cuda was requested"):
        resolve_device("cuda")
