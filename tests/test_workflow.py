"""End to end: the quick overlay through Snakemake, reproducibility and rerun semantics."""

import numpy as np
import pytest
import yaml

import nir

from fwdsnn import io
from fwdsnn.artifacts import SPLIT_TRAIN, split_mask
from fwdsnn.config import diagnosed_methods, finetuned_runs, load_config_file
from fwdsnn.hardware.format import read_fixed
from fwdsnn.reference import read_reference
from conftest import DIVERGING_RUN, OVERLAY, planned_outputs, quick_config, register_toy_entries, snakemake

pytestmark = pytest.mark.e2e


def test_every_target_has_reference_data_and_figure(quick_study):
    config = quick_config(quick_study)
    for name, target in config["targets"].items():
        ds = read_reference(quick_study / "data" / f"{name}.nc")
        assert int(split_mask(ds, SPLIT_TRAIN).sum()) == target["n_train"]
        assert ds.sizes["sample"] == target["n_train"] + target["n_test"]
        assert ds["u"].dtype == np.float32 and np.isfinite(ds["u"]).all()
        for key in io.PROVENANCE_KEYS:
            assert key in ds.attrs, f"{name}: provenance attribute {key} missing"
        assert yaml.safe_load(ds.attrs["config_json"]) == target
    for suffix in ("png", "pdf"):
        assert (quick_study / "results" / "figures" / f"reference.{suffix}").stat().st_size > 10_000
    assert (quick_study / "results" / "benchmarks" / "reference" / "burgers.tsv").exists()


def test_every_quick_run_trained_and_logged_progress(quick_study):
    config = quick_config(quick_study)
    runs = [(e["target"], e["model"], m) for e in config["experiments"] for m in e["methods"]
            if f"{e['target']}/{e['model']}/{m}/s0" != DIVERGING_RUN]
    # the quick overlay trains every method of the default study at least once
    study = {m for e in load_config_file(quick_study / "config.yaml")["experiments"] for m in e["methods"]}
    assert study <= {method for _, _, method in runs}
    for target, model, method in runs:
        run = quick_study / "results" / "runs" / target / model / method / "s0"
        history = io.read_dataset(run / "history.nc", stage="train")
        assert history.attrs["status"] == "completed"
        assert history.sizes["step"] == config["train"]["steps"]
        prediction = io.read_dataset(run / "prediction.nc", stage="train")
        assert np.isfinite(prediction["u_pred"]).all() and np.isfinite(prediction["rel_l2"]).all()
        log = (quick_study / "logs" / "train" / target / model / method / "s0.log").read_text()
        assert "step 10/20 loss" in log and "test rel-L2" in log and "steps/s" in log
        if method != "ann":
            assert prediction.sizes["layer"] >= 2 and "spike rates [" in log
    history = io.read_dataset(quick_study / "results" / "runs" / DIVERGING_RUN / "history.nc", stage="train")
    assert history.attrs["status"] == "diverged" and history.sizes["step"] < config["train"]["steps"]
    assert "stopping with status diverged" in (quick_study / "logs" / "train" / f"{DIVERGING_RUN}.log").read_text()


