"""Model parameters as NetCDF like every other array: a variable per parameter, settings in attrs.

The file is enough to rebuild the network: the model and method settings, the shapes the
data gave it, and the normalisation of every input and of the output.
"""

import json
from collections.abc import Mapping

import numpy as np
import torch
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import MODEL
from fwdsnn.data import Affine
from fwdsnn.snn.models import build_model
from fwdsnn.snn.spike import make_surrogate

PARAMETER_ATTR = "parameter_name"


def tensors_to_variables(tensors: Mapping[str, torch.Tensor], prefix: str = "",
                         long_name: str = "network parameter") -> dict[str, xr.Variable]:
    """Each tensor as a variable named prefix+name with its own dims (float64 keeps it exact)."""
    variables = {}
    for name, tensor in tensors.items():
        values = tensor.detach().cpu().numpy()
        dims = tuple(f"{prefix}{name}.axis{i}" for i in range(values.ndim))
        variables[prefix + name] = xr.Variable(dims, values, {
            "long_name": long_name, "units": "1", PARAMETER_ATTR: name})
    return variables


def variables_to_tensors(ds: xr.Dataset, prefix: str = "") -> dict[str, torch.Tensor]:
    return {var.attrs[PARAMETER_ATTR]: torch.from_numpy(np.array(var.values))
            for key, var in ds.data_vars.items()
            if PARAMETER_ATTR in var.attrs and key == prefix + var.attrs[PARAMETER_ATTR]}


def scaler_variables(inputs: Mapping[str, Affine], output: Affine) -> dict[str, xr.DataArray]:
    names = [*inputs, "u"]
    affines = [*inputs.values(), output]
    coord = {"quantity": ("quantity", names, {"long_name": "normalised quantity", "units": "1"})}
    return {
        "norm_offset": xr.DataArray([a.offset for a in affines], dims="quantity", coords=coord,
                                    attrs={"long_name": "normalisation offset (x - offset) / scale",
                                           "units": "1"}),
        "norm_scale": xr.DataArray([a.scale for a in affines], dims="quantity", coords=coord,
                                   attrs={"long_name": "normalisation scale", "units": "1"}),
    }


def read_scalers(ds: xr.Dataset) -> tuple[dict[str, Affine], Affine]:
    affines = {str(q): Affine(float(o), float(s)) for q, o, s in
               zip(ds["quantity"].values, ds["norm_offset"].values, ds["norm_scale"].values)}
    if "u" not in affines:
        raise io.DatasetError(f"{io.source(ds)}: norm_offset/norm_scale lack the quantity 'u'")
    output = affines.pop("u")
    return affines, output


def load_parameters(module: torch.nn.Module, ds: xr.Dataset, prefix: str = "") -> None:
    """Load the parameter variables of ds into module, failing with the file and the parameter
    named where one is missing, unexpected or of the wrong shape (torch's own error names none)."""
    where, tensors = io.source(ds), variables_to_tensors(ds, prefix)
    expected = module.state_dict()
    missing = [name for name in expected if name not in tensors]
    if missing:
        raise io.DatasetError(f"{where}: missing parameter variable(s) "
                              f"{', '.join(prefix + name for name in missing)}")
    unexpected = [name for name in tensors if name not in expected]
    if unexpected:
        raise io.DatasetError(f"{where}: parameter variable(s) "
                              f"{', '.join(prefix + name for name in unexpected)} not in the model")
    for name, tensor in tensors.items():
        if tensor.shape != expected[name].shape:
            raise io.DatasetError(f"{where}: parameter {prefix + name!r} has shape "
                                  f"{tuple(tensor.shape)}, the model needs {tuple(expected[name].shape)}")
    device = next(iter(expected.values())).device if expected else None
    module.load_state_dict({name: tensor.to(device) for name, tensor in tensors.items()})


def model_dataset(model: torch.nn.Module, model_cfg: dict, method_cfg: dict,
                  shapes: dict, inputs: Mapping[str, Affine], output: Affine) -> xr.Dataset:
    ds = xr.Dataset({**tensors_to_variables(model.state_dict()), **scaler_variables(inputs, output)})
    ds.attrs.update(model_json=json.dumps(model_cfg, sort_keys=True),
                    method_json=json.dumps(method_cfg, sort_keys=True),
                    shapes_json=json.dumps(shapes, sort_keys=True))
    return ds


def load_model(path) -> tuple[torch.nn.Module, dict[str, Affine], Affine]:
    """Rebuild a trained network (for inference) and its normalisation from model.nc."""
    ds = io.read_artifact(path, MODEL)
    model_cfg, method_cfg, shapes = (io.json_attr(ds, name) for name in
                                     ("model_json", "method_json", "shapes_json"))
    try:
        spiking = method_cfg["spiking"]
        surrogate = make_surrogate(method_cfg["surrogate"], torch.Generator()) if spiking else None
        model = build_model(model_cfg["kind"], shapes, model_cfg, surrogate, spiking)
    except (KeyError, TypeError, ValueError) as err:
        raise io.DatasetError(f"{path}: model_json/method_json/shapes_json do not describe a "
                              f"model ({type(err).__name__}: {err})") from None
    load_parameters(model, ds)
    inputs, output = read_scalers(ds)
    return model, inputs, output
