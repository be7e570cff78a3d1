"""The prediction.nc layout: test predictions on the reference grid, their errors, and spiking
activity per layer. Training writes it for the float network and the hardware emulator for the
integer one; numpy and xarray only, so neither stage imports the other."""

import numpy as np
import xarray as xr

from fwdsnn.artifacts import SPLIT_TEST, split_mask


def prediction_dataset(reference: xr.Dataset, prediction: np.ndarray, errors: np.ndarray,
                       rates: dict[str, float], counts: dict[str, float]) -> xr.Dataset:
    """``prediction`` is (test sample, *grid) in physical units, ``errors`` its relative L2
    error per test function (one value over all points for a pointwise target)."""
    test = reference.isel(sample=np.flatnonzero(split_mask(reference, SPLIT_TEST)))
    u = test["u"]
    per_sample = prediction.ndim > 1  # operator targets: one function per test sample
    layers = list(rates)
    data = {
        "u_pred": (u.dims, prediction.astype(np.float32),
                   {"long_name": f"predicted {u.attrs['long_name']}", "units": u.attrs["units"]}),
        "rel_l2": (("sample",) if per_sample else (), errors if per_sample else errors[0],
                   {"long_name": "relative L2 error of the prediction", "units": "1"}),
        "spike_rate": ("layer", np.array([rates[k] for k in layers], float),
                       {"long_name": "spikes per neuron per time step on the test split", "units": "1"}),
        "spike_count": ("layer", np.array([counts[k] for k in layers], float),
                        {"long_name": "spikes per inference of one input sample", "units": "1"}),
    }
    coords = {name: test[name] for name in u.coords}
    coords["layer"] = ("layer", np.asarray(layers, dtype=str), {"long_name": "LIF layer", "units": "1"})
    return xr.Dataset(data, coords=coords)