def test_gradient_diagnostics_and_cost_benchmark(quick_study):
    config = quick_config(quick_study)
    for run, methods in diagnosed_methods(config).items():
        path = quick_study / "results" / "diagnostics" / run
        ds = io.read_dataset(path / "gradient_quality.nc", stage="diagnostics", variables=("cosine",))
        assert list(ds["method"].values) == list(methods)
        assert list(ds["directions"].values) == config["diagnostics"]["directions"]
        assert ds.sizes["draw"] == config["diagnostics"]["draws"]
        for name, entry in methods.items():
            swept = ds["cosine"].sel({"method": name}).sel(directions=entry["directions"])
            assert np.all(np.abs(swept.values) <= 1 + 1e-12), name
        np.testing.assert_allclose(ds["theory_global"], np.sqrt(ds["directions"] / ds.attrs["parameters"]))
    bench = io.read_dataset(quick_study / "results" / "bench" / "estimators.nc", stage="bench")
    assert set(bench["estimator"].values) == {"bp-norse", "bp", "rfg-global", "rfg-layer", "wp-global",
                                              "wp-layer"}
    assert np.all(bench["step_time"].values > 0)
    np.testing.assert_allclose(bench["time_ratio_to_bp"].sel(estimator="bp"), 1.0)
    steps = io.read_dataset(quick_study / "results" / "bench" / "step_time.nc", stage="bench",
                            variables=("step_time", "norse_to_bp"))
    first = {}  # each model's first experiment is the one timed
    for experiment in config["experiments"]:
        first.setdefault(experiment["model"], experiment)
    assert sorted(steps["model"].values) == sorted(first)
    for model, experiment in first.items():
        methods = [*experiment["methods"], *(["bp-norse"] if "bp" in experiment["methods"] else [])]
        timed = steps["step_time"].sel(model=model).dropna("estimator")
        assert sorted(timed["estimator"].values) == sorted(methods) and np.all(timed.values > 0)
    for name in ("gradient_quality", "estimator_cost"):
        assert (quick_study / "results" / "figures" / f"{name}.png").stat().st_size > 10_000


def test_every_spiking_run_went_to_hardware(quick_study):
    config = quick_config(quick_study)
    bits = config["hardware"]["bits"]
    runs = [f"{e['target']}/{e['model']}/{m}/s0" for e in config["experiments"]
            for m in e["methods"] if config["methods"][m]["spiking"]]
    assert DIVERGING_RUN in runs
    completed = [run for run in runs if run != DIVERGING_RUN]
    for run in completed:
        out = quick_study / "results" / "hardware" / run
        nir_graph = nir.read(out / "model.nir")
        assert nir_graph.nodes and nir_graph.metadata["status"] == "completed", run
        energy = io.read_dataset(out / "energy.nc", stage="energy")
        assert set(energy.data_vars) and energy.attrs["status"] == "completed", run
        for b in bits:
            fixed = read_fixed(out / f"fixed_w{b}.nc")
            assert {layer.weight_bits for layer in fixed.layers} == {b}
            emulated = io.read_dataset(out / f"emulated_w{b}.nc", stage="hardware")
            assert np.isfinite(emulated["u_pred"]).all() and emulated.attrs["status"] == "completed"
    # the diverged run: placeholders that say so, no network of blown-up weights
    out = quick_study / "results" / "hardware" / DIVERGING_RUN
    assert nir.read(out / "model.nir").nodes == {}
    for name in ["model.nir", "energy.nc", *(f"{kind}_w{b}.nc" for kind in ("fixed", "emulated") for b in bits)]:
        attrs = nir.read(out / name).metadata if name == "model.nir" else io.read_dataset(out / name).attrs
        assert attrs["status"] == "diverged", name
    assert not io.read_dataset(out / f"fixed_w{bits[0]}.nc").data_vars
    log = (quick_study / "logs" / "hardware" / f"{DIVERGING_RUN}.log").read_text()
    assert "training diverged; writing placeholders" in log
    sweep = io.read_dataset(quick_study / "results" / "tables" / "bit_sweep.nc", stage="bit_sweep")
    assert list(sweep["bits"].values) == bits
    assert int(np.isfinite(sweep["emulated_rel_l2"]).sum()) == len(completed) * len(bits)
    # 16-bit weights keep the float network's accuracy (the emulator is faithful)
    ratio = sweep["ratio_to_float"].sel(bits=16).values
    assert np.nanmax(ratio) < 1.5, ratio
    rows = (quick_study / "results" / "tables" / "bit_sweep.md").read_text().splitlines()
    assert len(rows) == 2 + len(runs)  # header, rule, one row per (experiment, method): 1 seed
    diverged_row = next(row for row in rows if f" | {DIVERGING_RUN.split('/')[2]} | " in row)
    tuned_bits = config["hardware"]["finetune"]["bits"]  # a "w<b> tuned" column each
    assert diverged_row.count("diverged (1/1)") == 3 + len(bits) + (8 in bits) + len(tuned_bits)
    csv = (quick_study / "results" / "tables" / "bit_sweep.csv").read_text()
    assert f"{DIVERGING_RUN.rsplit('/', 1)[0].replace('/', ',')}," in csv and csv.count(",1,0,1\n") == 1
    assert (quick_study / "results" / "figures" / "bit_sweep.png").stat().st_size > 10_000


