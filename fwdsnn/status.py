"""A run's training status: recorded by training in model.nc and history.nc, carried on by
every later stage, so that a diverged run flows through the study as files that say so.

No torch here: the tables and the hardware format read it too.
"""

from pathlib import Path

from fwdsnn import io
from fwdsnn.artifacts import MODEL

COMPLETED, DIVERGED = "completed", "diverged"
STATUSES = (COMPLETED, DIVERGED)


def run_status(path: str | Path) -> str:
    """The `status` attribute of a training output (model.nc, history.nc). A model.nc written
    outside the training stage (a network built in Python) has none and counts as completed."""
    status = io.read_dataset(path, stage=MODEL.stage).attrs.get("status", COMPLETED)  # history.nc: the same stage
    if status not in STATUSES:
        raise io.DatasetError(f"{path}: attribute 'status' is {status!r}, expected one of "
                              f"{', '.join(STATUSES)}")
    return str(status)
