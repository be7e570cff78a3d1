"""Aggregate tables over the study: accuracy, training cost, work and energy per inference, the
bit sweep (emulated error against weight bits), the compute-matched comparison (test error
at equal steps and at bp's wall time) and the convergence check (how much the last fifth of
each run's steps still lowered its test error), the last two from the runs' training histories.

Each table is a Dataset with dims target x model x method x seed (entries of runs that the
study does not train are NaN with status ``not run``), plus summaries over seeds per
(target, model, method), written three ways: NetCDF (everything), CSV (one row per target,
model and method, numbers) and Markdown (the same rows, formatted, for the report).

Diverged runs are never dropped silently: their accuracy and activity entries are NaN (a
diverged network's prediction means nothing), summaries are over the completed seeds, and
every row says how many seeds diverged ("diverged (1/3)"); where all did, the cells say so.
Training cost keeps diverged runs (their steps were paid for). Ratios to bp divide a method's
median over seeds by bp's median on the same target and model (the study's "rfg-layer/bp").
"""

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import BASELINE, EMULATED, HISTORY, LAVA_MAX_WEIGHT_BITS, METRICS, TABLE_FILES, parse_run
from fwdsnn.status import COMPLETED, DIVERGED

DIMS = ("target", "model", "method", "seed")
SUMMARY_DIMS = DIMS[:-1]
NOT_RUN = "not run"

# metrics.nc variable -> table; masked: NaN for diverged runs
ACCURACY = {"variables": ("rel_l2_mean", "rel_l2_median"), "key": "rel_l2_mean", "masked": True}
COST = {"variables": ("steps", "steps_planned", "forward_passes", "wall_time", "time_per_step",
                      "peak_rss", "job_time"), "key": "wall_time", "masked": False}
ENERGY = {"variables": ("spike_rate_mean", "sop_total", "mac_snn_total", "mac_ann_total",
                        "energy_snn", "energy_ann", "energy_ratio", "loop_emulator_passes_per_step",
                        "loop_sop_per_step"), "key": "energy_snn", "masked": True}


def _ordered(values) -> list:
    return list(dict.fromkeys(values))


def _coords(runs: Sequence[str]) -> dict:
    parts = [parse_run(run) for run in runs]
    names = {"target": "target", "model": "model", "method": "training method", "seed": "training seed"}
    values = {"target": _ordered(p[0] for p in parts), "model": _ordered(p[1] for p in parts),
              "method": _ordered(p[2] for p in parts), "seed": sorted({p[3] for p in parts})}
    return {dim: (dim, np.array(values[dim], dtype=int if dim == "seed" else str),
                  {"long_name": names[dim], "units": "1"}) for dim in DIMS}


def _status(runs: Sequence[str], metrics: Mapping[str, xr.Dataset], coords: dict) -> xr.DataArray:
    shape = tuple(len(coords[dim][1]) for dim in DIMS)
    status = np.full(shape, NOT_RUN, dtype=object)
    for run in runs:
        status[_index(run, coords)] = metrics[run].attrs["status"]
    return xr.DataArray(status.astype(str), dims=DIMS,
                        attrs={"long_name": "training status of the run", "units": "1"})


def _index(run: str, coords: dict) -> tuple[int, ...]:
    return tuple(list(coords[dim][1]).index(value) for dim, value in zip(DIMS, parse_run(run)))


def _gather(runs, metrics, coords, name, status=None, masked=False) -> xr.DataArray:
    shape = tuple(len(coords[dim][1]) for dim in DIMS)
    values = np.full(shape, np.nan)
    attrs = {}
    for run in runs:
        var = metrics[run][name]
        attrs = dict(var.attrs)
        values[_index(run, coords)] = float(var)
    if masked:
        values[status.values == DIVERGED] = np.nan
    return xr.DataArray(values, dims=DIMS, attrs=_describe(attrs.get("long_name", name), attrs.get("units", "1"),
                                                           attrs))


def _describe(long_name: str, units: str, source: Mapping) -> dict:
    """Attributes of a variable derived from one with attributes ``source``: a quantity derived
    from a measurement (its median, its ratio to bp) is a measurement too."""
    attrs = {"long_name": long_name, "units": units}
    kind = source.get(io.MEASUREMENT_ATTR)
    return io.measured(attrs, kind) if kind else attrs


def _ratio_to_baseline(median: xr.DataArray) -> xr.DataArray:
    """A method's median over the baseline's median on the same target and model (NaN if no bp)."""
    if BASELINE not in median["method"].values:
        return xr.full_like(median, np.nan)
    return median / median.sel({"method": BASELINE})  # not method=: a .sel keyword