def test_fine_tuned_runs_are_emulated_and_in_the_bit_sweep(quick_study):
    config = quick_config(quick_study)
    tuned, bits = finetuned_runs(config), config["hardware"]["finetune"]["bits"]
    assert tuned
    sweep = io.read_dataset(quick_study / "results" / "tables" / "bit_sweep.nc", stage="bit_sweep")
    for run in tuned:
        target, model, method, seed = run.split("/")
        at = {"target": target, "model": model, "method": method, "seed": int(seed[1:])}
        for b in bits:
            out = quick_study / "results" / "hardware" / run
            emulated = io.read_dataset(out / f"emulated_w{b}_tuned.nc", stage="hardware")
            assert float(sweep["emulated_rel_l2_tuned"].sel(at).sel(bits=b)) == float(np.mean(emulated["rel_l2"]))
            history = io.read_dataset(out / f"history_w{b}_tuned.nc", stage="train")
            assert history.sizes["step"] == config["hardware"]["finetune"]["train"]["steps"]
            assert {layer.weight_bits for layer in read_fixed(out / f"fixed_w{b}_tuned.nc").layers} == {b}
            log = (quick_study / "logs" / "hardware_finetune" / run / f"w{b}.log").read_text()
            assert "fine-tuning" in log and "emulated training loss" in log
    assert int(np.isfinite(sweep["emulated_rel_l2_tuned"]).sum()) == len(tuned) * len(bits)


def quick_runs(config):
    return [f"{e['target']}/{e['model']}/{m}/s{seed}" for e in config["experiments"]
            for m in e["methods"] for seed in config["seeds"]]


def test_metrics_per_run_match_the_run_files(quick_study):
    config = quick_config(quick_study)
    for run in quick_runs(config):
        files = quick_study / "results" / "runs" / run
        if run == DIVERGING_RUN:
            metrics = io.read_dataset(files / "metrics.nc", stage="metrics")
            assert metrics.attrs["status"] == "diverged" and float(metrics["diverged"]) == 1
            assert np.isnan(float(metrics["energy_snn"]))  # from the placeholder energy.nc
            continue
        metrics = io.read_dataset(files / "metrics.nc", stage="metrics")
        prediction = io.read_dataset(files / "prediction.nc", stage="train")
        history = io.read_dataset(files / "history.nc", stage="train")
        assert float(metrics["rel_l2_mean"]) == pytest.approx(float(np.mean(prediction["rel_l2"])), rel=1e-12)
        assert float(metrics["rel_l2_median"]) == pytest.approx(float(np.median(prediction["rel_l2"])), rel=1e-12)
        assert metrics.attrs["status"] == history.attrs["status"]
        assert int(metrics["steps"]) == history.sizes["step"] == config["train"]["steps"]
        assert float(metrics["forward_passes"]) == float(history["forward_passes"][-1])
        assert float(metrics["wall_time"]) == float(history["wall_time"][-1]) > 0
        assert float(metrics["peak_rss"]) > 50  # MiB, from the train job's benchmark TSV
        np.testing.assert_array_equal(metrics["spike_rate"], prediction["spike_rate"])
        if config["methods"][run.split("/")[2]]["spiking"]:
            energy = io.read_dataset(quick_study / "results" / "hardware" / run / "energy.nc", stage="energy")
            assert float(metrics["sop_total"]) == float(energy["sop_total"].sel(per="inference")) > 0
            assert float(metrics["energy_ratio"]) == float(energy["energy_ratio"])
        else:
            assert np.isnan(float(metrics["sop_total"])) and metrics.sizes["layer"] == 0


