"""The training stage: one (target, model, method, seed) run, resumable and reproducible.

Adam with an exponential learning-rate decay steps on whatever gradient estimate the method's
estimator writes. The run evaluates on the test split every ``eval_every`` steps (one progress
line in the log each time) and checkpoints every ``checkpoint_every`` steps — parameters,
optimiser moments, the weight average, every random generator and the history so far — so a
killed job resumes to the same final weights. A non-finite loss ends the run with status
``diverged``. With ``ema`` set, what is evaluated and written is the weight average
(fwdsnn.averaging); the steps are the same either way.
"""

import hashlib
import json
import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from fwdsnn import io
from fwdsnn.adam import Adam
from fwdsnn.averaging import WeightAverage
from fwdsnn.artifacts import CHECKPOINT, HISTORY, MODEL, PREDICTION, REFERENCE
from fwdsnn.data import Problem, make_problem, test_errors
from fwdsnn.fingerprint import code_fingerprint
from fwdsnn.grad import Estimator
from fwdsnn.predictions import prediction_dataset
from fwdsnn.snn.lif import bare_spikes
from fwdsnn.snn.models import build_model
from fwdsnn.snn.spike import make_surrogate
from fwdsnn.weights import model_dataset, tensors_to_variables, variables_to_tensors

EVAL_CHUNK = 64  # test samples per forward pass: bounds memory on large grids
log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """'auto' is CUDA where present, else the CPU (said once in the log)."""
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        if name == "auto":
            log.info("CUDA unavailable: training on the CPU")
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise RuntimeError("device: cuda was requested but torch finds no CUDA device")
    return torch.device("cuda")


@dataclass
class History:
    """Per-step and per-evaluation records, kept as lists so a checkpoint can restore them."""

    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    wall_time: list[float] = field(default_factory=list)
    forward_passes: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    eval_step: list[int] = field(default_factory=list)
    test_mean: list[float] = field(default_factory=list)
    test_median: list[float] = field(default_factory=list)
    spike_rates: list[list[float]] = field(default_factory=list)

    STEP_VARS = {"loss": ("training loss (normalised MSE)", "1"),
                 "grad_norm": ("norm of the gradient estimate", "1"),
                 "wall_time": ("wall time since the start of training", "s"),
                 "forward_passes": ("forward-equivalent passes since the start", "1"),
                 "lr": ("learning rate", "1")}
    MEASURED = {"wall_time": "timing"}  # differs between runs of the same work

    def _attrs(self, name: str, long_name: str, units: str) -> dict:
        attrs = {"long_name": long_name, "units": units}
        return io.measured(attrs, self.MEASURED[name]) if name in self.MEASURED else attrs

    def to_dataset(self, layers: list[str]) -> xr.Dataset:
        n, m = len(self.loss), len(self.eval_step)
        data = {name: ("step", np.asarray(getattr(self, name), float), self._attrs(name, ln, u))
                for name, (ln, u) in self.STEP_VARS.items()}
        rates = np.asarray(self.spike_rates, float).reshape(m, len(layers))
        data.update(
            test_rel_l2_mean=("eval_step", np.asarray(self.test_mean, float),
                              {"long_name": "test relative L2 error, mean over functions", "units": "1"}),
            test_rel_l2_median=("eval_step", np.asarray(self.test_median, float),
                                {"long_name": "test relative L2 error, median over functions", "units": "1"}),
            spike_rate=(("eval_step", "layer"), rates,
                        {"long_name": "spikes per neuron per time step", "units": "1"}))
        coords = {"step": ("step", np.arange(1, n + 1), {"long_name": "optimiser step", "units": "1"}),
                  "eval_step": ("eval_step", np.asarray(self.eval_step, int),
                                {"long_name": "step of the evaluation", "units": "1"}),
                  "layer": ("layer", np.asarray(layers, dtype=str), {"long_name": "LIF layer", "units": "1"})}
        return xr.Dataset(data, coords=coords)

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> "History":
        return cls(**{name: ds[name].values.tolist() for name in cls.STEP_VARS},
                   eval_step=ds["eval_step"].values.tolist(),
                   test_mean=ds["test_rel_l2_mean"].values.tolist(),
                   test_median=ds["test_rel_l2_median"].values.tolist(),
                   spike_rates=ds["spike_rate"].values.tolist())