def _summaries(ds: xr.Dataset, names: Sequence[str]) -> None:
    """Mean, sample std, median over seeds, and the median's ratio to bp, of each variable."""
    for name in names:
        var, attrs = ds[name], ds[name].attrs
        long, units = attrs["long_name"], attrs["units"]
        count = var.notnull().sum("seed")
        ds[f"{name}_seed_mean"] = var.mean("seed", skipna=True).assign_attrs(
            _describe(f"{long}, mean over seeds", units, attrs))
        ds[f"{name}_seed_std"] = var.std("seed", ddof=1, skipna=True).where(count > 1).assign_attrs(
            _describe(f"{long}, sample standard deviation over seeds (NaN: under two seeds)", units, attrs))
        median = var.median("seed", skipna=True)
        ds[f"{name}_seed_median"] = median.assign_attrs(_describe(f"{long}, median over seeds", units, attrs))
        ds[f"{name}_ratio_to_bp"] = _ratio_to_baseline(median).assign_attrs(
            _describe(f"{long}, median over seeds / bp's median on the same target and model", "1", attrs))


def table(runs: Sequence[str], metrics: Mapping[str, xr.Dataset], spec: Mapping) -> xr.Dataset:
    """One aggregate table: per-run variables of the spec, status and counts, seed summaries."""
    coords = _coords(runs)
    status = _status(runs, metrics, coords)
    ds = xr.Dataset({name: _gather(runs, metrics, coords, name, status, spec["masked"])
                     for name in spec["variables"]}, coords=coords)
    ds["status"] = status
    for state, label in ((COMPLETED, "completed"), (DIVERGED, "diverged")):
        ds[f"n_{state}"] = (status == state).sum("seed").astype(np.int32).assign_attrs(
            long_name=f"seeds whose training {label}", units="1")
    ds["n_runs"] = (status != NOT_RUN).sum("seed").astype(np.int32).assign_attrs(
        long_name="seeds trained", units="1")
    _summaries(ds, spec["variables"])
    return ds


def accuracy_table(runs, metrics) -> xr.Dataset:
    return table(runs, metrics, ACCURACY)


def cost_table(runs, metrics) -> xr.Dataset:
    return table(runs, metrics, COST)


def energy_table(runs, metrics) -> xr.Dataset:
    """Work and energy per inference of the spiking runs, and their spike rates per layer
    (the union of every run's LIF layers; NaN where a model has no such layer)."""
    spiking = [run for run in runs if metrics[run].attrs.get("spiking", 1)]
    ds = table(spiking, metrics, ENERGY)
    layers = _ordered(str(layer) for run in spiking for layer in metrics[run]["layer"].values)
    rate = np.full((*(ds.sizes[dim] for dim in DIMS), len(layers)), np.nan)
    coords = _coords(spiking)
    for run in spiking:
        if metrics[run].attrs["status"] == DIVERGED:
            continue
        for layer, value in zip(metrics[run]["layer"].values, metrics[run]["spike_rate"].values):
            rate[(*_index(run, coords), layers.index(str(layer)))] = value
    ds = ds.assign_coords(layer=("layer", np.array(layers, dtype=str), {"long_name": "LIF layer", "units": "1"}))
    ds["spike_rate"] = ((*DIMS, "layer"), rate,
                        {"long_name": "spikes per neuron per time step on the test split", "units": "1"})
    ds["spike_rate_seed_median"] = ds["spike_rate"].median("seed", skipna=True).assign_attrs(
        long_name="spikes per neuron per time step on the test split, median over seeds", units="1")
    return ds


