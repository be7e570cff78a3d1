"""Figures of the study (PNG for the report, PDF for papers), drawn with matplotlib's Agg."""

import logging
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import xarray as xr  # noqa: E402

from fwdsnn.artifacts import BASELINE, parse_run  # noqa: E402
from fwdsnn.status import COMPLETED  # noqa: E402

N_SAMPLES_SHOWN = 3
log = logging.getLogger(__name__)

# One colour per training method (and per benchmarked estimator of the same name), used by
# every figure so that a method looks the same everywhere. Variants share a hue family:
# back-propagation blues, forward gradients reds/oranges, perturbation greens, the ANN grey.
METHOD_COLOURS = {
    "ann": "#4d4d4d",
    "bp": "#1f77b4",
    "bp-stein": "#6baed6",
    "rfg-global": "#ff7f0e",
    "rfg-layer": "#d62728",
    "rfg-layer-stein": "#e377c2",
    "rfg-global-stein": "#fdae6b",
    "wp-global": "#bcbd22",
    "wp-layer": "#2ca02c",
    "ap-layer": "#9467bd",
    "ap-global": "#c5b0d5",
    "et-layer": "#8c564b",
    "np-layer": "#17becf",
}
_SPARE_COLOURS = ("#7f7f7f", "#393b79", "#637939", "#843c39",
                  "#7b4173", "#3182bd", "#e6550d")
ANN_TWIN_COLOUR = "#bdbdbd"


def method_colour(method: str) -> str:
    """The method's colour; a method not in METHOD_COLOURS gets a spare colour chosen by a
    stable hash of its name, so it too keeps its colour across figures and runs."""
    method = str(method)
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return _SPARE_COLOURS[sum(method.encode()) % len(_SPARE_COLOURS)]


def axis_label(var: xr.DataArray) -> str:
    """'long_name [units]', the label every axis of every figure carries."""
    return f"{var.attrs.get('long_name', var.name)} [{var.attrs.get('units', '1')}]"


def save(fig: plt.Figure, png: str | Path, pdf: str | Path) -> None:
    fig.savefig(png, dpi=120)
    fig.savefig(pdf)
    plt.close(fig)
    log.info("wrote %s and %s", png, pdf)


NO_SPIKING_RUNS = "This study has no spiking runs (only non-spiking methods such as ann)"


def plot_empty(text: str, png: str | Path, pdf: str | Path) -> None:
    """A figure that says why there is nothing to draw, in place of an empty or failing plot."""
    fig, ax = plt.subplots(figsize=(6.0, 2.0))
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=10, wrap=True)
    save(fig, png, pdf)


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


NO_DIAGNOSED_METHODS = ("No method of this study estimates a spiking network's gradient without "
                        "back-propagation: nothing to compare with BPTT")


def plot_gradient_quality(datasets: Mapping[str, xr.Dataset], png: str | Path, pdf: str | Path) -> None:
    """Cosine to the BPTT gradient vs K, one row per target/model and one panel per parameter
    layer (the first: the whole estimate), one line per method (mean, band: spread over
    draws), with sqrt(K/d) of the layer or of the whole network."""
    if not datasets:
        plot_empty(NO_DIAGNOSED_METHODS, png, pdf)
        return
    ncols = 1 + max(ds.sizes["layer"] for ds in datasets.values())
    fig, axes = plt.subplots(len(datasets), ncols, figsize=(2.4 * ncols, 2.1 * len(datasets)),
                             squeeze=False, constrained_layout=True)
    for (name, ds), row in zip(datasets.items(), axes):
        panels = [("all", ds["overall_cosine"], ds["theory_global"], ds.attrs["parameters"])]
        panels += [(layer, ds["cosine"].sel(layer=layer), ds["theory_layer"].sel(layer=layer),
                    int(ds["layer_parameters"].sel(layer=layer))) for layer in ds["layer"].values]
        for ax in row[len(panels):]:
            ax.set_visible(False)
        for ax, (layer, cos, theory, d) in zip(row, panels):
            k = ds["directions"].values
            for method in ds["method"].values:
                point = cos.sel({"method": method})
                mean, std = point.mean("draw").values, point.std("draw").values
                colour = method_colour(method)
                label = f"{method} (vs {point['reference'].item()})"
                ax.plot(k, mean, "-", marker="o", ms=2.5, color=colour, label=label)
                ax.fill_between(k, mean - std, mean + std, color=colour, alpha=0.12)
            ax.plot(k, np.minimum(theory, 1.0), ":", color="k", label="sqrt(K/d)")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log", nonpositive="mask")
            ax.set_title(f"{name} {layer} (d={d})" if layer == "all" else f"{layer} (d={d})",
                         fontsize=7, loc="left")
            ax.tick_params(which="both", labelsize=6)
        row[0].set_ylabel(axis_label(ds["overall_cosine"]), fontsize=6)
        row[0].legend(fontsize=5)
    for ax in axes[-1]:
        ax.set_xlabel(axis_label(next(iter(datasets.values()))["directions"]), fontsize=6)
    save(fig, png, pdf)


