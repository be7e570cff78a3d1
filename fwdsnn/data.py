"""Reference data as training tensors: normalisation, splits, batches, and back to physical units.

Three layouts; each model kind names the one its forward takes (`layout` of its class in
fwdsnn.snn.models). ``pointwise`` (spiking_mlp on function targets): inputs are
points, the target a scalar per point. ``deeponet``: branch input a(sensor) per function and
trunk input the flattened grid of coordinates; predictions are (function, point). ``seponet``:
branch input a per function and one coordinate vector per grid axis; predictions are
(function, *grid). Inputs are scaled to [-1, 1] (coordinates by their range, sensor values by
the training mean and standard deviation) and u by its training mean and standard deviation;
the scalers travel with the model so predictions come back in physical units.
"""

from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr

from fwdsnn.artifacts import SPLIT_TRAIN, split_mask
from fwdsnn.io import DatasetError, source
from fwdsnn.snn.models import model_class



@dataclass(frozen=True)
class Affine:
    """y = (x - offset) / scale: the normalisation of one quantity (inverse for predictions)."""

    offset: float
    scale: float

    def forward(self, x):
        return (x - self.offset) / self.scale

    def inverse(self, y):
        return y * self.scale + self.offset

    @classmethod
    def to_unit_interval(cls, values: np.ndarray) -> "Affine":
        low, high = float(np.min(values)), float(np.max(values))
        return cls(offset=0.5 * (low + high), scale=0.5 * (high - low) or 1.0)

    @classmethod
    def standardise(cls, values: np.ndarray) -> "Affine":
        return cls(offset=float(np.mean(values)), scale=float(np.std(values)) or 1.0)


@dataclass
class Problem:
    """Everything a training run needs from a reference file, as tensors in normalised units."""

    layout: str
    coords: list[str]            # names of the coordinate inputs (pointwise: the variables)
    inputs: dict[str, Affine]    # per coordinate name, and "a" for sensor values
    output: Affine
    train_a: torch.Tensor | None  # (F, S) branch inputs; None for pointwise
    test_a: torch.Tensor | None
    axes: list[torch.Tensor]      # seponet: per axis (n_i, 1); deeponet: [(P, d)]; pointwise: []
    train_x: torch.Tensor | None  # pointwise inputs (N, d)
    test_x: torch.Tensor | None
    train_u: torch.Tensor         # normalised targets: (N, 1) | (F, P) | (F, *grid)
    test_u: torch.Tensor
    grid_shape: tuple[int, ...]   # physical grid of one function's u, () for pointwise

    @property
    def n_train(self) -> int:
        return len(self.train_u)

    def model_shapes(self) -> dict[str, int]:
        """The sizes build_model needs for this layout."""
        if self.layout == "pointwise":
            return {"in_features": self.train_x.shape[1], "out_features": 1}
        if self.layout == "deeponet":
            return {"n_sensors": self.train_a.shape[1], "coord_dim": self.axes[0].shape[1]}
        return {"n_sensors": self.train_a.shape[1], "n_axes": len(self.axes)}

    def model_inputs(self, split: str, index: torch.Tensor | None = None) -> tuple:
        """Positional inputs of the model for a split, optionally a subset of its samples."""
        if self.layout == "pointwise":
            x = self.train_x if split == "train" else self.test_x
            return (x if index is None else x[index],)
        a = self.train_a if split == "train" else self.test_a
        a = a if index is None else a[index]
        return (a, self.axes[0]) if self.layout == "deeponet" else (a, list(self.axes))

    def targets(self, split: str, index: torch.Tensor | None = None) -> torch.Tensor:
        u = self.train_u if split == "train" else self.test_u
        return u if index is None else u[index]

    def sample_batch(self, size: int, generator: torch.Generator) -> torch.Tensor:
        """Indices of one training batch, without replacement within the batch."""
        size = min(size, self.n_train)
        return torch.randperm(self.n_train, generator=generator)[:size]

    def to(self, device: torch.device, dtype: torch.dtype = torch.float32) -> "Problem":
        def move(t):
            return None if t is None else t.to(device=device, dtype=dtype)
        return Problem(self.layout, self.coords, self.inputs, self.output, move(self.train_a),
                       move(self.test_a), [move(t) for t in self.axes], move(self.train_x),
                       move(self.test_x), move(self.train_u), move(self.test_u), self.grid_shape)


