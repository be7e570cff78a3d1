"""The reference stage: one target's solutions as a NetCDF file with a train/test split.

Solvers return float64; the stored file holds float32 solutions (training runs in float32,
and it halves the size of data/) next to float64 coordinates.
"""

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import REFERENCE, SPLIT_TEST, SPLIT_TRAIN

STORED_DTYPE = np.float32
log = logging.getLogger(__name__)


def make_reference(name: str, params: Mapping[str, Any], family: ModuleType) -> xr.Dataset:
    """Generate n_train + n_test samples of a validated target with its ``family``'s solver
    module (fwdsnn.registry.family_module: passed in, so that registering a family changes no
    reference code) and mark the split."""
    n_train, n_test = params["n_train"], params["n_test"]
    rng = np.random.default_rng(params["seed"])
    start = time.perf_counter()
    ds = family.generate(params, n_train + n_test, rng)
    log.info("target %s (%s): %d samples in %.1f s", name, params["family"],
             n_train + n_test, time.perf_counter() - start)
    for var in ("u", "a"):
        if var in ds:
            ds[var] = stored(name, var, ds[var])
    split = np.where(np.arange(n_train + n_test) < n_train, SPLIT_TRAIN, SPLIT_TEST).astype(np.int8)
    ds["split"] = xr.DataArray(split, dims="sample", attrs={
        "long_name": "train/test split", "units": "1",
        "flag_values": np.array([SPLIT_TRAIN, SPLIT_TEST], np.int8), "flag_meanings": "train test"})
    ds.attrs.update(target=name, family=params["family"])
    return ds


def stored(name: str, var: str, values: xr.DataArray) -> xr.DataArray:
    """values in the stored dtype, checked after the cast: a finite float64 can overflow to
    inf in float32 (exp(500 x)) or underflow to all zeros (1e-50 x), and either would train
    to a "diverged" run or an infinite error instead of failing here."""
    where = f"target {name}: variable {var!r}"
    if not np.all(np.isfinite(values.values)):
        raise FloatingPointError(f"{where}: the solver produced non-finite values")
    with np.errstate(over="ignore"):  # counted below, named in the error
        cast = values.astype(STORED_DTYPE)
    overflow = int(np.count_nonzero(~np.isfinite(cast.values)))
    if overflow:
        raise FloatingPointError(
            f"{where}: {overflow} of {cast.size} values overflow {np.dtype(STORED_DTYPE).name} "
            f"(largest |{var}| {np.max(np.abs(values.values)):.3g} > "
            f"{np.finfo(STORED_DTYPE).max:.3g}); rescale the target")
    if not np.any(cast.values) and np.any(values.values):
        raise FloatingPointError(
            f"{where}: every value underflows to zero in {np.dtype(STORED_DTYPE).name} (largest "
            f"|{var}| {np.max(np.abs(values.values)):.3g}); rescale the target")
    return cast


def write_reference(name: str, params: Mapping[str, Any], family: ModuleType, path: str | Path) -> Path:
    ds = make_reference(name, params, family)
    path = io.write_dataset(ds, path, stage=REFERENCE.stage, config=dict(params), seed=params["seed"])
    log.info("wrote %s (%.1f MB)", path, Path(path).stat().st_size / 1e6)
    return path


def read_reference(path: str | Path) -> xr.Dataset:
    return io.read_artifact(path, REFERENCE)