def bit_sweep_table(runs, metrics, emulated: Mapping[tuple[str, int], tuple[float, float]],
                    bits: Sequence[int], tuned: Mapping[tuple[str, int], tuple[float, float]] | None = None
                    ) -> xr.Dataset:
    """The float error table plus, for every run at each weight width, the emulated error and
    spike agreement (emulated[(run, bits)], see read_emulated), their seed medians and the
    error's ratio to the float error; diverged runs have nothing to convert and stay NaN.
    ``tuned`` (the same, of the fine-tuned networks, fwdsnn.finetune) gives
    emulated_rel_l2_tuned, NaN at every run and width not fine-tuned."""
    ds = table(runs, metrics, {"variables": ("rel_l2_mean",), "masked": True})
    ds = ds.assign_coords(bits=("bits", np.array(bits, dtype=int), {"long_name": "weight mantissa bits",
                                                                   "units": "bit"}))
    coords = _coords(runs)
    values = np.full((2, *(ds.sizes[dim] for dim in DIMS), len(bits)), np.nan)
    for run in runs:
        if metrics[run].attrs["status"] != DIVERGED:
            values[(slice(None), *_index(run, coords))] = np.transpose([emulated[(run, b)] for b in bits])
    for name, value, long_name in (
            ("emulated_rel_l2", values[0], "emulated test relative L2 error"),
            ("spike_agreement", values[1], "share of (neuron, step) pairs spiking as in the float network")):
        ds[name] = ((*DIMS, "bits"), value, {"long_name": long_name, "units": "1"})
        ds[f"{name}_seed_median"] = ds[name].median("seed", skipna=True).assign_attrs(
            long_name=f"{long_name}, median over seeds", units="1")
    tuned_values = np.full(ds["emulated_rel_l2"].shape, np.nan)
    for (run, b), (error, _) in (tuned or {}).items():
        tuned_values[(*_index(run, coords), list(bits).index(b))] = error
    ds["emulated_rel_l2_tuned"] = ((*DIMS, "bits"), tuned_values, {
        "long_name": "emulated test relative L2 error after fine-tuning in the loop (NaN: not fine-tuned)",
        "units": "1"})
    ds["emulated_rel_l2_tuned_seed_median"] = ds["emulated_rel_l2_tuned"].median("seed", skipna=True).assign_attrs(
        long_name="emulated test relative L2 error after fine-tuning in the loop, median over seeds", units="1")
    ds["ratio_to_float"] = (ds["emulated_rel_l2"] / ds["rel_l2_mean"]).assign_attrs(
        long_name="emulated / float test relative L2 error", units="1")
    ds["emulated_ratio_to_float"] = (ds["emulated_rel_l2_seed_median"] / ds["rel_l2_mean_seed_median"]
                                     ).assign_attrs(long_name="emulated error median over seeds / float "
                                                    "error median over seeds", units="1")
    return ds


def read_emulated(runs: Sequence[str], bits: Sequence[int], paths: Sequence[str | Path]
                  ) -> dict[tuple[str, int], tuple[float, float]]:
    """(test rel-L2 as mean over test functions, the study's metric; spike agreement over all
    LIF layers) of each emulated_w*.nc; paths ordered as [(run, b) for run in runs for b in bits]."""
    keys = [(run, b) for run in runs for b in bits]
    out = {}
    for key, path in zip(keys, paths):
        ds = io.read_artifact(path, EMULATED)
        out[key] = (float(np.mean(ds["rel_l2"])), float(ds.attrs["spike_agreement_all"]))
    return out


# ---- compute-matched comparison ----------------------------------------------------------

# the codes of the two flag variables (CF flag_values 0, 1, ...; NaN values have a non-zero code)
EQUAL_STEPS_FLAGS = ("at_common_step", "stopped_before_common_step", "no_evaluation_by_common_step",
                     "no_common_step", "not_run")
BP_WALL_TIME_FLAGS = ("within_run", "run_shorter_than_bp", "diverged_before_bp_wall_time",
                      "no_evaluation_within_bp_wall_time", "no_bp_run", "not_run")
COMPUTE_MATCHED = {"variables": ("rel_l2_at_equal_steps", "rel_l2_at_bp_wall_time"), "masked": False}
COMPUTE_MATCHED_USED = ("step_at_equal_steps", "wall_time_at_equal_steps", "bp_wall_time",
                        "step_at_bp_wall_time", "wall_time_at_bp_wall_time")


def read_histories(runs: Sequence[str], paths: Sequence[str | Path]) -> dict[str, xr.Dataset]:
    histories = {run: io.read_artifact(path, HISTORY) for run, path in zip(runs, paths)}
    for history in histories.values():
        io.require_attrs(history, ("status",))
    return histories


def _spiking(history: xr.Dataset) -> bool:
    return history.sizes.get("layer", 0) > 0


def _in_the_loop(history: xr.Dataset) -> bool:
    """Trained in the loop (method.hardware): it minimises the emulator's loss on a budget of
    its own, so it does not set the common step of the float methods."""
    return "hardware" in json.loads(history.attrs.get("config_json", "{}")).get("method", {})


def common_steps(runs: Sequence[str], histories: Mapping[str, xr.Dataset]) -> dict[tuple[str, str], int]:
    """Per experiment (target, model): the largest evaluation step that every spiking method
    reached, a method's reach being the last evaluation of its shortest completed run. Diverged
    runs do not count: one early divergence would otherwise pull every method back to its step;
    nor do runs trained in the loop.
    Experiments without a completed spiking run are absent."""
    reach: dict[tuple[str, str], dict[str, int]] = {}
    for run in runs:
        history, key = histories[run], parse_run(run)
        if history.attrs["status"] == COMPLETED and _spiking(history) and history.sizes["eval_step"] \
                and not _in_the_loop(history):
            methods = reach.setdefault((key.target, key.model), {})
            last = int(history["eval_step"].values[-1])
            methods[key.method] = min(last, methods.get(key.method, last))
    return {experiment: min(methods.values()) for experiment, methods in reach.items()}