def _tensor(values: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(values), dtype=torch.float32)


def check_reference(ds: xr.Dataset, layout: str) -> None:
    """The variables a layout reads exist and are finite: a NaN in a data file would otherwise
    train to a "diverged" run instead of failing with the file and the variable named."""
    where = source(ds)
    needed = ["u", "split"] + ([] if layout == "pointwise" else ["a"])
    missing = [name for name in needed if name not in ds.variables]
    if missing:
        raise DatasetError(f"{where}: missing variable(s) {', '.join(missing)} "
                           f"(a {layout} model reads them)")
    coords = [name for name in ds["u"].dims[1:] if name in ds.coords]
    if layout == "pointwise":
        coords = [name for name in ds.coords if ds[name].dims == ("sample",) and name != "sample"]
    for name in ["u", *needed[2:], *coords]:
        values = np.asarray(ds[name].values)
        if np.issubdtype(values.dtype, np.floating):
            bad = int(np.count_nonzero(~np.isfinite(values)))
            if bad:
                raise DatasetError(f"{where}: variable {name!r} holds {bad} non-finite value(s) "
                                   f"(NaN or inf) of {values.size}")


def make_problem(ds: xr.Dataset, model_kind: str) -> Problem:
    """Split and normalise a reference dataset for the layout of a model kind."""
    layout = model_class(model_kind).layout
    check_reference(ds, layout)
    train = split_mask(ds, SPLIT_TRAIN)
    u = ds["u"].values.astype(np.float64)
    output = Affine.standardise(u[train])
    if layout == "pointwise":
        coords = [name for name in ("x", "y", "t") if name in ds.coords and ds[name].dims == ("sample",)]
        inputs = {name: Affine.to_unit_interval(ds[name].values[train]) for name in coords}
        x = np.stack([inputs[n].forward(ds[n].values) for n in coords], axis=1)
        u_norm = output.forward(u)[:, None]  # (N, 1): the MLP's one output feature
        return Problem(layout, coords, inputs, output, None, None, [], _tensor(x[train]),
                       _tensor(x[~train]), _tensor(u_norm[train]), _tensor(u_norm[~train]), ())
    coords = list(ds["u"].dims[1:])
    inputs = {name: Affine.to_unit_interval(ds[name].values) for name in coords}
    a = ds["a"].values.astype(np.float64)
    inputs["a"] = Affine.standardise(a[train])
    a = inputs["a"].forward(a)
    scaled = [inputs[n].forward(ds[n].values) for n in coords]
    if layout == "deeponet":
        mesh = np.stack([m.ravel() for m in np.meshgrid(*scaled, indexing="ij")], axis=1)
        axes = [_tensor(mesh)]
        u_norm = output.forward(u).reshape(len(u), -1)
    else:
        axes = [_tensor(values[:, None]) for values in scaled]
        u_norm = output.forward(u)
    return Problem(layout, coords, inputs, output, _tensor(a[train]), _tensor(a[~train]), axes,
                   None, None, _tensor(u_norm[train]), _tensor(u_norm[~train]), u.shape[1:])


def test_errors(problem: Problem, prediction: np.ndarray) -> np.ndarray:
    """Relative L2 error of test predictions in physical units, against the problem's own test
    targets: per function, or one value over all points for a pointwise layout."""
    reference = problem.output.inverse(problem.targets("test").cpu().numpy().astype(np.float64))
    reference = reference.reshape(prediction.shape)
    return relative_l2(prediction, reference, per_sample=problem.layout != "pointwise")


def relative_l2(prediction: np.ndarray, reference: np.ndarray, per_sample: bool) -> np.ndarray:
    """||pred - ref|| / ||ref|| per function (operator targets) or over all points (functions)."""
    if not per_sample:
        return np.atleast_1d(np.linalg.norm(prediction - reference) / np.linalg.norm(reference))
    axes = tuple(range(1, reference.ndim))
    return (np.sqrt(np.sum((prediction - reference) ** 2, axis=axes))
            / np.sqrt(np.sum(reference ** 2, axis=axes)))