@dataclass
class Run:
    """A built run: data, network, optimiser and every source of randomness."""

    problem: Problem
    model: torch.nn.Module
    optimizer: Adam
    generators: dict[str, torch.Generator]
    estimator: object
    model_cfg: dict
    method_cfg: dict
    train_cfg: dict
    average: WeightAverage | None = None

    @contextmanager
    def evaluated(self):
        """The weights that are evaluated and written: the average where there is one."""
        if self.average is None:
            yield
        else:
            with self.average.applied():
                yield


def build_run(reference: xr.Dataset, model_cfg: dict, method_cfg: dict, train_cfg: dict,
              seed: int, device: torch.device, estimator: type[Estimator]) -> Run:
    """Everything seeded from ``seed``: initial weights, batches, surrogate noise, directions.
    ``estimator`` is the class the method's ``estimator`` names (fwdsnn.registry.estimator_class):
    passed in, so that registering an estimator changes no training code."""
    problem = make_problem(reference, model_cfg["kind"]).to(device)
    spiking = method_cfg["spiking"]
    surrogate_gen = torch.Generator(device=device).manual_seed(seed + 1)
    surrogate = make_surrogate(method_cfg["surrogate"], surrogate_gen) if spiking else None
    torch.manual_seed(seed)
    model = build_model(model_cfg["kind"], problem.model_shapes(), model_cfg, surrogate, spiking).to(device)
    estimator_gen = torch.Generator(device=device).manual_seed(seed + 3)
    built = estimator(method_cfg, estimator_gen)
    generators = {"batch": torch.Generator().manual_seed(seed + 2), **built.generators()}
    if spiking and method_cfg["surrogate"]["kind"] == "stein":
        generators["surrogate"] = surrogate_gen
    optimizer = Adam(model.parameters(), lr=train_cfg["lr"])
    ema = train_cfg.get("ema", 0)
    average = WeightAverage(model, ema) if ema else None
    return Run(problem, model, optimizer, generators, built, model_cfg, method_cfg, train_cfg, average)


def learning_rate(cfg: dict, step: int) -> float:
    """Exponential decay from lr to lr * lr_final over the run (stateless, so resume is exact)."""
    return cfg["lr"] * cfg["lr_final"] ** (step / max(cfg["steps"] - 1, 1))


@torch.no_grad()
def predict(run: Run, split: str = "test") -> tuple[np.ndarray, dict[str, float], dict[str, float]]:
    """Predictions in physical units for a split, with spike rates and spikes per input sample."""
    problem, model = run.problem, run.model
    n = len(problem.targets(split))
    outputs, counts, rates = [], {}, {}
    with bare_spikes(model):
        for start in range(0, n, EVAL_CHUNK):
            index = torch.arange(start, min(start + EVAL_CHUNK, n), device=problem.train_u.device)
            outputs.append(model(*problem.model_inputs(split, index)).cpu().numpy())
            weight = len(index) / n  # operator models: trunk rates repeat for every chunk
            for layer, rate in model.spike_rates().items():
                rates[layer] = rates.get(layer, 0.0) + weight * rate
                mean_count = float(model.last_spike_counts[layer].float().mean())
                counts[layer] = counts.get(layer, 0.0) + weight * mean_count
    prediction = problem.output.inverse(np.concatenate(outputs).astype(np.float64))
    return prediction.reshape(n, *problem.grid_shape), rates, counts


def config_digest(*configs: dict) -> str:
    return hashlib.sha256(json.dumps(configs, sort_keys=True).encode()).hexdigest()[:16]


def save_checkpoint(run: Run, history: History, layers: list[str], next_step: int,
                    path: Path, digest: str, code: str) -> None:
    names = [name for name, _ in run.model.named_parameters()]
    adam = {}
    for name, state in zip(names, run.optimizer.moments):
        if state is not None:
            adam[f"exp_avg.{name}"] = state["exp_avg"]
            adam[f"exp_avg_sq.{name}"] = state["exp_avg_sq"]
            adam[f"step.{name}"] = state["step"]
    rng = {name: gen.get_state() for name, gen in run.generators.items()}
    average = {} if run.average is None else run.average.average
    ds = xr.Dataset({**tensors_to_variables(run.model.state_dict(), "param."),
                     **tensors_to_variables(adam, "adam."),
                     **tensors_to_variables(average, "ema.", "averaged weights"),
                     **tensors_to_variables(rng, "rng.", "random generator state")})
    ds = ds.merge(history.to_dataset(layers).rename({"step": "history_step"}))
    ds.attrs.update(next_step=next_step, digest=digest, code_fingerprint=code)
    io.write_dataset(ds, path, stage=CHECKPOINT.stage, config={"digest": digest, "code_fingerprint": code})