def plot_estimator_cost(ds: xr.Dataset, png: str | Path, pdf: str | Path) -> None:
    """Step time and peak memory vs T per estimator (one line per K; bp and bp-norse have no K)."""
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    styles = ("-", "--", ":", "-.")
    t = ds["T"].values
    for estimator in ds["estimator"].values:
        exact = str(estimator).startswith("bp")  # bp and bp-norse: no directions
        ks = ds["K"].values[:1] if exact else ds["K"].values
        color = method_colour(estimator)
        for k, style in zip(ks, styles):
            point = ds.sel(estimator=estimator, K=k)
            label = estimator if exact else f"{estimator}, K={k}"
            ax_time.plot(t, 1e3 * point["step_time"], style, marker="o", ms=3, color=color, label=label)
            ax_mem.plot(t, point["peak_memory"], style, marker="o", ms=3, color=color, label=label)
    for ax, label in ((ax_time, "median step time [ms]"), (ax_mem, "peak memory above baseline [MiB]")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel(axis_label(ds["T"]))
        ax.set_ylabel(label)
    ax_time.legend(fontsize=6, ncol=2)
    save(fig, png, pdf)


def plot_bit_sweep(ds: xr.Dataset, png: str | Path, pdf: str | Path) -> None:
    """Per experiment (target/model): emulated test error vs weight bits (median over seeds) per
    method, after post-training quantisation (solid) and where fine-tuned in the loop (dotted,
    squares), with the float network's error as a dashed line of the same colour; diverged seeds
    are named in the legend, methods whose every seed diverged in the panel."""
    experiments = [(t, m) for t in ds["target"].values for m in ds["model"].values
                   if int(ds["n_runs"].sel(target=t, model=m).sum())]
    if not experiments:
        plot_empty(f"{NO_SPIKING_RUNS}:\nnothing was converted to fixed point.", png, pdf)
        return
    fig, axes = plt.subplots(1, len(experiments), figsize=(3.8 * len(experiments), 3.4),
                             squeeze=False, constrained_layout=True)
    bits = ds["bits"].values
    for (target, model), ax in zip(experiments, axes[0]):
        all_diverged = []
        for method in ds["method"].values:
            cell = ds.sel({"target": target, "model": model, "method": method})  # not method=: a .sel keyword
            runs, diverged = int(cell["n_runs"]), int(cell["n_diverged"])
            if diverged and diverged == runs:
                all_diverged.append(str(method))
            emulated = cell["emulated_rel_l2_seed_median"]
            if np.all(np.isnan(emulated)):
                continue
            label = str(method) + (f", diverged {diverged}/{runs}" if diverged else "")
            ax.plot(bits, emulated, marker="o", ms=3, color=method_colour(method), label=label)
            ax.axhline(float(cell["rel_l2_mean_seed_median"]), ls="--", lw=0.8, color=method_colour(method))
            tuned = cell["emulated_rel_l2_tuned_seed_median"]
            if tuned.notnull().any():
                ax.plot(bits, tuned, marker="s", ms=3, ls=":", color=method_colour(method),
                        label=f"{method}, fine-tuned in the loop")
        if all_diverged:
            ax.text(0.02, 0.02, f"diverged: {', '.join(all_diverged)}", transform=ax.transAxes,
                    fontsize=7, color="r")
        if ax.lines:
            ax.set_yscale("log")
            ax.legend(fontsize=6)
        ax.set_xticks(bits)
        ax.set_xlabel(axis_label(ds["bits"]))
        ax.set_ylabel(axis_label(ds["emulated_rel_l2"]))
        ax.set_title(f"{target}/{model} (dashed: float SNN; dotted: fine-tuned)", fontsize=9, loc="left")
    save(fig, png, pdf)


# ---- per-run results: predictions, training curves, accuracy, activity and energy ---------

Runs = Mapping[tuple[str, str], Mapping[int, xr.Dataset]]  # (model, method) -> seed -> dataset


def _grid(n: int, ncols: int = 4, size: tuple[float, float] = (3.6, 2.9)):
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False,
                             constrained_layout=True)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def best_and_median_seed(metrics: Mapping[int, xr.Dataset]) -> tuple[int | None, int | None]:
    """Seeds of the lowest and the median test error (mean over functions) among the completed
    runs (for an even count the lower of the two middle ones); None when every run diverged."""
    errors = {seed: float(ds["rel_l2_mean"]) for seed, ds in metrics.items()
              if ds.attrs["status"] == "completed" and np.isfinite(float(ds["rel_l2_mean"]))}
    if not errors:
        return None, None
    ranked = sorted(errors, key=errors.get)
    return ranked[0], ranked[(len(ranked) - 1) // 2]


def _curve(u: xr.DataArray, sample) -> tuple[xr.DataArray, str]:
    """A 1-D view of one test function's solution: the function itself (pointwise targets: all
    test points), or a slice at the last value of every axis after the first."""
    if u.dims == ("sample",):
        return u, ""
    one = u.sel(sample=sample)
    fixed = {dim: one[dim].values[-1] for dim in one.dims[1:]}
    where = ", ".join(f"{dim} = {float(value):.3g}" for dim, value in fixed.items())
    return one.sel(fixed), where


def plot_predictions(reference: xr.Dataset, predictions: Runs, metrics: Runs, png: str | Path,
                     pdf: str | Path, title: str = "") -> None:
    """One panel per (model, method): the reference (black) and the predictions of the best
    (solid) and the median seed (dashed) for the first test function; 2-D outputs as a slice
    at the last time, with the reference image of that function in the first panel."""
    keys = list(predictions)
    first = next(iter(next(iter(predictions.values())).values()))
    sample = first["sample"].values[0]
    u_ref = reference["u"].sel(sample=first["sample"].values)
    image = u_ref.ndim > 2
    fig, axes = _grid(len(keys) + image)
    if image:
        one = u_ref.sel(sample=sample)
        mesh = axes[0].pcolormesh(one[one.dims[1]], one[one.dims[0]], one, shading="auto", cmap="RdBu_r")
        fig.colorbar(mesh, ax=axes[0], label=axis_label(reference["u"]))
        axes[0].axvline(float(one[one.dims[1]].values[-1]), color="k", ls=":", lw=1.5)
        axes[0].set_xlabel(axis_label(reference[one.dims[1]]))
        axes[0].set_ylabel(axis_label(reference[one.dims[0]]))
        axes[0].set_title(f"reference, test function {sample} (dotted: slice)", fontsize=8, loc="left")
    for (model, method), ax in zip(keys, axes[image:]):
        colour = method_colour(method)
        ref, where = _curve(u_ref, sample)
        coord = ref.dims[0] if ref.dims != ("sample",) else next(c for c in ref.coords if c != "sample")
        order = np.argsort(ref[coord].values)
        ax.plot(ref[coord].values[order], ref.values[order], color="k", lw=2.2, alpha=0.5, label="reference")
        best, median = best_and_median_seed(metrics[(model, method)])
        shown = [(best, "-", "best")] + ([(median, "--", "median")] if median != best else [])
        for seed, style, which in shown:
            if seed is None:
                ax.text(0.5, 0.5, "all seeds diverged", transform=ax.transAxes, ha="center")
                continue
            pred, _ = _curve(predictions[(model, method)][seed]["u_pred"], sample)
            err = float(metrics[(model, method)][seed]["rel_l2_mean"])
            ax.plot(pred[coord].values[order], pred.values[order], style, color=colour, lw=1.3,
                    label=f"{which} seed {seed} (rel. L2 {err:.3g})")
        ax.set_xlabel(axis_label(reference[coord]))
        ax.set_ylabel(axis_label(reference["u"]) + (f" at {where}" if where else ""), fontsize=8)
        ax.set_title(f"{model} / {method}", fontsize=9, loc="left", color=colour)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    save(fig, png, pdf)


def _seed_band(curves: list[xr.DataArray], dim: str) -> xr.DataArray:
    """Curves of several seeds (possibly of different lengths: a diverged run stops early) as
    one array (seed, dim), NaN where a seed has no value."""
    return xr.concat(curves, dim="seed", join="outer")


def _test_error_curves(runs: list[xr.Dataset]) -> tuple[xr.DataArray, xr.DataArray, xr.DataArray]:
    """The seeds' median wall time per step, the test error per seed and evaluation, and that
    median wall time at each evaluation."""
    wall = _seed_band([h["wall_time"] for h in runs], "step").median("seed")
    error = _seed_band([h["test_rel_l2_mean"] for h in runs], "eval_step")
    return wall, error, wall.sel(step=error["eval_step"].values)


def _draw_band(ax: plt.Axes, x, values: xr.DataArray, colour: str, style: str, label: str) -> None:
    """The median over seeds as a line and, with several seeds, their min-max as a band."""
    ax.plot(x, values.median("seed"), style, color=colour, lw=1.2, label=label)
    if values.sizes["seed"] > 1:
        ax.fill_between(x, values.min("seed"), values.max("seed"), color=colour, alpha=0.15, lw=0)


def plot_training(histories: Runs, png: str | Path, pdf: str | Path, title: str = "") -> None:
    """Training loss and test error against step and against wall time: median over seeds
    (line) and min-max over seeds (band); the loss is a running mean over 2% of the steps."""
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    models = list(dict.fromkeys(model for model, _ in histories))
    styles = dict(zip(models, ("-", "--", ":", "-.")))
    some = None
    for (model, method), seeds in histories.items():
        colour, style = method_colour(method), styles[model]
        label = method if len(models) == 1 else f"{model} / {method}"
        runs = [h for h in seeds.values() if h.sizes["step"]]
        if not runs:
            continue
        some = runs[0]
        window = max(1, max(h.sizes["step"] for h in runs) // 50)
        loss = _seed_band([h["loss"].rolling(step=window, min_periods=1).mean() for h in runs], "step")
        wall, error, wall_eval = _test_error_curves(runs)
        for row, (values, dim) in enumerate(((loss, "step"), (error, "eval_step"))):
            for col, x in enumerate((values[dim].values, (wall if dim == "step" else wall_eval).values)):
                _draw_band(axes[row][col], x, values, colour, style, label)
    if some is not None:
        for row, var in enumerate((some["loss"], some["test_rel_l2_mean"])):
            for col, xvar in enumerate((some["step"], some["wall_time"])):
                ax = axes[row][col]
                ax.set_yscale("log")
                ax.set_xlabel(axis_label(xvar) if col else "optimiser step [1]")
                ax.set_ylabel(axis_label(var))
                if col:
                    ax.set_xscale("log")
    axes[0][0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    save(fig, png, pdf)


def plot_compute_matched(histories: Mapping[str, xr.Dataset], png: str | Path, pdf: str | Path) -> None:
    """Per target: test error against training wall time (log-log), median over seeds (line,
    at the seeds' median wall time of each evaluation) and min-max over seeds (band), for every
    method, the non-spiking ANN twin in grey; a dotted line at bp's median total wall time, the
    budget of the table's "at bp's wall time" column. ``histories``: run path -> history.nc."""
    by_target: dict[str, dict[tuple[str, str], list[xr.Dataset]]] = {}
    for run, history in histories.items():
        key = parse_run(run)
        if history.sizes["step"]:
            by_target.setdefault(key.target, {}).setdefault((key.model, key.method), []).append(history)
    if not by_target:
        plot_empty("No run completed a training step: no error against wall time to show.", png, pdf)
        return
    fig, axes = _grid(len(by_target), ncols=3, size=(4.6, 3.8))
    for (target, curves), ax in zip(by_target.items(), axes):
        models = list(dict.fromkeys(model for model, _ in curves))
        styles = dict(zip(models, ("-", "--", ":", "-.")))
        for (model, method), runs in curves.items():
            colour = method_colour(method) if runs[0].sizes.get("layer", 0) else ANN_TWIN_COLOUR
            label = method if len(models) == 1 else f"{model} / {method}"
            _, error, wall_eval = _test_error_curves(runs)
            _draw_band(ax, wall_eval.values, error, colour, styles[model], label)
            totals = [float(h["wall_time"].values[-1]) for h in runs if h.attrs["status"] == COMPLETED]
            if method == BASELINE and totals:  # as the table: over bp's completed seeds
                ax.axvline(float(np.median(totals)), color=colour, ls=":", lw=0.8)
        some = next(iter(curves.values()))[0]
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(axis_label(some["wall_time"]), fontsize=8)
        ax.set_ylabel(axis_label(some["test_rel_l2_mean"]), fontsize=8)
        ax.set_title(f"{target} (dotted: bp's wall time)", fontsize=9, loc="left")
        ax.legend(fontsize=6)
    save(fig, png, pdf)


def _experiments(ds: xr.Dataset) -> list[tuple[str, str, list[str]]]:
    """(target, model, methods trained) for every experiment of a table, in table order."""
    found = []
    for target in ds["target"].values:
        for model in ds["model"].values:
            cell = ds.sel({"target": target, "model": model})
            methods = [str(m) for m in ds["method"].values if int(cell["n_runs"].sel({"method": m}))]
            if methods:
                found.append((str(target), str(model), methods))
    return found


def _grouped_bars(ax: plt.Axes, ds: xr.Dataset, name: str, experiments, with_seeds: bool = True) -> None:
    """Bars of the median over seeds of ds[name] per experiment (group) and method (colour),
    error bars from the seeds' min to max, one dot per seed; diverged seeds are counted above
    the bar ('÷n')."""
    methods = list(dict.fromkeys(m for _, _, ms in experiments for m in ms))
    width = 0.8 / len(methods)
    labelled = set()
    for g, (target, model, trained) in enumerate(experiments):
        for j, method in enumerate(methods):
            if method not in trained:
                continue
            cell = ds.sel({"target": target, "model": model, "method": method})
            values = cell[name].values
            x = g - 0.4 + width * (j + 0.5)
            finite = values[np.isfinite(values)]
            colour = method_colour(method)
            label = None if method in labelled else method
            labelled.add(method)
            if finite.size:
                median = float(np.median(finite))
                ax.bar(x, median, width, color=colour, label=label,
                       yerr=[[median - finite.min()], [finite.max() - median]], capsize=2,
                       error_kw={"lw": 0.8})
                if with_seeds:
                    ax.plot(np.full(finite.size, x), finite, "o", ms=2.5, color="k", alpha=0.6)
            else:
                ax.bar(x, np.nan, width, color=colour, label=label)
            diverged = int(cell["n_diverged"]) if "n_diverged" in cell else 0
            if diverged:
                top = float(finite.max()) if finite.size else 1.0
                ax.annotate(f"÷{diverged}", (x, top), textcoords="offset points", xytext=(0, 3),
                            ha="center", fontsize=6, color="r")
    ax.set_xticks(range(len(experiments)))
    ax.set_xticklabels([f"{t}\n{m}" for t, m, _ in experiments], fontsize=7)


def plot_accuracy(ds: xr.Dataset, png: str | Path, pdf: str | Path) -> None:
    """Test relative L2 error per experiment and method: median over seeds (bar), min-max
    (error bar), each seed (dot); ÷n marks n diverged seeds."""
    experiments = _experiments(ds)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.5 * len(experiments) + 2), 4.2), constrained_layout=True)
    _grouped_bars(ax, ds, "rel_l2_mean", experiments)
    ax.set_yscale("log")
    ax.set_ylabel(axis_label(ds["rel_l2_mean"]))
    ax.set_xlabel("target / model")
    ax.legend(fontsize=7, ncol=2)
    save(fig, png, pdf)


