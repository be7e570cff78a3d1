"""End to end: the quick overlay through Snakemake, reproducibility and rerun semantics."""

import numpy as np
import pytest
import yaml
from snakemake.utils import update_config

import nir

from fwdsnn import io
from fwdsnn.config import load_config_file, validate_config
from fwdsnn.hardware.format import read_fixed
from fwdsnn.reference import read_reference, train_mask
from conftest import QUICK, planned_outputs, snakemake

pytestmark = pytest.mark.e2e
OVERLAY = ("--configfile", "config.yaml", QUICK)


def quick_config(workdir):
    """config.yaml with the quick overlay merged the way Snakemake merges it."""
    merged = load_config_file(workdir / "config.yaml")
    update_config(merged, load_config_file(workdir / QUICK))
    return validate_config(merged)


def test_every_target_has_reference_data_and_figure(quick_study):
    config = quick_config(quick_study)
    for name, target in config["targets"].items():
        ds = read_reference(quick_study / "data" / f"{name}.nc")
        assert int(train_mask(ds).sum()) == target["n_train"]
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
    runs = [(e["target"], e["model"], m) for e in config["experiments"] for m in e["methods"]]
    assert len(runs) == 11
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


def test_gradient_diagnostics_and_cost_benchmark(quick_study):
    config = quick_config(quick_study)
    for experiment in config["experiments"]:
        path = quick_study / "results" / "diagnostics" / experiment["target"] / experiment["model"]
        ds = io.read_dataset(path / "gradient_quality.nc", stage="diagnostics", variables=("cosine",))
        assert list(ds["directions"].values) == config["diagnostics"]["directions"]
        assert ds.sizes["draw"] == config["diagnostics"]["draws"]
        assert np.all(np.abs(ds["cosine"].values) <= 1 + 1e-12)
        np.testing.assert_allclose(ds["theory_global"], np.sqrt(ds["directions"] / ds.attrs["parameters"]))
    bench = io.read_dataset(quick_study / "results" / "bench" / "estimators.nc", stage="bench")
    assert set(bench["estimator"].values) == {"bp", "rfg-global", "rfg-layer", "wp-global", "wp-layer"}
    assert np.all(bench["step_time"].values > 0)
    np.testing.assert_allclose(bench["time_ratio_to_bp"].sel(estimator="bp"), 1.0)
    for name in ("gradient_quality", "estimator_cost"):
        assert (quick_study / "results" / "figures" / f"{name}.png").stat().st_size > 10_000


def test_every_spiking_run_went_to_hardware(quick_study):
    config = quick_config(quick_study)
    bits = config["hardware"]["bits"]
    runs = [f"{e['target']}/{e['model']}/{m}/s0" for e in config["experiments"]
            for m in e["methods"] if config["methods"][m]["spiking"]]
    for run in runs:
        out = quick_study / "results" / "hardware" / run
        nir_graph = nir.read(out / "model.nir")
        assert nir_graph.nodes, run
        energy = io.read_dataset(out / "energy.nc", stage="energy")
        assert set(energy.data_vars), run
        for b in bits:
            fixed = read_fixed(out / f"fixed_w{b}.nc")
            assert {layer.weight_bits for layer in fixed.layers} == {b}
            emulated = io.read_dataset(out / f"emulated_w{b}.nc", stage="hardware")
            assert np.isfinite(emulated["u_pred"]).all()
    sweep = io.read_dataset(quick_study / "results" / "tables" / "bit_sweep.nc", stage="bit_sweep")
    assert list(sweep["bits"].values) == bits
    assert int(np.isfinite(sweep["emulated_rel_l2"]).sum()) == len(runs) * len(bits)
    # 16-bit weights keep the float network's accuracy (the emulator is faithful)
    ratio = sweep["ratio_to_float"].sel(bits=16).values
    assert np.nanmax(ratio) < 1.5, ratio
    rows = (quick_study / "results" / "tables" / "bit_sweep.md").read_text().splitlines()
    assert len(rows) == 2 + len(runs)  # header, rule, one row per (experiment, method): 1 seed
    assert (quick_study / "results" / "figures" / "bit_sweep.png").stat().st_size > 10_000