def _checked(found: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    """Refuse a checkpoint whose tensors are missing or of other shapes than the run's own."""
    missing = sorted(set(expected) - set(found))
    if missing:
        raise io.DatasetError(f"missing {what} {', '.join(missing)}")
    for name, tensor in expected.items():
        if found[name].shape != tensor.shape:
            raise io.DatasetError(f"{what} {name} has shape {tuple(found[name].shape)}, "
                                  f"the run needs {tuple(tensor.shape)}")


def _checkpoint_state(run: Run, ds: xr.Dataset) -> tuple[dict, list, dict, dict, History, int]:
    """Everything a checkpoint restores, checked against the run before any of it is applied
    (a half-restored run would be neither the checkpoint's nor a fresh one)."""
    params = variables_to_tensors(ds, "param.")
    _checked(params, run.model.state_dict(), "parameter(s)")
    adam = variables_to_tensors(ds, "adam.")
    state = []  # per parameter, None until it had a gradient (fwdsnn.adam.Adam.moments)
    for name, param in run.model.named_parameters():
        if f"step.{name}" not in adam:
            state.append(None)
            continue
        _checked(adam, {f"exp_avg.{name}": param, f"exp_avg_sq.{name}": param}, "Adam moment(s)")
        state.append({key: adam[f"{key}.{name}"] for key in ("step", "exp_avg", "exp_avg_sq")})
    rng = variables_to_tensors(ds, "rng.")
    _checked(rng, {name: gen.get_state() for name, gen in run.generators.items()},
             "random generator state(s)")
    average = variables_to_tensors(ds, "ema.")
    _checked(average, {} if run.average is None else run.average.average, "averaged weight(s)")
    try:
        history = History.from_dataset(ds.rename({"history_step": "step"}))
        step = int(ds.attrs["next_step"])
    except (KeyError, ValueError) as err:
        raise io.DatasetError(f"no usable history or next_step ({err!r})") from err
    return params, state, rng, average, history, step


def _set_aside(path: Path, reason: str) -> None:
    """Keep an unusable checkpoint for inspection under another name; training starts afresh."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}")
    path.replace(aside)
    log.warning("checkpoint %s is unusable (%s): moved to %s; training from the start", path, reason, aside)


def load_checkpoint(run: Run, path: Path, digest: str, code: str) -> tuple[History, int]:
    """Restore a run from its checkpoint; a checkpoint of other settings or other code is
    ignored, an unreadable or incomplete one is set aside."""
    if not path.exists():
        return History(), 0
    try:
        ds = io.read_dataset(path, stage=CHECKPOINT.stage)
        if ds.attrs.get("digest") != digest:
            reason = ("made by other code" if ds.attrs.get("code_fingerprint") != code
                      else "made with other settings")
            log.warning("ignoring checkpoint %s: it was %s; training from the start", path, reason)
            return History(), 0
        params, state, rng, average, history, step = _checkpoint_state(run, ds)
    except io.DatasetError as err:
        _set_aside(path, str(err))
        return History(), 0
    device = next(run.model.parameters()).device
    run.model.load_state_dict({k: v.to(device) for k, v in params.items()})
    run.optimizer.moments = [None if moments is None else  # Adam keeps `step` on the CPU
                             {key: value if key == "step" else value.to(device)
                              for key, value in moments.items()} for moments in state]
    for name, generator in run.generators.items():
        generator.set_state(rng[name])
    if run.average is not None:
        run.average.average = {name: average[name].to(device) for name in run.average.average}
    log.info("resumed from %s at step %d", path, step)
    return history, step


def train(run: Run, checkpoint: Path, digest: str, code: str) -> tuple[History, str, list[str]]:
    """The optimisation loop; returns the history, the status and the LIF layer names. The
    model holds the weights to write at the end (the average, with ``ema``)."""
    cfg, model = run.train_cfg, run.model
    layers = list(getattr(model, "neurons", {}))
    history, start = load_checkpoint(run, checkpoint, digest, code)
    elapsed = history.wall_time[-1] if history.wall_time else 0.0
    passes = history.forward_passes[-1] if history.forward_passes else 0.0
    status, clock, last_log = "completed", time.perf_counter(), (start, time.perf_counter())
    for step in range(start, cfg["steps"]):
        lr = learning_rate(cfg, step)
        run.optimizer.lr = lr
        index = run.problem.sample_batch(cfg["batch"], run.generators["batch"])
        estimate = run.estimator.estimate(model, run.problem.model_inputs("train", index),
                                          run.problem.targets("train", index))
        if not np.isfinite(estimate.loss):
            log.error("step %d: loss is %s; stopping with status diverged", step + 1, estimate.loss)
            status = "diverged"
            break
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        grad_norm = float(torch.sqrt(sum(torch.sum(g * g) for g in grads)))
        run.optimizer.step()
        if run.average is not None:
            run.average.update(step)
        passes += estimate.forward_passes
        history.loss.append(estimate.loss)
        history.grad_norm.append(grad_norm)
        history.wall_time.append(elapsed + time.perf_counter() - clock)
        history.forward_passes.append(passes)
        history.lr.append(lr)
        done = step + 1
        if done % cfg["eval_every"] == 0 or done == cfg["steps"]:
            with run.evaluated():
                prediction, rates, _ = predict(run)
            errors = test_errors(run.problem, prediction)
            history.eval_step.append(done)
            history.test_mean.append(float(np.mean(errors)))
            history.test_median.append(float(np.median(errors)))
            history.spike_rates.append([rates[layer] for layer in layers])
            now = time.perf_counter()
            speed = (done - last_log[0]) / max(now - last_log[1], 1e-9)
            last_log = (done, now)
            log.info("step %d/%d loss %.3e test rel-L2 %.4f (median %.4f) spike rates [%s] %.1f steps/s",
                     done, cfg["steps"], estimate.loss, history.test_mean[-1], history.test_median[-1],
                     " ".join(f"{rates[layer]:.3f}" for layer in layers), speed)
        if done % cfg["checkpoint_every"] == 0 and done < cfg["steps"]:
            save_checkpoint(run, history, layers, done, checkpoint, digest, code)
    if run.average is not None:
        run.average.copy_into_model()  # what the run writes
    return history, status, layers


def run_training(reference_path: Path, model_cfg: dict, method_cfg: dict, train_cfg: dict,
                 seed: int, device: str, outputs: dict[str, Path], estimator: type[Estimator],
                 threads: int = 1) -> str:
    """The stage: train one run with the ``estimator`` class (see build_run) and write model.nc,
    history.nc, prediction.nc; returns status."""
    torch.set_num_threads(threads)
    reference = io.read_artifact(reference_path, REFERENCE)
    config = {"model": model_cfg, "method": method_cfg, "train": train_cfg}
    code = code_fingerprint(__name__, estimator.__module__)  # a checkpoint of other code is stale
    digest = config_digest(config, seed, io.sha256_file(reference_path), code)
    run = build_run(reference, model_cfg, method_cfg, train_cfg, seed, resolve_device(device), estimator)
    checkpoint = Path(outputs["model"]).with_name("checkpoint.nc")
    log.info("training %s with %s for %d steps (seed %d, %d parameters)", model_cfg["kind"],
             method_cfg["estimator"], train_cfg["steps"], seed,
             sum(p.numel() for p in run.model.parameters()))
    history, status, layers = train(run, checkpoint, digest, code)
    prediction, rates, counts = predict(run)
    common = dict(config=config, seed=seed, inputs=[reference_path])
    history_ds = history.to_dataset(layers)
    history_ds.attrs.update(status=status, steps_completed=len(history.loss))
    io.write_dataset(history_ds, outputs["history"], stage=HISTORY.stage, **common)
    io.write_dataset(prediction_dataset(reference, prediction, test_errors(run.problem, prediction), rates, counts),
                     outputs["prediction"], stage=PREDICTION.stage, **common)
    model_ds = model_dataset(run.model, model_cfg, method_cfg, run.problem.model_shapes(),
                             run.problem.inputs, run.problem.output)
    model_ds.attrs["status"] = status
    io.write_dataset(model_ds, outputs["model"], stage=MODEL.stage, **common)
    checkpoint.unlink(missing_ok=True)
    log.info("finished with status %s", status)
    return status