def test_aggregate_tables(quick_study):
    config = quick_config(quick_study)
    runs = quick_runs(config)
    tables = quick_study / "results" / "tables"
    accuracy = io.read_dataset(tables / "accuracy.nc", stage="table_accuracy")
    assert accuracy["rel_l2_mean"].dims == ("target", "model", "method", "seed")
    diverged = 0
    for run in runs:
        target, model, method, seed = run.split("/")
        at = {"target": target, "model": model, "method": method, "seed": int(seed[1:])}
        errors = io.read_dataset(quick_study / "results" / "runs" / run / "prediction.nc")["rel_l2"]
        status = io.read_dataset(quick_study / "results" / "runs" / run / "history.nc").attrs["status"]
        diverged += status == "diverged"
        assert accuracy["status"].sel(at).item() == status
        if status == "completed":
            assert float(accuracy["rel_l2_mean"].sel(at)) == pytest.approx(float(np.mean(errors)), rel=1e-12)
    assert int(accuracy["n_diverged"].sum()) == diverged
    assert int(accuracy["n_runs"].sum()) == int((accuracy["status"] != "not run").sum()) == len(runs)
    bp = accuracy["rel_l2_mean_ratio_to_bp"].sel({"method": "bp"})
    np.testing.assert_allclose(bp.values[np.isfinite(bp.values)], 1.0)
    experiments = {(e["target"], e["model"]) for e in config["experiments"]}
    assert int(np.isfinite(bp).sum()) == len(experiments)  # every experiment has bp
    assert diverged == 1  # DIVERGING_RUN
    rows = (tables / "accuracy.md").read_text().splitlines()
    assert len(rows) == 2 + len({run.rsplit("/", 1)[0] for run in runs})
    method = DIVERGING_RUN.split("/")[2]
    for name in ("accuracy", "energy"):
        row = next(row for row in (tables / f"{name}.md").read_text().splitlines() if f" | {method} | " in row)
        assert "diverged (1/1)" in row, (name, row)
    assert len((tables / "accuracy.csv").read_text().splitlines()) == len(rows) - 1
    cost = io.read_dataset(tables / "cost.nc", stage="table_cost")
    completed = int((cost["status"] == "completed").sum())
    assert int(cost["steps"].where(cost["status"] == "completed").sum()) == completed * config["train"]["steps"]
    assert completed == len(runs) - 1
    assert np.all(cost["forward_passes_seed_median"].fillna(1).values > 0)
    energy = io.read_dataset(tables / "energy.nc", stage="table_energy")
    spiking = [m for m in config["methods"] if config["methods"][m]["spiking"]]
    assert set(energy["method"].values) <= set(spiking) and "ann" not in energy["method"].values
    ratio = energy["energy_ratio"].values
    assert np.all(ratio[np.isfinite(ratio)] > 0)
    for name in ("cost", "energy"):
        assert (tables / f"{name}.md").read_text().count("\n") >= 3


def run_histories(quick_study, config):
    """(run path, its table coordinates, its history.nc) for every run of the quick study."""
    for run in quick_runs(config):
        target, model, method, seed = run.split("/")
        at = {"target": target, "model": model, "method": method, "seed": int(seed[1:])}
        yield run, at, io.read_dataset(quick_study / "results" / "runs" / run / "history.nc")


def test_compute_matched_table_reads_the_histories(quick_study):
    config = quick_config(quick_study)
    ds = io.read_dataset(quick_study / "results" / "tables" / "compute_matched.nc", stage="table_compute_matched")
    for run, at, history in run_histories(quick_study, config):
        for budget in ("equal_steps", "bp_wall_time"):
            step = float(ds[f"step_at_{budget}"].sel(at))
            if np.isfinite(step):
                expected = float(history["test_rel_l2_mean"].sel(eval_step=step))
                assert float(ds[f"rel_l2_at_{budget}"].sel(at)) == expected, (run, budget)
            else:  # every completed run reaches the common step; a slow one may miss bp's time
                assert budget == "bp_wall_time" or history.attrs["status"] == "diverged", (run, budget)
    assert int(ds["equal_steps_flag"].sel({"method": DIVERGING_RUN.split("/")[2]}).min()) == 1  # stopped early
    bp = ds["rel_l2_at_bp_wall_time_ratio_to_bp"].sel({"method": "bp"})
    np.testing.assert_allclose(bp.values[np.isfinite(bp.values)], 1.0)