def plot_spike_rates(ds: xr.Dataset, png: str | Path, pdf: str | Path) -> None:
    """Per experiment, the spike rate of each LIF layer per method: median over seeds (bar),
    min-max over seeds (error bar)."""
    experiments = _experiments(ds)
    if not experiments:
        plot_empty(f"{NO_SPIKING_RUNS}:\nno spike rates to show.", png, pdf)
        return
    fig, axes = _grid(len(experiments), ncols=2, size=(5.2, 3.2))
    for (target, model, methods), ax in zip(experiments, axes):
        cell = ds.sel({"target": target, "model": model})
        layers = [str(layer) for layer in ds["layer"].values
                  if np.isfinite(cell["spike_rate"].sel(layer=layer).values).any()]
        width = 0.8 / len(methods)
        for j, method in enumerate(methods):
            rates = cell["spike_rate"].sel({"method": method}).sel(layer=layers)
            median = rates.median("seed", skipna=True).values
            low, high = rates.min("seed", skipna=True).values, rates.max("seed", skipna=True).values
            x = np.arange(len(layers)) - 0.4 + width * (j + 0.5)
            ax.bar(x, median, width, color=method_colour(method), label=method,
                   yerr=[median - low, high - median], capsize=1.5, error_kw={"lw": 0.7})
        ax.set_xticks(range(len(layers)))
        ax.set_xticklabels(layers, fontsize=6, rotation=30, ha="right")
        ax.set_xlabel(axis_label(ds["layer"]))
        ax.set_ylabel("spike rate [spikes / neuron / step]", fontsize=8)
        ax.set_title(f"{target} / {model}", fontsize=9, loc="left")
        ax.legend(fontsize=6)
    save(fig, png, pdf)


