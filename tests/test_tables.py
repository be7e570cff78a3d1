"""Metrics per run and the aggregate tables: numbers by hand, diverged runs counted, colours."""

import json

import numpy as np
import pytest
import xarray as xr

from fwdsnn import figures, io
from fwdsnn.metrics import metrics_run, read_benchmark, run_metrics
from fwdsnn.tables import (accuracy_table, accuracy_text, bit_sweep_table, bit_sweep_text, cost_table, cost_text,
                           energy_table, energy_text)


def history(steps=10, status="completed", layers=("hidden0", "hidden1"), planned=10):
    step = np.arange(1, steps + 1)
    ds = xr.Dataset({
        "loss": ("step", 1.0 / step), "wall_time": ("step", 0.5 * step),
        "forward_passes": ("step", 3.0 * step),
        "test_rel_l2_mean": ("eval_step", [0.5, 0.2][:steps // 5]),
        "spike_rate": (("eval_step", "layer"), np.full((steps // 5, len(layers)), 0.1)),
    }, coords={"step": step, "eval_step": [5, 10][:steps // 5], "layer": list(layers)})
    ds.attrs.update(status=status, steps_completed=steps,
                    config_json=json.dumps({"train": {"steps": planned}}), seed=0)
    return ds


def prediction(errors, layers=("hidden0", "hidden1"), rates=(0.2, 0.1)):
    return xr.Dataset({"u_pred": ("sample", np.zeros(len(errors))),
                       "rel_l2": ("sample", np.asarray(errors, float)),
                       "spike_rate": ("layer", np.asarray(rates[:len(layers)], float)),
                       "spike_count": ("layer", 10 * np.asarray(rates[:len(layers)], float))},
                      coords={"layer": np.asarray(layers, dtype=str)})


def energy(sop=100.0, mac_snn=10.0, mac_ann=50.0):
    per = ("per", ["inference", "output_point"])
    ds = xr.Dataset({
        "sop_total": (per[0], [sop, sop / 2], {"long_name": "synaptic operations", "units": "1"}),
        "mac_snn_total": (per[0], [mac_snn, mac_snn / 2], {"long_name": "MACs SNN", "units": "1"}),
        "mac_ann_total": (per[0], [mac_ann, mac_ann / 2], {"long_name": "MACs ANN", "units": "1"}),
        "energy_snn": (per[0], [0.9 * sop + 4.6 * mac_snn, 0.0], {"long_name": "E SNN", "units": "pJ"}),
        "energy_ann": (per[0], [4.6 * mac_ann, 0.0], {"long_name": "E ANN", "units": "pJ"}),
        "energy_ratio": ((), (0.9 * sop + 4.6 * mac_snn) / (4.6 * mac_ann), {"long_name": "ratio", "units": "1"}),
    }, coords={"per": per[1]})
    return ds


def test_run_metrics_by_hand(tmp_path):
    ds = run_metrics(history(), prediction([0.1, 0.3, 0.2]), energy(), {"peak_rss": 123.0, "job_time": 9.0})
    assert float(ds["rel_l2_mean"]) == pytest.approx(0.2)
    assert float(ds["rel_l2_median"]) == pytest.approx(0.2)
    assert float(ds["steps"]) == 10 and float(ds["forward_passes"]) == 30 and float(ds["wall_time"]) == 5
    assert float(ds["time_per_step"]) == pytest.approx(0.5)
    assert float(ds["spike_rate_mean"]) == pytest.approx(0.15)
    assert float(ds["sop_total"]) == 100 and float(ds["energy_ann"]) == pytest.approx(230)
    assert float(ds["peak_rss"]) == 123 and ds["peak_rss"].attrs["units"] == "MiB"
    assert ds.attrs["status"] == "completed" and float(ds["diverged"]) == 0
    io.check_variable_attrs(ds)  # every variable has long_name and units


def test_training_in_the_loop_counts_its_emulator_passes_and_synaptic_operations():
    trained = history()  # 3 passes a step
    assert np.isnan(float(run_metrics(trained, prediction([0.1]), energy())["loop_sop_per_step"]))
    trained.attrs["config_json"] = json.dumps({"train": {"steps": 10, "batch": 8},
                                               "method": {"estimator": "perturbation", "hardware": {"bits": 8}}})
    ds = run_metrics(trained, prediction([0.1]), energy(sop=100.0))
    assert float(ds["loop_emulator_passes_per_step"]) == 3.0
    assert float(ds["loop_sop_per_step"]) == 3.0 * 8 * 100.0  # passes x batch x SOPs per inference
    io.check_variable_attrs(ds)


def test_ann_run_has_no_energy_and_benchmark_is_optional(tmp_path):
    ds = run_metrics(history(layers=()), prediction([0.4], layers=()), None, None)
    assert np.isnan(float(ds["sop_total"])) and np.isnan(float(ds["peak_rss"]))
    assert ds.attrs["spiking"] == 0 and ds.sizes["layer"] == 0
    io.check_variable_attrs(ds)


def test_benchmark_tsv_is_read(tmp_path):
    tsv = tmp_path / "b.tsv"
    tsv.write_text("s\th:m:s\tmax_rss\tmax_vms\n12.5\t0:00:12\t321.5\t900\n")
    assert read_benchmark(tsv) == {"peak_rss": 321.5, "job_time": 12.5}
    assert np.isnan(read_benchmark(tmp_path / "missing.tsv")["peak_rss"])


def test_metrics_stage_writes_a_file(tmp_path):
    paths = {}
    for name, ds, stage in (("history", history(), "train"), ("prediction", prediction([0.1]), "train"),
                            ("energy", energy(), "energy")):
        for var in [*ds.data_vars, *ds.coords]:
            ds[var].attrs.setdefault("long_name", var)
            ds[var].attrs.setdefault("units", "1")
        paths[name] = io.write_dataset(ds, tmp_path / f"{name}.nc", stage=stage, config={})
    out = metrics_run(paths["history"], paths["prediction"], tmp_path / "metrics.nc", paths["energy"])
    ds = io.read_dataset(out, stage="metrics")
    assert float(ds["rel_l2_mean"]) == pytest.approx(0.1) and ds.attrs["status"] == "completed"


def study():
    """parabola/mlp: bp with 3 seeds, rfg-layer with one diverged seed, wp-layer all diverged;
    plus an ann run (no energy)."""
    metrics = {}
    errors = {"bp": [0.02, 0.04, 0.03], "rfg-layer": [0.06, 0.08, np.nan], "wp-layer": [np.nan] * 3}
    for method, values in errors.items():
        for seed, error in enumerate(values):
            diverged = np.isnan(error)
            ds = run_metrics(history(steps=5 if diverged else 10, status="diverged" if diverged else "completed"),
                             prediction([error if not diverged else 5.0]),
                             energy(sop=100.0 * (seed + 1)), None)
            metrics[f"parabola/mlp/{method}/s{seed}"] = ds
    metrics["parabola/mlp/ann/s0"] = run_metrics(history(layers=()), prediction([0.01], layers=()), None, None)
    return list(metrics), metrics


def test_accuracy_table_statistics_and_diverged_runs():
    runs, metrics = study()
    ds = accuracy_table(runs, metrics)
    assert ds["rel_l2_mean"].dims == ("target", "model", "method", "seed")
    cell = ds.sel({"target": "parabola", "model": "mlp"})
    bp, rfg, wp = (cell.sel({"method": m}) for m in ("bp", "rfg-layer", "wp-layer"))
    assert float(bp["rel_l2_mean_seed_mean"]) == pytest.approx(0.03)
    assert float(bp["rel_l2_mean_seed_std"]) == pytest.approx(0.01)
    assert float(bp["rel_l2_mean_seed_median"]) == pytest.approx(0.03)
    assert float(rfg["rel_l2_mean_seed_median"]) == pytest.approx(0.07)  # the diverged seed is NaN
    assert np.isnan(float(rfg["rel_l2_mean"].sel(seed=2)))
    assert float(rfg["rel_l2_mean_ratio_to_bp"]) == pytest.approx(0.07 / 0.03)
    assert (int(rfg["n_diverged"]), int(rfg["n_completed"]), int(wp["n_diverged"])) == (1, 2, 3)
    ann = cell.sel({"method": "ann"})
    assert int(ann["n_runs"]) == 1 and ann["status"].sel(seed=1).item() == "not run"
    csv, md = accuracy_text(ds)
    rows = {line.split(" | ")[2]: line for line in md.splitlines()[2:]}
    assert "diverged (1/3)" in rows["rfg-layer"] and "2/3" in rows["rfg-layer"]
    assert rows["wp-layer"].count("diverged (3/3)") >= 4  # every value cell says so
    assert "0.03 ± 0.01" in rows["bp"] and "2.33" in rows["rfg-layer"]
    assert len(csv.splitlines()) == 1 + 4


def test_cost_keeps_diverged_runs_and_energy_skips_ann():
    runs, metrics = study()
    cost = cost_table(runs, metrics).sel({"target": "parabola", "model": "mlp"})
    assert list(cost["steps"].sel({"method": "wp-layer"}).values) == [5, 5, 5]
    assert float(cost["wall_time_ratio_to_bp"].sel({"method": "rfg-layer"})) == pytest.approx(1.0)
    energy_ds = energy_table(runs, metrics)
    assert "ann" not in energy_ds["method"].values
    sop = energy_ds["sop_total"].sel({"target": "parabola", "model": "mlp", "method": "bp"})
    np.testing.assert_allclose(sop, [100, 200, 300])
    assert list(energy_ds["layer"].values) == ["hidden0", "hidden1"]
    for text in (cost_text, energy_text):
        csv, md = text(cost_table(runs, metrics) if text is cost_text else energy_ds)
        assert len(md.splitlines()) == 2 + len({run.rsplit('/', 1)[0] for run in runs
                                                if text is cost_text or "ann" not in run})


def test_bit_sweep_table_medians_ratios_and_diverged_runs():
    runs, metrics = study()
    spiking = [run for run in runs if "/ann/" not in run]
    bits = [4, 8, 16]
    emulated = {(run, b): ((0.5 / b) * (1 + int(run[-1])), 1 - 0.1 / b - 0.01 * int(run[-1]))
                for run in spiking for b in bits}  # seed s: error x(1+s), agreement -0.01 s
    ds = bit_sweep_table(spiking, metrics, emulated, bits)
    cell = ds.sel({"target": "parabola", "model": "mlp"})
    bp, rfg = cell.sel({"method": "bp"}), cell.sel({"method": "rfg-layer"})
    np.testing.assert_allclose(bp["emulated_rel_l2"].sel(bits=8), [0.0625, 0.125, 0.1875])
    np.testing.assert_allclose(bp["ratio_to_float"].sel(bits=8), [0.0625 / 0.02, 0.125 / 0.04, 0.1875 / 0.03])
    assert float(bp["emulated_ratio_to_float"].sel(bits=8)) == pytest.approx(0.125 / 0.03)
    assert np.isnan(rfg["emulated_rel_l2"].sel(seed=2)).all()  # diverged: nothing was converted
    assert float(rfg["emulated_rel_l2_seed_median"].sel(bits=16)) == pytest.approx(0.5 / 16 * 1.5)
    assert float(bp["spike_agreement_seed_median"].sel(bits=16)) == pytest.approx(1 - 0.1 / 16 - 0.01)
    csv, md = bit_sweep_text(ds)
    assert md.splitlines()[0].split(" | ")[3:9] == ["float", "w4", "w8", "w16", "w8 / float", "spikes as float, w16"]
    rows = {line.split(" | ")[2]: line for line in md.splitlines()[2:]}
    assert "| 0.0300 | 0.2500 | 0.1250 | 0.0625 | 4.167 | 0.9838 |" in rows["bp"]
    assert rows["wp-layer"].count("diverged (3/3)") == 7
    assert len(csv.splitlines()) == 1 + 3


def test_the_bit_sweep_places_fine_tuned_errors_at_their_runs_and_widths():
    runs, metrics = study()
    spiking = [run for run in runs if "/ann/" not in run]
    bits = [4, 8, 16]
    emulated = {(run, b): (0.5 / b, 0.9) for run in spiking for b in bits}
    tuned = {(f"parabola/mlp/bp/s{seed}", 4): (0.01 * (seed + 1), 0.9) for seed in range(3)}
    ds = bit_sweep_table(spiking, metrics, emulated, bits, tuned)
    bp = ds.sel({"target": "parabola", "model": "mlp", "method": "bp"})
    np.testing.assert_allclose(bp["emulated_rel_l2_tuned"].sel(bits=4), [0.01, 0.02, 0.03])
    assert float(bp["emulated_rel_l2_tuned_seed_median"].sel(bits=4)) == pytest.approx(0.02)
    assert np.isnan(bp["emulated_rel_l2_tuned"].sel(bits=[8, 16])).all()  # not fine-tuned there
    assert np.isnan(ds["emulated_rel_l2_tuned"].sel({"method": "rfg-layer"})).all()
    _, md = bit_sweep_text(ds)
    assert "w4 tuned" in md.splitlines()[0] and "w8 tuned" not in md.splitlines()[0]
    assert "| 0.0200 |" in next(line for line in md.splitlines() if " | bp | " in line)
    assert np.isnan(bit_sweep_table(spiking, metrics, emulated, bits)["emulated_rel_l2_tuned"]).all()


def test_every_figure_uses_the_method_colours(monkeypatch):
    colours = {}

    def keep(fig, png, pdf):
        for ax in fig.axes:
            for line in ax.get_lines():
                if not str(line.get_label()).startswith("_"):
                    colours[str(line.get_label()).split(",")[0]] = line.get_color()
        figures.plt.close(fig)

    monkeypatch.setattr(figures, "save", keep)
    bench = xr.Dataset({"step_time": (("estimator", "K", "T"), np.ones((3, 2, 2))),
                        "peak_memory": (("estimator", "K", "T"), np.ones((3, 2, 2)))},
                       coords={"estimator": ["bp", "rfg-layer", "wp-layer"], "K": [1, 4], "T": [8, 16]})
    figures.plot_estimator_cost(bench, "x.png", "x.pdf")
    for estimator in ("bp", "rfg-layer", "wp-layer"):
        assert colours[estimator] == figures.METHOD_COLOURS[estimator]
    runs, metrics = study()
    colours.clear()
    histories = {("mlp", m): {0: history()} for m in ("bp", "rfg-layer")}
    figures.plot_training(histories, "x.png", "x.pdf")
    assert colours == {m: figures.METHOD_COLOURS[m] for m in ("bp", "rfg-layer")}
    colours.clear()
    spiking = [run for run in runs if "/ann/" not in run]
    figures.plot_bit_sweep(bit_sweep_table(spiking, metrics, {(r, b): (0.1, 0.9) for r in spiking for b in (4, 8)}, [4, 8]),
                           "x.png", "x.pdf")
    assert colours == {m: figures.METHOD_COLOURS[m] for m in ("bp", "rfg-layer")}  # wp-layer: all diverged
    assert figures.method_colour("new-method") == figures.method_colour("new-method")


def test_timings_and_everything_derived_from_them_are_marked_as_measurements(tmp_path):
    runs, metrics = study()
    measured = {"wall_time": "timing", "time_per_step": "timing", "job_time": "timing", "peak_rss": "memory"}
    assert io.measurement_variables(metrics[runs[0]]) == measured
    cost = cost_table(runs, metrics)
    suffixes = ("", "_seed_mean", "_seed_std", "_seed_median", "_ratio_to_bp")
    assert io.measurement_variables(cost) == {name + s: kind for name, kind in measured.items() for s in suffixes}
    # a rerun on another machine: other timings, the same table as data
    slower = {run: ds.assign(wall_time=ds["wall_time"].copy(data=ds["wall_time"].values * 3))
              for run, ds in metrics.items()}
    assert not np.array_equal(cost_table(runs, slower)["wall_time"], cost["wall_time"], equal_nan=True)
    assert io.data_variables_equal(cost, cost_table(runs, slower))
    more_steps = {run: ds.assign(steps=ds["steps"].copy(data=ds["steps"].values + 1)) for run, ds in metrics.items()}
    assert "steps" in io.differing_variables(cost, cost_table(runs, more_steps))
    io.write_dataset(cost, tmp_path / "cost.nc", stage="tables", config={})  # passes the write check


def test_a_study_without_spiking_runs_has_empty_hardware_tables_and_figures_that_say_so(monkeypatch):
    texts = {}

    def keep(fig, png, pdf):
        texts[png] = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
        figures.plt.close(fig)

    monkeypatch.setattr(figures, "save", keep)
    runs, metrics = study()
    ann = {run: ds for run, ds in metrics.items() if "/ann/" in run}
    energy_ds = energy_table(list(ann), ann)
    sweep = bit_sweep_table([], {}, {}, [4, 8])
    for ds, text in ((energy_ds, energy_text), (sweep, bit_sweep_text)):
        csv, md = text(ds)
        assert len(csv.splitlines()) == 1 and len(md.splitlines()) == 2  # header (and rule) only
    figures.plot_bit_sweep(sweep, "sweep.png", "sweep.pdf")
    figures.plot_energy(energy_ds, "energy.png", "energy.pdf")
    figures.plot_spike_rates(energy_ds, "rates.png", "rates.pdf")
    assert set(texts) == {"sweep.png", "energy.png", "rates.png"}
    assert all("no spiking runs" in text for text in texts.values()), texts
    figures.plot_accuracy(accuracy_table(list(ann), ann), "accuracy.png", "accuracy.pdf")  # ANN bars


def test_the_bit_sweep_figure_names_diverged_methods(monkeypatch):
    texts, labels = [], []

    def keep(fig, png, pdf):
        texts.extend(t.get_text() for ax in fig.axes for t in ax.texts)
        labels.extend(str(line.get_label()) for ax in fig.axes for line in ax.get_lines())
        figures.plt.close(fig)

    monkeypatch.setattr(figures, "save", keep)
    runs, metrics = study()
    spiking = [run for run in runs if "/ann/" not in run]
    sweep = bit_sweep_table(spiking, metrics, {(r, b): (0.1, 0.9) for r in spiking for b in (4, 8)}, [4, 8])
    figures.plot_bit_sweep(sweep, "x.png", "x.pdf")
    assert texts == ["diverged: wp-layer"]
    assert "rfg-layer, diverged 1/3" in labels and "bp" in labels