def test_convergence_table_reads_the_last_fifth_of_each_history(quick_study):
    config = quick_config(quick_study)
    ds = io.read_dataset(quick_study / "results" / "tables" / "convergence.nc", stage="table_convergence")
    for run, at, history in run_histories(quick_study, config):
        if history.attrs["status"] == "diverged":
            assert np.isnan(float(ds["last_fifth_improvement"].sel(at))), run
            continue
        errors = history["test_rel_l2_mean"]
        before = float(errors.sel(eval_step=errors["eval_step"].where(
            errors["eval_step"] <= 0.8 * history.sizes["step"], drop=True).max()))
        after = float(errors.isel(eval_step=-1))
        assert float(ds["last_fifth_improvement"].sel(at)) == pytest.approx((before - after) / before), run


FIGURES = ["reference", "gradient_quality", "estimator_cost", "bit_sweep", "accuracy", "energy",
           "spike_rates", "compute_matched"]


def all_figures(config):
    targets = list(dict.fromkeys(e["target"] for e in config["experiments"]))
    return FIGURES + [f"{kind}_{target}" for kind in ("predictions", "training") for target in targets]


def test_every_figure_exists(quick_study):
    for name in all_figures(quick_config(quick_study)):
        for suffix in ("png", "pdf"):
            path = quick_study / "results" / "figures" / f"{name}.{suffix}"
            assert path.stat().st_size > 10_000, path


def test_nothing_to_do_after_a_run(quick_study):
    assert planned_outputs(snakemake(quick_study, "-n", *OVERLAY)) == []


def test_registering_a_family_an_estimator_and_a_model_kind_reruns_nothing(quick_study):
    edited = [quick_study / "fwdsnn" / name for name in ("registry.py", "schemas/config.schema.yaml")]
    originals = [path.read_text() for path in edited]
    added = []
    try:
        added = register_toy_entries(quick_study / "fwdsnn")
        assert "toy_deeponet" in edited[0].read_text() and "toy_deeponet" in edited[1].read_text()
        assert planned_outputs(snakemake(quick_study, "-n", *OVERLAY)) == []
    finally:
        for path, text in zip(edited, originals):
            path.write_text(text)
        for path in added:
            path.unlink()


def test_report_contains_the_reference_figure(quick_study):
    snakemake(quick_study, "--report", "results/report.html", *OVERLAY)
    html = (quick_study / "results" / "report.html").read_text(errors="replace")
    assert "reference.png" in html and "Reference data" in html
    # the caption renders the config: the quick overlay's sizes, not the template
    assert "16 train / 8 test samples" in html and "{{" not in html.split("Reference data: three")[1][:2000]
    for name in all_figures(quick_config(quick_study)):
        assert f"{name}.png" in html, f"{name} missing from the report"
    for table in ("accuracy", "cost", "energy", "bit_sweep", "compute_matched", "convergence"):
        assert f"{table}.md" in html, f"{table} table missing from the report"
    # captions render the config (seeds, steps), not the Jinja template
    assert "20 steps, batch 8" in html and "snakemake.params" not in html


def test_every_timing_or_memory_variable_in_the_study_is_marked(quick_study):
    """The live SLURM test and the rerun checks skip measurements by their mark: one without it
    would make two equal studies differ."""
    files = sorted(quick_study.glob("data/*.nc")) + sorted(quick_study.glob("results/**/*.nc"))
    marked = set()
    for path in files:
        ds = io.read_dataset(path)
        for name, var in ds.variables.items():
            if var.attrs.get("units") in io.MEASURED_UNITS:
                assert io.MEASUREMENT_ATTR in var.attrs, f"{path.relative_to(quick_study)}: {name} unmarked"
        marked |= {f"{path.name}:{name}" for name in io.measurement_variables(ds)}
    for expected in ("history.nc:wall_time", "metrics.nc:peak_rss", "cost.nc:time_per_step_seed_median",
                     "estimators.nc:step_time", "estimators.nc:memory_ratio_to_bp",
                     "compute_matched.nc:rel_l2_at_bp_wall_time_ratio_to_bp"):
        assert expected in marked
