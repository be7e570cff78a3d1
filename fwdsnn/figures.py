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


def plot_gradient_quality(datasets: Mapping[str, xr.Dataset], png: str | Path, pdf: str | Path) -> None:
    """Cosine to the BPTT gradient vs K (mean and spread over draws), with sqrt(K/d)."""
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.6), squeeze=False,
                             constrained_layout=True)
    for (name, ds), ax in zip(datasets.items(), axes[0]):
        k = ds["directions"].values
        for surrogate in ds["surrogate"].values:
            for scope, style in zip(ds["scope"].values, ("-", "--")):
                cos = ds["cosine"].sel(surrogate=surrogate, scope=scope)
                mean, std = cos.mean("draw").values, cos.std("draw").values
                line, = ax.plot(k, mean, style, marker="o", ms=3, label=f"{scope}, {surrogate}")
                ax.fill_between(k, mean - std, mean + std, color=line.get_color(), alpha=0.15)
        ax.plot(k, ds["theory_global"], ":", color="k", label="sqrt(K/d), global")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(axis_label(ds["directions"]))
        ax.set_ylabel(axis_label(ds["cosine"]))
        ax.set_title(f"{name} (d = {ds.attrs['parameters']})", fontsize=9, loc="left")
    axes[0][0].legend(fontsize=7)
    save(fig, png, pdf)


def plot_estimator_cost(ds: xr.Dataset, png: str | Path, pdf: str | Path) -> None:
    """Step time and peak memory vs T per estimator (one line per K; bp has no K)."""
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    styles = ("-", "--", ":", "-.")
    t = ds["T"].values
    for estimator in ds["estimator"].values:
        ks = ds["K"].values[:1] if estimator == "bp" else ds["K"].values
        color = None
        for k, style in zip(ks, styles):
            point = ds.sel(estimator=estimator, K=k)
            label = estimator if estimator == "bp" else f"{estimator}, K={k}"
            line, = ax_time.plot(t, 1e3 * point["step_time"], style, marker="o", ms=3, color=color, label=label)
            color = line.get_color()
            ax_mem.plot(t, point["peak_memory"], style, marker="o", ms=3, color=color, label=label)
    for ax, label in ((ax_time, "median step time [ms]"), (ax_mem, "peak memory above baseline [MiB]")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(axis_label(ds["T"]))
        ax.set_ylabel(label)
    ax_time.legend(fontsize=6, ncol=2)
    save(fig, png, pdf)


def plot_bit_sweep(ds: xr.Dataset, png: str | Path, pdf: str | Path) -> None:
    """Per experiment: emulated test error vs weight bits (median over seeds) per method, with
    the float network's error as a dashed line of the same colour."""
    experiments = ds["experiment"].values
    fig, axes = plt.subplots(1, len(experiments), figsize=(3.8 * len(experiments), 3.4),
                             squeeze=False, constrained_layout=True)
    bits = ds["bits"].values
    for experiment, ax in zip(experiments, axes[0]):
        for method in ds["method"].values:
            cell = ds.sel({"experiment": experiment, "method": method})  # not method=: a .sel keyword
            emulated = cell["emulated_rel_l2"].median("seed", skipna=True)
            if np.all(np.isnan(emulated)):
                continue
            line, = ax.plot(bits, emulated, marker="o", ms=3, label=str(method))
            ax.axhline(float(cell["float_rel_l2"].median(skipna=True)), ls="--", lw=0.8,
                       color=line.get_color())
        ax.set_yscale("log")
        ax.set_xticks(bits)
        ax.set_xlabel(axis_label(ds["bits"]))
        ax.set_ylabel(axis_label(ds["emulated_rel_l2"]))
        ax.set_title(f"{experiment} (dashed: float SNN)", fontsize=9, loc="left")
    axes[0][0].legend(fontsize=6)
    save(fig, png, pdf)