def plot_energy(ds: xr.Dataset, png: str | Path, pdf: str | Path) -> None:
    """Left: energy proxy per inference of the spiking networks (bars, median over seeds) and
    of their ANN twins (grey). Right: SNN / ANN energy ratio per experiment and method."""
    experiments = _experiments(ds)
    if not experiments:
        plot_empty(f"{NO_SPIKING_RUNS}:\nno synaptic operations or energy to compare.", png, pdf)
        return
    fig, (ax_e, ax_r) = plt.subplots(1, 2, figsize=(max(9.0, 2.6 * len(experiments) + 2), 4.0),
                                     constrained_layout=True)
    _grouped_bars(ax_e, ds, "energy_snn", experiments, with_seeds=False)
    for g, (target, model, _) in enumerate(experiments):
        twin = ds["energy_ann"].sel({"target": target, "model": model}).median(skipna=True)
        ax_e.hlines(float(twin), g - 0.45, g + 0.45, colors=ANN_TWIN_COLOUR, lw=3,
                    label="ANN twin" if g == 0 else None, zorder=0)
    ax_e.set_yscale("log")
    ax_e.set_ylabel("energy per inference [pJ]")
    ax_e.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # clear of the bars
    _grouped_bars(ax_r, ds, "energy_ratio", experiments)
    ax_r.axhline(1.0, color="k", lw=0.8, ls="--")
    ax_r.set_yscale("log")
    ax_r.set_ylabel("SNN / ANN twin energy per inference [1]")
    for ax in (ax_e, ax_r):
        ax.set_xlabel("target / model")
    save(fig, png, pdf)
