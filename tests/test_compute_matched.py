"""The compute-matched table and figure from synthetic histories with known curves: every
value is read at a step or a wall time chosen so that the expected pick is known exactly."""

import json

import numpy as np
import pytest
import xarray as xr

from fwdsnn import figures, io
from fwdsnn.artifacts import HISTORY
from fwdsnn.tables import (BP_WALL_TIME_FLAGS, EQUAL_STEPS_FLAGS, common_steps, compute_matched_table,
                           compute_matched_text, read_histories, write_table)

EVAL_EVERY = 10
# method -> (steps, seconds per step (seed s: bp takes (s + 1) times as long), error scale);
# every number is a binary fraction, so wall times and their comparisons are exact
METHODS = {"bp": (100, 0.125, 1.0), "rfg-layer": (80, 0.0625, 3.0), "wp-layer": (100, 0.25, 2.0),
           "slow": (100, 2.0, 5.0), "ann": (200, 0.03125, 0.5)}
SEEDS = (0, 1, 2)


def error(method: str, seed: int, step) -> np.ndarray:
    """The known test error curve of a run: it falls as 1/step."""
    return METHODS[method][2] * (1 + seed) / np.asarray(step, float)


def history(method, seed, steps=None, status="completed", spiking=True):
    steps = steps or METHODS[method][0]
    per_step = METHODS[method][1] * (seed + 1 if method == "bp" else 1)
    step = np.arange(1, steps + 1)
    evals = step[(step % EVAL_EVERY == 0) | (step == steps)]
    layers = ["hidden0"] if spiking else []
    ds = xr.Dataset({
        "loss": ("step", 1.0 / step, {"long_name": "training loss", "units": "1"}),
        "wall_time": ("step", per_step * step, io.measured({"long_name": "wall time", "units": "s"}, "timing")),
        "forward_passes": ("step", 3.0 * step, {"long_name": "passes", "units": "1"}),
        "test_rel_l2_mean": ("eval_step", error(method, seed, evals),
                             {"long_name": "test relative L2 error", "units": "1"}),
        "spike_rate": (("eval_step", "layer"), np.full((evals.size, len(layers)), 0.1),
                       {"long_name": "spike rate", "units": "1"}),
    }, coords={"step": ("step", step, {"long_name": "step", "units": "1"}),
               "eval_step": ("eval_step", evals, {"long_name": "step of the evaluation", "units": "1"}),
               "layer": ("layer", np.array(layers, dtype=str), {"long_name": "LIF layer", "units": "1"})})
    ds.attrs.update(status=status, steps_completed=steps, config_json=json.dumps({}), seed=seed)
    return ds


def study():
    """heat/seponet: bp (seed 2 diverged at step 30), rfg-layer (80 steps, faster than bp),
    wp-layer (slower than bp), slow (first evaluation after bp's time), the ann twin (200 steps,
    not spiking); parabola/mlp: rfg-layer only (no bp)."""
    histories = {}
    for method in METHODS:
        for seed in SEEDS:
            diverged = method == "bp" and seed == 2
            histories[f"heat/seponet/{method}/s{seed}"] = history(
                method, seed, steps=30 if diverged else None, status="diverged" if diverged else "completed",
                spiking=method != "ann")
    for seed in SEEDS:
        histories[f"parabola/mlp/rfg-layer/s{seed}"] = history("rfg-layer", seed)
    return list(histories), histories


@pytest.fixture(scope="module")
def table():
    runs, histories = study()
    return compute_matched_table(runs, histories)


def cell(ds, method, seed=None, experiment=("heat", "seponet")):
    out = ds.sel({"target": experiment[0], "model": experiment[1], "method": method})
    return out if seed is None else out.sel(seed=seed)


def test_equal_steps_is_the_shortest_spiking_method_and_ignores_the_ann_and_diverged_runs(table):
    # rfg-layer stops at 80; the ann's 200 and bp s2's divergence at 30 do not move it
    assert float(table["common_step"].sel(target="heat", model="seponet")) == 80
    assert float(table["common_step"].sel(target="parabola", model="mlp")) == 80
    for method in ("bp", "rfg-layer", "wp-layer", "slow", "ann"):
        for seed in SEEDS:
            if (method, seed) == ("bp", 2):
                continue
            c = cell(table, method, seed)
            assert float(c["rel_l2_at_equal_steps"]) == error(method, seed, 80)
            assert float(c["step_at_equal_steps"]) == 80 and int(c["equal_steps_flag"]) == 0
    diverged = cell(table, "bp", 2)  # stopped before the common step: no value
    assert np.isnan(float(diverged["rel_l2_at_equal_steps"]))
    assert EQUAL_STEPS_FLAGS[int(diverged["equal_steps_flag"])] == "stopped_before_common_step"
    wp, bp = cell(table, "wp-layer"), cell(table, "bp")
    assert float(wp["rel_l2_at_equal_steps_seed_median"]) == pytest.approx(error("wp-layer", 1, 80))
    bp_median = (error("bp", 0, 80) + error("bp", 1, 80)) / 2  # s2 has no value
    assert float(bp["rel_l2_at_equal_steps_seed_median"]) == pytest.approx(bp_median)
    assert float(wp["rel_l2_at_equal_steps_ratio_to_bp"]) == pytest.approx(2.0 * 2 / 1.5)


