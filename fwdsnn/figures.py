"""Figures of the study (PNG for the report, PDF for papers), drawn with matplotlib's Agg."""

import logging
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

N_SAMPLES_SHOWN = 3
log = logging.getLogger(__name__)


def axis_label(var: xr.DataArray) -> str:
    """'long_name [units]', the label every axis of every figure carries."""
    return f"{var.attrs.get('long_name', var.name)} [{var.attrs.get('units', '1')}]"


def save(fig: plt.Figure, png: str | Path, pdf: str | Path) -> None:
    fig.savefig(png, dpi=120)
    fig.savefig(pdf)
    plt.close(fig)
    log.info("wrote %s and %s", png, pdf)


def _plot_input(ax: plt.Axes, ds: xr.Dataset) -> None:
    if "a" in ds:
        for i in range(N_SAMPLES_SHOWN):
            ax.plot(ds["sensor"], ds["a"].isel(sample=i), lw=1)
        ax.set_xlabel(axis_label(ds["sensor"]))
        ax.set_ylabel(axis_label(ds["a"]))
    else:  # function target: show the training points
        coord = next(name for name in ds["u"].coords if name != "sample")
        train = ds["split"] == 0
        ax.scatter(ds[coord][train], ds["u"][train], s=4)
        ax.set_xlabel(axis_label(ds[coord]))
        ax.set_ylabel(axis_label(ds["u"]))


def _plot_solution(ax: plt.Axes, ds: xr.Dataset, fig: plt.Figure) -> None:
    u = ds["u"]
    if u.dims == ("sample",):  # function target: test points, sorted along the first input
        coord = next(name for name in u.coords if name != "sample")
        order = np.argsort(ds[coord].values)
        ax.plot(ds[coord].values[order], u.values[order], lw=1)
        ax.set_xlabel(axis_label(ds[coord]))
    elif u.ndim == 2:
        for i in range(N_SAMPLES_SHOWN):
            ax.plot(ds[u.dims[1]], u.isel(sample=i), lw=1)
        ax.set_xlabel(axis_label(ds[u.dims[1]]))
    else:
        first = u.isel(sample=0)
        image = ax.pcolormesh(ds[u.dims[2]], ds[u.dims[1]], first, shading="auto", cmap="RdBu_r")
        fig.colorbar(image, ax=ax, label=axis_label(u))
        ax.set_xlabel(axis_label(ds[u.dims[2]]))
        ax.set_ylabel(axis_label(ds[u.dims[1]]))
        return
    ax.set_ylabel(axis_label(u))


def plot_reference(datasets: Mapping[str, xr.Dataset], png: str | Path, pdf: str | Path) -> None:
    """A row per target: input samples (or training points) and reference solutions."""
    fig, axes = plt.subplots(len(datasets), 2, figsize=(9, 2.6 * len(datasets)), squeeze=False,
                             constrained_layout=True)
    for (name, ds), (ax_in, ax_out) in zip(datasets.items(), axes):
        _plot_input(ax_in, ds)
        _plot_solution(ax_out, ds, fig)
        ax_in.set_title(f"{name} ({ds.attrs.get('family', '?')}): input", fontsize=9, loc="left")
        ax_out.set_title(f"{name}: reference solution", fontsize=9, loc="left")
    save(fig, png, pdf)