def bp_budgets(runs: Sequence[str], histories: Mapping[str, xr.Dataset]) -> tuple[dict[str, float], list[str]]:
    """Per run, bp's total training wall time on the same target, model and seed (NaN without a
    completed bp run there); where that seed's bp is missing or diverged (its time is no full
    budget), the median over bp's completed seeds. Also the runs that got the median."""
    totals: dict[tuple[str, str], dict[int, float]] = {}
    for run in runs:
        history, key = histories[run], parse_run(run)
        if key.method == BASELINE and history.attrs["status"] == COMPLETED and history.sizes["step"]:
            totals.setdefault((key.target, key.model), {})[key.seed] = float(history["wall_time"].values[-1])
    budgets, from_median = {}, []
    for run in runs:
        key = parse_run(run)
        seeds = totals.get((key.target, key.model), {})
        if key.seed in seeds:
            budgets[run] = seeds[key.seed]
        else:
            budgets[run] = float(np.median(list(seeds.values()))) if seeds else np.nan
            from_median += [run] if seeds else []
    return budgets, from_median


def _last_evaluation(values: np.ndarray, limit: float) -> int:
    """Index of the last entry of the ascending ``values`` at or below ``limit``; -1 if none."""
    return int(np.searchsorted(values, limit, side="right")) - 1


def _read_at_common_step(history: xr.Dataset, steps: np.ndarray, common: float) -> tuple[int, int]:
    """(index of the evaluation read, flag code) at the common step; index -1: NaN."""
    if not np.isfinite(common):
        return -1, EQUAL_STEPS_FLAGS.index("no_common_step")
    if history.sizes["step"] < common:  # a value from before it is no value at equal steps
        return -1, EQUAL_STEPS_FLAGS.index("stopped_before_common_step")
    i = _last_evaluation(steps, common)
    return i, EQUAL_STEPS_FLAGS.index("at_common_step" if i >= 0 else "no_evaluation_by_common_step")


def _read_at_bp_wall_time(history: xr.Dataset, walls: np.ndarray, budget: float) -> tuple[int, int]:
    """(index of the evaluation read, flag code) at bp's wall time; index -1: NaN."""
    if not np.isfinite(budget):
        return -1, BP_WALL_TIME_FLAGS.index("no_bp_run")
    total = float(history["wall_time"].values[-1]) if history.sizes["step"] else 0.0
    if history.attrs["status"] == DIVERGED and total < budget:  # it stopped for failing, not for being done
        return -1, BP_WALL_TIME_FLAGS.index("diverged_before_bp_wall_time")
    i = _last_evaluation(walls, budget)
    if i < 0:
        return i, BP_WALL_TIME_FLAGS.index("no_evaluation_within_bp_wall_time")
    # a run done inside bp's budget: i is its last evaluation
    return i, BP_WALL_TIME_FLAGS.index("within_run" if total >= budget else "run_shorter_than_bp")


def _matched_run(history: xr.Dataset, common: float, budget: float) -> xr.Dataset:
    """One run's test error (history's test_rel_l2_mean) at the experiment's common step and at
    bp's wall time, the evaluation step and wall time each was read at, and the two flags."""
    steps = history["eval_step"].values
    errors = history["test_rel_l2_mean"].values.astype(float)
    walls = history["wall_time"].sel(step=steps).values.astype(float)

    def read(i):
        return (errors[i], steps[i], walls[i]) if i >= 0 else (np.nan,) * 3

    i_eq, f_eq = _read_at_common_step(history, steps, common)
    i_bp, f_bp = _read_at_bp_wall_time(history, walls, budget)
    (e_eq, s_eq, w_eq), (e_bp, s_bp, w_bp) = read(i_eq), read(i_bp)
    variables = {
        "rel_l2_at_equal_steps": (e_eq, "test relative L2 error at the experiment's common step", "1", False),
        "step_at_equal_steps": (s_eq, "evaluation step read for the common step", "1", False),
        "wall_time_at_equal_steps": (w_eq, "wall time of training at that step", "s", True),
        "equal_steps_flag": (f_eq, "how the value at the common step was read", "1", False),
        # everything read at bp's wall time depends on two measured clocks
        "rel_l2_at_bp_wall_time": (e_bp, "test relative L2 error at bp's wall time", "1", True),
        "bp_wall_time": (budget, "bp's total training wall time on the same target, model and seed",
                         "s", True),
        "step_at_bp_wall_time": (s_bp, "evaluation step read at bp's wall time", "1", True),
        "wall_time_at_bp_wall_time": (w_bp, "wall time of training at that step", "s", True),
        "bp_wall_time_flag": (f_bp, "how the value at bp's wall time was read", "1", True),
    }
    ds = xr.Dataset({name: ((), float(value), io.measured({"long_name": long_name, "units": units}, "timing")
                            if timed else {"long_name": long_name, "units": units})
                     for name, (value, long_name, units, timed) in variables.items()})
    ds.attrs["status"] = history.attrs["status"]
    return ds