def test_a_run_trained_in_the_loop_does_not_set_the_common_step():
    runs, histories = study()
    loop = history("rfg-layer", 0, steps=20)
    loop.attrs["config_json"] = json.dumps({"method": {"estimator": "perturbation", "hardware": {"bits": 8}}})
    histories["heat/seponet/wp-loop/s0"] = loop
    assert common_steps([*runs, "heat/seponet/wp-loop/s0"], histories)["heat", "seponet"] == 80
    loop.attrs["config_json"] = json.dumps({"method": {"estimator": "perturbation"}})  # float losses
    assert common_steps([*runs, "heat/seponet/wp-loop/s0"], histories)["heat", "seponet"] == 20


def test_the_cut_at_bp_wall_time_pairs_seeds(table):
    # bp s0 takes 12.5 s, s1 25 s: wp-layer (0.25 s a step) is read at steps 50 and 100
    for seed, step in ((0, 50), (1, 100)):
        c = cell(table, "wp-layer", seed)
        assert float(c["bp_wall_time"]) == 12.5 * (seed + 1)
        assert float(c["step_at_bp_wall_time"]) == step and float(c["wall_time_at_bp_wall_time"]) == 0.25 * step
        assert float(c["rel_l2_at_bp_wall_time"]) == error("wp-layer", seed, step)
        assert BP_WALL_TIME_FLAGS[int(c["bp_wall_time_flag"])] == "within_run"  # 25 s = 25 s is within
    for seed in (0, 1):  # bp at its own wall time: its final value
        assert float(cell(table, "bp", seed)["rel_l2_at_bp_wall_time"]) == error("bp", seed, 100)
    assert float(cell(table, "bp")["rel_l2_at_bp_wall_time_ratio_to_bp"]) == 1.0


def test_a_run_shorter_than_bp_keeps_its_final_value_flagged(table):
    for seed in SEEDS:  # rfg-layer: 80 steps in 5 s, inside every bp budget
        c = cell(table, "rfg-layer", seed)
        assert float(c["rel_l2_at_bp_wall_time"]) == error("rfg-layer", seed, 80)
        assert float(c["step_at_bp_wall_time"]) == 80
        assert BP_WALL_TIME_FLAGS[int(c["bp_wall_time_flag"])] == "run_shorter_than_bp"
    slow = cell(table, "slow", 0)  # first evaluation at 20 s, after bp's 12.5 s
    assert np.isnan(float(slow["rel_l2_at_bp_wall_time"]))
    assert BP_WALL_TIME_FLAGS[int(slow["bp_wall_time_flag"])] == "no_evaluation_within_bp_wall_time"
    assert float(cell(table, "slow", 1)["step_at_bp_wall_time"]) == 10  # 20 s <= 25 s


def test_a_missing_bp_seed_takes_bp_median_and_says_so(table):
    # bp s2 diverged: seed 2 is cut at the median of bp's completed seeds, (12.5 + 25) / 2
    wp = cell(table, "wp-layer", 2)
    assert float(wp["bp_wall_time"]) == 18.75
    assert float(wp["step_at_bp_wall_time"]) == 70 and float(wp["rel_l2_at_bp_wall_time"]) == error("wp-layer", 2, 70)
    listed = table["bp_wall_time"].attrs["bp_median_over_seeds_for"].split(", ")
    assert listed == [f"heat/seponet/{m}/s2" for m in METHODS]
    bp2 = cell(table, "bp", 2)  # it diverged after 11.25 s, before the median: no value
    assert np.isnan(float(bp2["rel_l2_at_bp_wall_time"]))
    assert BP_WALL_TIME_FLAGS[int(bp2["bp_wall_time_flag"])] == "diverged_before_bp_wall_time"
    assert float(cell(table, "bp")["rel_l2_at_bp_wall_time_seed_median"]) == pytest.approx(
        (error("bp", 0, 100) + error("bp", 1, 100)) / 2)
    no_bp = cell(table, "rfg-layer", 0, ("parabola", "mlp"))
    assert np.isnan(float(no_bp["rel_l2_at_bp_wall_time"])) and np.isnan(float(no_bp["bp_wall_time"]))
    assert BP_WALL_TIME_FLAGS[int(no_bp["bp_wall_time_flag"])] == "no_bp_run"
    not_run = cell(table, "bp", 0, ("parabola", "mlp"))
    assert BP_WALL_TIME_FLAGS[int(not_run["bp_wall_time_flag"])] == "not_run"
    assert EQUAL_STEPS_FLAGS[int(not_run["equal_steps_flag"])] == "not_run"


