"""Fine-tuning a trained spiking run in the loop: the hardware stage's post-training
quantisation, repaired by training under the chip's own arithmetic.

The run's float weights are the start; a weight-perturbation method with the `hardware` key
(`fwdsnn.grad.emulated`) at the job's weight bits then trains them, every loss the integer
emulator's. Training is `fwdsnn.train`'s loop (checkpoints and resume, determinism from the
seed, a non-finite loss stops it as diverged). Its evaluations run the float master weights;
what counts is the emulation, so after training the tuned weights are converted and emulated on
the test split exactly as the hardware stage does with the trained ones, into the same formats
(fixed_w{bits}_tuned.nc, emulated_w{bits}_tuned.nc).

Once the master weights have left the trained ones, the converter may pick other exponents, and
the estimate's noise can make the chip's error worse. The stage therefore keeps the tuned
weights only where their emulated loss on the whole training split, the loss the method
minimises, is below the trained weights' (selection on training data, never on the test split).
"""

import logging
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import HISTORY, MODEL, REFERENCE
from fwdsnn.fingerprint import code_fingerprint
from fwdsnn.grad.emulated import InLoop
from fwdsnn.hardware import emulator
from fwdsnn.hardware import format as fixed_format
from fwdsnn.hardware.convert import convert_run
from fwdsnn.status import COMPLETED, DIVERGED, run_status
from fwdsnn.train import History, build_run, config_digest, resolve_device, train
from fwdsnn.weights import load_parameters, model_dataset, read_scalers

log = logging.getLogger(__name__)


def _placeholders(source: Path, status: str, why: str, bits: int, outputs: dict[str, Path]) -> None:
    """A run with nothing to tune (its training diverged) or whose tuning diverged: the fixed
    and emulated files are the hardware stage's placeholders, with the status."""
    log.warning("%s: %s; writing placeholders that say so", source, why)
    fixed_format.write_placeholder(outputs["fixed"], status, bits, inputs=[source])
    emulator.write_placeholder(outputs["emulated"], status, bits, inputs=[source])


def _training_loss(run, in_loop: InLoop) -> float:
    """The emulated loss of the current weights on the whole training split."""
    index = torch.arange(run.problem.n_train)
    inputs, target = run.problem.model_inputs("train", index), run.problem.targets("train", index)
    return float(in_loop.losses(run.model, inputs, target, [])[0])


def _select(run, source: xr.Dataset, steps: int) -> int:
    """Keep the tuned weights or the trained ones, whichever has the lower emulated training
    loss (module docstring); returns the step of the weights kept (0: the trained ones)."""
    in_loop = run.estimator.in_loop
    tuned_loss = _training_loss(run, in_loop)
    tuned = {name: value.detach().clone() for name, value in run.model.state_dict().items()}
    load_parameters(run.model, source)
    start_loss = _training_loss(run, in_loop)
    log.info("emulated training loss: %.4e trained, %.4e tuned", start_loss, tuned_loss)
    if np.isfinite(tuned_loss) and tuned_loss <= start_loss:
        run.model.load_state_dict(tuned)
        return steps
    log.warning("fine-tuning did not lower the emulated training loss: keeping the trained weights")
    return 0


def run_finetune(model_path: Path, reference_path: Path, bits: int, settings: dict, seed: int,
                 outputs: dict[str, Path], estimator: type, threads: int = 1) -> str:
    """The stage: model.nc of a trained run -> the tuned model (model.nc's format), its history,
    and its fixed-point file and emulation at ``bits``; returns the status. ``settings`` holds
    the run's model settings and the fine-tune's method (its hardware.bits are ``bits``) and
    train settings (fwdsnn.config.finetune_settings)."""
    torch.set_num_threads(threads)
    outputs = {name: Path(path) for name, path in outputs.items()}
    status = run_status(model_path)
    if status != COMPLETED:
        common = dict(config=settings, seed=seed, inputs=[model_path])
        io.write_dataset(io.read_artifact(model_path, MODEL), outputs["model"], stage=MODEL.stage, **common)
        io.write_dataset(History().to_dataset([]).assign_attrs(status=status, steps_completed=0),
                         outputs["history"], stage=HISTORY.stage, **common)
        _placeholders(model_path, status, f"training {status}", bits, outputs)
        return status
    model_cfg, method_cfg, train_cfg = settings["model"], settings["method"], settings["train"]
    reference = io.read_artifact(reference_path, REFERENCE)
    source = io.read_artifact(model_path, MODEL)
    code = code_fingerprint(__name__, estimator.__module__)
    digest = config_digest(settings, seed, io.sha256_file(model_path), io.sha256_file(reference_path), code)
    run = build_run(reference, model_cfg, method_cfg, train_cfg, seed, resolve_device("cpu"), estimator)
    load_parameters(run.model, source)
    checkpoint = outputs["model"].with_name(outputs["model"].stem + ".checkpoint.nc")
    log.info("fine-tuning %s at %d weight bits with %s for %d steps (seed %d)", model_path, bits,
             method_cfg["estimator"], train_cfg["steps"], seed)
    history, status, layers = train(run, checkpoint, digest, code)
    best = _select(run, source, len(history.loss)) if status == COMPLETED else len(history.loss)
    inputs, output = read_scalers(source)
    model_ds = model_dataset(run.model, model_cfg, method_cfg, io.json_attr(source, "shapes_json"), inputs, output)
    model_ds.attrs.update(status=status, selected_step=best)
    common = dict(config=settings, seed=seed, inputs=[model_path, reference_path])
    history_ds = history.to_dataset(layers)
    history_ds.attrs.update(status=status, steps_completed=len(history.loss), selected_step=best)
    io.write_dataset(history_ds, outputs["history"], stage=HISTORY.stage, **common)
    io.write_dataset(model_ds, outputs["model"], stage=MODEL.stage, **common)
    checkpoint.unlink(missing_ok=True)
    if status == DIVERGED:
        _placeholders(model_path, status, "fine-tuning diverged", bits, outputs)
        return status
    convert_run(outputs["model"], bits, outputs["fixed"], run.estimator.in_loop.input_bits,
                run.estimator.in_loop.synaptic_delay)
    emulator.emulate_run(outputs["model"], [(outputs["fixed"], outputs["emulated"])], reference_path)
    log.info("finished with status %s (weights of step %d)", status, best)
    return status