def _flags(values: xr.DataArray, meanings: Sequence[str]) -> xr.DataArray:
    """A gathered flag as integer codes (runs the study does not train: 'not_run') with CF's
    flag_values and flag_meanings."""
    codes = values.fillna(meanings.index("not_run")).astype(np.int8)
    return codes.assign_attrs(values.attrs, flag_values=np.arange(len(meanings), dtype=np.int8),
                              flag_meanings=" ".join(meanings))


def compute_matched_table(runs: Sequence[str], histories: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """The test error of every run at its experiment's common step (the largest evaluation step
    every spiking method reached) and at bp's total wall time, with seed summaries, ratios to
    bp, the steps and wall times read, and flags for values that are missing or read early.

    A completed run whose whole training took less wall time than bp's keeps its final error,
    flagged ``run_shorter_than_bp``: it is what the method reached within bp's budget (more time
    could only lower it), and NaN would hide exactly the methods cheaper than bp. A diverged run
    keeps the errors it reached before it stopped (a later divergence does not change them) and
    is NaN at a budget it never got to."""
    common = common_steps(runs, histories)
    budgets, from_median = bp_budgets(runs, histories)
    per_run = {}
    for run in runs:
        key = parse_run(run)
        per_run[run] = _matched_run(histories[run], common.get((key.target, key.model), np.nan), budgets[run])
    ds = table(runs, per_run, COMPUTE_MATCHED)
    coords = _coords(runs)
    for name in COMPUTE_MATCHED_USED:
        ds[name] = _gather(runs, per_run, coords, name)
    ds["bp_wall_time"].attrs["bp_median_over_seeds_for"] = ", ".join(from_median) or "none"
    ds["bp_wall_time"].attrs["comment"] = ("runs listed in bp_median_over_seeds_for had no completed bp run of "
                                           "their seed: they are cut at the median over bp's completed seeds")
    ds["equal_steps_flag"] = _flags(_gather(runs, per_run, coords, "equal_steps_flag"), EQUAL_STEPS_FLAGS)
    ds["bp_wall_time_flag"] = _flags(_gather(runs, per_run, coords, "bp_wall_time_flag"), BP_WALL_TIME_FLAGS)
    ds["common_step"] = (("target", "model"),
                         [[float(common.get((t, m), np.nan)) for m in ds["model"].values] for t in ds["target"].values],
                         {"long_name": "largest evaluation step every spiking method of the experiment reached "
                                       "(NaN: no completed spiking run)", "units": "1"})
    return ds



# a run has converged when its last fifth of steps lowered the test error by less than this
CONVERGED_FRACTION = 0.8
CONVERGED_IMPROVEMENT = 0.05
CONVERGENCE = {"variables": ("rel_l2_at_four_fifths", "rel_l2_final", "last_fifth_improvement"),
               "masked": True}


def _convergence_run(history: xr.Dataset) -> xr.Dataset:
    """One run's test error (history's test_rel_l2_mean) at its last evaluation by 4/5 of its
    steps and at its last evaluation, and the relative improvement between the two."""
    steps = history["eval_step"].values
    errors = history["test_rel_l2_mean"].values.astype(float)
    total = history.sizes["step"]
    early = _last_evaluation(steps, CONVERGED_FRACTION * total) if total else -1
    late = len(steps) - 1
    before = errors[early] if 0 <= early < late else np.nan
    after = errors[late] if late >= 0 else np.nan
    variables = {
        "rel_l2_at_four_fifths": (before, "test relative L2 error at the last evaluation by 4/5 of the steps"),
        "rel_l2_final": (after, "test relative L2 error at the last evaluation"),
        "last_fifth_improvement": ((before - after) / before,
                                   "relative decrease of the test error over the last fifth of the steps"),
    }
    ds = xr.Dataset({name: ((), float(value), {"long_name": long_name, "units": "1"})
                     for name, (value, long_name) in variables.items()})
    ds.attrs["status"] = history.attrs["status"]
    return ds


def convergence_table(runs: Sequence[str], histories: Mapping[str, xr.Dataset]) -> xr.Dataset:
    """Whether each run's budget was enough: its test error at 4/5 of its steps and at the end,
    the relative improvement of the last fifth, with seed summaries, and per (target, model,
    method) ``converged`` (the seed median improvement below CONVERGED_IMPROVEMENT). NaN where a
    run diverged or has no evaluation before its last."""
    ds = table(runs, {run: _convergence_run(histories[run]) for run in runs}, CONVERGENCE)
    median = ds["last_fifth_improvement_seed_median"]
    ds["converged"] = (median < CONVERGED_IMPROVEMENT).where(median.notnull()).assign_attrs(
        long_name=f"seed median improvement of the last fifth below {CONVERGED_IMPROVEMENT:g} "
                  "(1: converged, 0: not, NaN: no value)", units="1")
    ds.attrs["converged_improvement"] = CONVERGED_IMPROVEMENT
    return ds

# ---- text tables -------------------------------------------------------------------------

def _rows(ds: xr.Dataset) -> list[tuple[str, str, str, xr.Dataset]]:
    """(target, model, method, cell) for every combination the study trains, in config order."""
    rows = []
    for target in ds["target"].values:
        for model in ds["model"].values:
            for method in ds["method"].values:
                cell = ds.sel({"target": target, "model": model, "method": method})
                if int(cell["n_runs"]):
                    rows.append((str(target), str(model), str(method), cell))
    return rows


def seeds_label(cell: xr.Dataset) -> str:
    """'3/3' completed, or '2/3, diverged (1/3)'."""
    n, done, bad = int(cell["n_runs"]), int(cell["n_completed"]), int(cell["n_diverged"])
    return f"{done}/{n}" + (f", diverged ({bad}/{n})" if bad else "")


def _fmt(value: float, spec: str = ".3g") -> str:
    return "–" if not np.isfinite(value) else format(value, spec)


def _mean_std(cell, name, spec=".3g") -> str:
    mean, std = float(cell[f"{name}_seed_mean"]), float(cell[f"{name}_seed_std"])
    return _fmt(mean, spec) + ("" if not np.isfinite(std) else f" ± {_fmt(std, spec)}")


Column = tuple[str, str, Callable[[xr.Dataset], str], Callable[[xr.Dataset], float] | None]


def _median(name, scale=1.0):
    return lambda cell: float(cell[f"{name}_seed_median"]) * scale


def _text_tables(ds: xr.Dataset, columns: Sequence[Column], masked: bool) -> tuple[str, str]:
    """CSV (numbers) and Markdown (formatted) with one row per (target, model, method)."""
    head = ["target", "model", "method"]
    csv = [",".join(head + [key for key, _, _, number in columns if number] + ["seeds", "completed", "diverged"])]
    shown = [column for column in columns if column[2]]
    md = ["| " + " | ".join(head + [title for _, title, _, _ in shown] + ["seeds completed"]) + " |",
          "|" + "---|" * (len(head) + len(shown) + 1)]
    for target, model, method, cell in _rows(ds):
        numbers = [repr(float(number(cell))) for _, _, _, number in columns if number]
        csv.append(",".join([target, model, method, *numbers, str(int(cell["n_runs"])),
                             str(int(cell["n_completed"])), str(int(cell["n_diverged"]))]))
        all_diverged = masked and int(cell["n_completed"]) == 0
        texts = [f"diverged ({int(cell['n_diverged'])}/{int(cell['n_runs'])})" if all_diverged
                 else text(cell) for _, _, text, _ in shown]
        md.append("| " + " | ".join([target, model, method, *texts, seeds_label(cell)]) + " |")
    return "\n".join(csv) + "\n", "\n".join(md) + "\n"


def accuracy_text(ds: xr.Dataset) -> tuple[str, str]:
    name = "rel_l2_mean"
    return _text_tables(ds, [
        ("rel_l2_mean_seed_mean", "rel. L2: mean ± std over seeds",
         lambda c: _mean_std(c, name), lambda c: float(c[f"{name}_seed_mean"])),
        ("rel_l2_mean_seed_std", "", None, lambda c: float(c[f"{name}_seed_std"])),
        ("rel_l2_mean_seed_median", "median over seeds", lambda c: _fmt(_median(name)(c)), _median(name)),
        ("rel_l2_median_seed_median", "median-over-functions rel. L2, median over seeds",
         lambda c: _fmt(_median("rel_l2_median")(c)), _median("rel_l2_median")),
        ("ratio_to_bp", "median / bp median", lambda c: _fmt(float(c[f"{name}_ratio_to_bp"]), ".2f"),
         lambda c: float(c[f"{name}_ratio_to_bp"])),
    ], masked=True)


def cost_text(ds: xr.Dataset) -> tuple[str, str]:
    return _text_tables(ds, [
        ("steps_median", "steps", lambda c: _fmt(_median("steps")(c), ".0f"), _median("steps")),
        ("forward_passes_median", "forward passes", lambda c: _fmt(_median("forward_passes")(c)),
         _median("forward_passes")),
        ("wall_time_median_s", "wall time [s]", lambda c: _fmt(_median("wall_time")(c)), _median("wall_time")),
        ("time_per_step_median_ms", "per step [ms]", lambda c: _fmt(_median("time_per_step", 1e3)(c)),
         _median("time_per_step", 1e3)),
        ("peak_rss_median_mib", "peak RSS [MiB]", lambda c: _fmt(_median("peak_rss")(c), ".0f"),
         _median("peak_rss")),
        ("forward_passes_ratio_to_bp", "passes / bp", lambda c: _fmt(float(c["forward_passes_ratio_to_bp"]), ".2f"),
         lambda c: float(c["forward_passes_ratio_to_bp"])),
        ("wall_time_ratio_to_bp", "wall time / bp", lambda c: _fmt(float(c["wall_time_ratio_to_bp"]), ".2f"),
         lambda c: float(c["wall_time_ratio_to_bp"])),
    ], masked=False)


def energy_text(ds: xr.Dataset) -> tuple[str, str]:
    def col(key, title, name, spec=".3g"):
        return (key, title, lambda c: _fmt(_median(name)(c), spec), _median(name))
    return _text_tables(ds, [
        col("spike_rate_median", "spike rate", "spike_rate_mean", ".3f"),
        col("sop_median", "SOPs", "sop_total"),
        col("mac_snn_median", "MACs SNN", "mac_snn_total"),
        col("mac_ann_median", "MACs ANN twin", "mac_ann_total"),
        col("energy_snn_median_pj", "energy SNN [pJ]", "energy_snn"),
        col("energy_ann_median_pj", "energy ANN twin [pJ]", "energy_ann"),
        col("energy_ratio_median", "SNN / ANN", "energy_ratio", ".3f"),
        *([col("loop_emulator_passes_per_step_median", "in the loop: emulator passes / step",
               "loop_emulator_passes_per_step", ".0f"),
           col("loop_sop_per_step_median", "in the loop: SOPs / step", "loop_sop_per_step")]
          if ds["loop_emulator_passes_per_step_seed_median"].notnull().any() else []),
    ], masked=True)


def bit_sweep_text(ds: xr.Dataset) -> tuple[str, str]:
    """Medians over seeds: the float error, the emulated error at each width (and after
    fine-tuning, at the widths fine-tuned), at the chip's native width (8 bits, Lava's Dense)
    the ratio of the two, and at the finest width the share of spikes that match the float
    network's."""
    def at(b):
        return lambda c: float(c["emulated_rel_l2_seed_median"].sel(bits=b))
    native = LAVA_MAX_WEIGHT_BITS
    columns = [("float_median", "float", lambda c: _fmt(_median("rel_l2_mean")(c), ".4f"), _median("rel_l2_mean"))]
    columns += [(f"w{b}_median", f"w{b}", lambda c, b=b: _fmt(at(b)(c), ".4f"), at(b)) for b in ds["bits"].values]
    tuned = ds["emulated_rel_l2_tuned_seed_median"]
    for b in ds["bits"].values:
        if tuned.sel(bits=b).notnull().any():
            value = lambda c, b=b: float(c["emulated_rel_l2_tuned_seed_median"].sel(bits=b))  # noqa: E731
            columns.append((f"w{b}_tuned_median", f"w{b} tuned", lambda c, v=value: _fmt(v(c), ".4f"), value))
    if native in ds["bits"].values:
        ratio = lambda c: float(c["emulated_ratio_to_float"].sel(bits=native))  # noqa: E731
        columns.append((f"w{native}_ratio_to_float", f"w{native} / float", lambda c: _fmt(ratio(c), ".3f"), ratio))
    finest = int(ds["bits"].max())
    same = lambda c: float(c["spike_agreement_seed_median"].sel(bits=finest))  # noqa: E731
    columns.append((f"w{finest}_spike_agreement", f"spikes as float, w{finest}", lambda c: _fmt(same(c), ".4f"), same))
    return _text_tables(ds, columns, masked=True)


def _flag_counts(cell: xr.Dataset, name: str, meanings: Sequence[str], shown: Mapping[str, str]) -> list[str]:
    """'<what> (n/N)' for each code of the flag ``name`` in ``shown`` that some seed of the cell has."""
    codes, n = cell[name].values, int(cell["n_runs"])
    return [f"{text} ({int(np.sum(codes == meanings.index(meaning)))}/{n})"
            for meaning, text in shown.items() if np.any(codes == meanings.index(meaning))]


def _compute_matched_notes(cell: xr.Dataset) -> str:
    notes = _flag_counts(cell, "equal_steps_flag", EQUAL_STEPS_FLAGS, {
        "stopped_before_common_step": "stopped before the common step",
        "no_evaluation_by_common_step": "no evaluation by the common step"})
    notes += _flag_counts(cell, "bp_wall_time_flag", BP_WALL_TIME_FLAGS, {
        "run_shorter_than_bp": "whole run shorter than bp's: final value",
        "diverged_before_bp_wall_time": "diverged before bp's wall time",
        "no_evaluation_within_bp_wall_time": "no evaluation within bp's wall time"})
    median = [run for run in cell["bp_wall_time"].attrs["bp_median_over_seeds_for"].split(", ")
              if run.startswith(f"{cell['target'].item()}/{cell['model'].item()}/{cell['method'].item()}/")]
    if median:
        notes.append("bp's median wall time for " + ", ".join(run.rsplit("/", 1)[1] for run in median))
    return "; ".join(notes) or "–"


def compute_matched_text(ds: xr.Dataset) -> tuple[str, str]:
    """Medians over seeds at the common step and at bp's wall time, their ratios to bp, and
    notes that count the seeds whose values are missing or read early."""
    def col(key, title, name, spec=".3g"):
        return (key, title, lambda c: _fmt(float(c[name]), spec), lambda c: float(c[name]))
    bp_wall = lambda c: float(c["bp_wall_time"].median(skipna=True))  # noqa: E731
    return _text_tables(ds, [
        col("common_step", "common step", "common_step", ".0f"),
        col("rel_l2_at_equal_steps_median", "rel. L2 there, median", "rel_l2_at_equal_steps_seed_median"),
        col("rel_l2_at_equal_steps_ratio_to_bp", "/ bp", "rel_l2_at_equal_steps_ratio_to_bp", ".2f"),
        ("bp_wall_time_median_s", "bp wall time [s], median", lambda c: _fmt(bp_wall(c)), bp_wall),
        col("rel_l2_at_bp_wall_time_median", "rel. L2 at bp's wall time, median",
            "rel_l2_at_bp_wall_time_seed_median"),
        col("rel_l2_at_bp_wall_time_ratio_to_bp", "/ bp", "rel_l2_at_bp_wall_time_ratio_to_bp", ".2f"),
        ("notes", "notes", _compute_matched_notes, None),
    ], masked=False)



def convergence_text(ds: xr.Dataset) -> tuple[str, str]:
    """Medians over seeds of the error at 4/5 of the steps and at the end, the improvement of
    the last fifth, and whether that is below the convergence threshold."""
    def col(key, title, name, spec=".3g"):
        return (key, title, lambda c: _fmt(float(c[name]), spec), lambda c: float(c[name]))
    converged = {1.0: "yes", 0.0: "no"}
    return _text_tables(ds, [
        col("rel_l2_at_four_fifths_median", "rel. L2 at 4/5 of the steps, median",
            "rel_l2_at_four_fifths_seed_median"),
        col("rel_l2_final_median", "final rel. L2, median", "rel_l2_final_seed_median"),
        col("last_fifth_improvement_median", "last fifth's improvement, median",
            "last_fifth_improvement_seed_median", ".1%"),
        ("converged", f"converged (< {CONVERGED_IMPROVEMENT:.0%})",
         lambda c: converged.get(float(c["converged"]), "–"), lambda c: float(c["converged"])),
    ], masked=True)

def write_table(ds: xr.Dataset, text: Callable[[xr.Dataset], tuple[str, str]], paths: Mapping[str, str | Path],
                *, stage: str, config: Mapping, inputs: Sequence[str | Path] = ()) -> None:
    """The table's NetCDF, CSV and Markdown (paths: nc, csv, md)."""
    io.write_dataset(ds, paths["nc"], stage=stage, config=config, inputs=inputs)
    csv, markdown = text(ds)
    io.write_text(paths["csv"], csv)
    io.write_text(paths["md"], markdown)


TABLES = {"accuracy": (accuracy_table, accuracy_text), "cost": (cost_table, cost_text),
          "energy": (energy_table, energy_text)}


def read_metrics(runs: Sequence[str], paths: Sequence[str | Path]) -> dict[str, xr.Dataset]:
    return {run: io.read_artifact(path, METRICS)
            for run, path in zip(runs, paths)}


def tables_run(runs: Sequence[str], metric_paths: Sequence[str | Path],
               outputs: Mapping[str, Mapping[str, str | Path]]) -> dict[str, xr.Dataset]:
    """The stage: every run's metrics.nc -> each table in outputs (name -> {nc, csv, md})."""
    metrics = read_metrics(runs, metric_paths)
    made = {}
    for name, paths in outputs.items():
        make, text = TABLES[name]
        made[name] = make(runs, metrics)
        write_table(made[name], text, paths, stage=TABLE_FILES[name].stage, config={"runs": list(runs)},
                    inputs=metric_paths)
    return made
