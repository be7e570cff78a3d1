"""The trained network as every hardware stage takes it from model.nc: only from a run whose
training completed with finite weights, so that no fixed-point, NIR or energy file of a
blown-up network is ever written (`fwdsnn.hardware.stage` writes placeholders for those)."""

import torch

from fwdsnn.data import Affine
from fwdsnn.status import COMPLETED, run_status
from fwdsnn.weights import load_model


def load_trained(path) -> tuple[torch.nn.Module, dict[str, Affine], Affine]:
    """load_model's network and normalisation, refusing a diverged run or a non-finite weight."""
    status = run_status(path)
    if status != COMPLETED:
        raise ValueError(f"{path}: training {status}; a network whose training blew up has "
                         "nothing to convert, export or count")
    model, inputs, output = load_model(path)
    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter).all():
            raise ValueError(f"{path}: parameter {name!r} is not finite; a network whose "
                             "training blew up has nothing to convert, export or count")
    return model, inputs, output