def test_a_run_that_diverged_at_its_first_step_has_no_values_and_no_say_in_the_common_step():
    empty = history("wp-layer", 0, steps=1, status="diverged").isel(step=slice(0, 0), eval_step=slice(0, 0))
    runs = {"heat/seponet/bp/s0": history("bp", 0), "heat/seponet/wp-layer/s0": empty}
    ds = compute_matched_table(list(runs), runs).sel(target="heat", model="seponet", seed=0)
    assert float(ds["common_step"]) == 100  # bp alone sets it
    wp = ds.sel({"method": "wp-layer"})
    assert np.isnan(float(wp["rel_l2_at_equal_steps"])) and np.isnan(float(wp["rel_l2_at_bp_wall_time"]))
    assert EQUAL_STEPS_FLAGS[int(wp["equal_steps_flag"])] == "stopped_before_common_step"
    assert BP_WALL_TIME_FLAGS[int(wp["bp_wall_time_flag"])] == "diverged_before_bp_wall_time"


def test_the_text_counts_the_flags_and_wall_time_values_are_measurements(table, tmp_path):
    csv, md = compute_matched_text(table)
    rows = {tuple(line.split(" | ")[:3]): line for line in md.splitlines()[2:]}
    assert len(rows) == len(METHODS) + 1 and len(csv.splitlines()) == len(METHODS) + 2
    assert "whole run shorter than bp's: final value (3/3)" in rows[("| heat", "seponet", "rfg-layer")]
    assert "stopped before the common step (1/3)" in rows[("| heat", "seponet", "bp")]
    assert "bp's median wall time for s2" in rows[("| heat", "seponet", "wp-layer")]
    # slow: first evaluation at 20 s, after bp's 12.5 s (s0) and the median 18.75 s (s2)
    assert "no evaluation within bp's wall time (2/3)" in rows[("| heat", "seponet", "slow")]
    assert "diverged before bp's wall time (1/3)" in rows[("| heat", "seponet", "bp")]
    measured = io.measurement_variables(table)
    assert "rel_l2_at_bp_wall_time_ratio_to_bp" in measured and "bp_wall_time_flag" in measured
    assert not {"rel_l2_at_equal_steps", "rel_l2_at_equal_steps_seed_median", "common_step"} & set(measured)
    runs, histories = study()  # a slower machine: every clock doubled, the same table as data
    slower = {run: h.assign(wall_time=h["wall_time"] * 2) for run, h in histories.items()}
    assert io.data_variables_equal(table, compute_matched_table(runs, slower))
    paths = {kind: tmp_path / f"compute_matched.{kind}" for kind in ("nc", "csv", "md")}
    write_table(table, compute_matched_text, paths, stage="table_compute_matched", config={})
    back = io.read_dataset(paths["nc"], stage="table_compute_matched")
    assert back["bp_wall_time_flag"].dtype == np.int8 and back["bp_wall_time_flag"].attrs["flag_meanings"].split() \
        == list(BP_WALL_TIME_FLAGS)


def test_the_figure_renders_from_files_in_the_method_colours(tmp_path, monkeypatch):
    runs, histories = study()
    paths = [io.write_dataset(histories[run], tmp_path / run / "history.nc", stage=HISTORY.stage, config={})
             for run in runs]
    read = read_histories(runs, paths)
    figures.plot_compute_matched(read, tmp_path / "cm.png", tmp_path / "cm.pdf")
    png = (tmp_path / "cm.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10_000 and (tmp_path / "cm.pdf").stat().st_size > 1_000
    colours = {}

    def keep(fig, png, pdf):
        colours.update({(ax.get_title(loc="left").split()[0], str(line.get_label())): line.get_color()
                        for ax in fig.axes for line in ax.get_lines() if not str(line.get_label()).startswith("_")})
        figures.plt.close(fig)

    monkeypatch.setattr(figures, "save", keep)
    figures.plot_compute_matched(read, "x.png", "x.pdf")
    assert colours == {**{("heat", m): figures.method_colour(m) for m in METHODS if m != "ann"},
                       ("heat", "ann"): figures.ANN_TWIN_COLOUR,
                       ("parabola", "rfg-layer"): figures.method_colour("rfg-layer")}