def test_nothing_to_do_after_a_run(quick_study):
    assert planned_outputs(snakemake(quick_study, "-n", *OVERLAY)) == []


def test_changing_one_target_reruns_only_its_data(quick_study, tmp_path):
    overlay = tmp_path / "change.yaml"
    overlay.write_text("targets:\n  heat: {n_train: 17}\n")
    planned = planned_outputs(snakemake(quick_study, "-n", "reference_all", *OVERLAY, str(overlay)))
    assert planned == ["data/heat.nc"]


@pytest.mark.parametrize("module, families", [
    ("poisson1d.py", {"poisson1d"}),  # one solver: its family only
    ("grf.py", {"antiderivative", "poisson1d", "heat1d", "diffusion_reaction1d", "advection1d"}),
])
def test_editing_solver_code_reruns_only_the_families_using_it(quick_study, module, families):
    source = quick_study / "fwdsnn" / "pdes" / module
    original = source.read_text()
    try:
        source.write_text(original + "\n_AN_EDIT = 1\n")
        planned = planned_outputs(snakemake(quick_study, "-n", "reference_all", *OVERLAY))
    finally:
        source.write_text(original)
    targets = quick_config(quick_study)["targets"]
    assert planned == sorted(f"data/{name}.nc" for name, t in targets.items() if t["family"] in families)


def test_forcerun_reproduces_the_stage_bit_for_bit(quick_study, tmp_path):
    before = {path.name: io.read_dataset(path) for path in (quick_study / "data").glob("*.nc")}
    proc = snakemake(quick_study, "-c2", "reference_all", "--forcerun", "reference", *OVERLAY)
    assert proc.returncode == 0
    for name, old in before.items():
        new = io.read_dataset(quick_study / "data" / name)
        assert io.data_variables_equal(old, new), f"{name} changed on rerun"
        assert new.attrs["created"] >= old.attrs["created"]


def test_a_new_target_is_a_config_edit(quick_study, tmp_path):
    overlay = tmp_path / "extra.yaml"
    overlay.write_text(
        "targets:\n"
        "  wave_fn: {family: function, expression: 'sin(pi*x) + 0.5*x', domain: [[0, 2]],"
        " n_train: 10, n_test: 5, seed: 3}\n"
        "  burgers_nu05: {family: burgers1d, nu: 0.05, nx: 11, nt: 6, n_sensors: 16, n_modes: 4,"
        " n_grid: 32, dt: 0.01, n_train: 3, n_test: 2}\n"
        "experiments:\n"
        "  - {target: burgers_nu05, model: seponet, methods: [bp]}\n")
    try:
        snakemake(quick_study, "-c2", "data/wave_fn.nc", "data/burgers_nu05.nc", *OVERLAY, str(overlay))
        fn = read_reference(quick_study / "data" / "wave_fn.nc")
        expected = np.sin(np.pi * fn["x"].values) + 0.5 * fn["x"].values
        np.testing.assert_allclose(fn["u"].values, expected, rtol=1e-6, atol=1e-6)
        assert ((fn["x"] >= 0) & (fn["x"] <= 2)).all()
        burgers = read_reference(quick_study / "data" / "burgers_nu05.nc")
        assert burgers["u"].dims == ("sample", "x", "t") and burgers.sizes["x"] == 11
        assert yaml.safe_load(burgers.attrs["config_json"])["nu"] == 0.05
    finally:
        for name in ("wave_fn", "burgers_nu05"):
            (quick_study / "data" / f"{name}.nc").unlink(missing_ok=True)


def test_report_contains_the_reference_figure(quick_study):
    snakemake(quick_study, "--report", "results/report.html", *OVERLAY)
    html = (quick_study / "results" / "report.html").read_text(errors="replace")
    assert "reference.png" in html and "Reference data" in html
    # the caption renders the config: the quick overlay's sizes, not the template
    assert "16 train / 8 test samples" in html and "{{" not in html.split("Reference data: three")[1][:2000]
