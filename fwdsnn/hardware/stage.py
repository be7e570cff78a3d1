"""The hardware stage of one trained spiking run, as one job: the fixed-point file and its
integer emulation at every weight width, the NIR graph, and the work and energy per inference.

One job, not one per output kind: every job pays the start-up of torch, Norse and xarray, and
that start-up is most of what the NIR export and the energy count cost.

A run whose training diverged (model.nc's `status`) has no network worth converting: its
weights are the last ones before the loss blew up, huge or not finite. Each of its outputs is
then a placeholder that says `status = diverged` and holds no network (fixed files without
weights, NaN errors and energies, an NIR graph without nodes), so that the bit sweep, the
metrics, the tables and the report go on and mark the run diverged. The outputs of a
completed run say `status = completed`.
"""

import logging
from collections.abc import Sequence
from pathlib import Path

from fwdsnn.hardware import emulator, energy, nir_export
from fwdsnn.hardware import format as fixed_format
from fwdsnn.hardware.convert import INPUT_BITS, convert_run
from fwdsnn.status import COMPLETED, run_status

log = logging.getLogger(__name__)


def hardware_run(model_path, prediction_path, reference_path, bits: Sequence[int],
                 fixed_paths: Sequence[str | Path], emulated_paths: Sequence[str | Path],
                 nir_path, energy_path, input_bits: int = INPUT_BITS, synaptic_delay: int = 0) -> str:
    """model.nc (+ prediction.nc's spike counts, + the reference's test split) -> fixed_w*.nc
    and emulated_w*.nc for each of bits (paths in the same order), model.nir, energy.nc;
    returns the run's status."""
    status = run_status(model_path)
    if status != COMPLETED:
        log.warning("%s: training %s; writing placeholders that say so", model_path, status)
        for b, fixed, emulated in zip(bits, fixed_paths, emulated_paths, strict=True):
            fixed_format.write_placeholder(fixed, status, b, inputs=[model_path])
            emulator.write_placeholder(emulated, status, b, inputs=[model_path])
        nir_export.write_placeholder(model_path, nir_path, status)
        energy.write_placeholder(model_path, energy_path, status)
        return status
    for b, fixed in zip(bits, fixed_paths, strict=True):
        convert_run(model_path, b, fixed, input_bits=input_bits, synaptic_delay=synaptic_delay)
    emulator.emulate_run(model_path, list(zip(fixed_paths, emulated_paths, strict=True)), reference_path)
    nir_export.export_nir(model_path, nir_path)
    energy.energy_run(model_path, prediction_path, energy_path)
    return status
