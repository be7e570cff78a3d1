"""The paper overlay (workflow/configs/paper.yaml) passes validation and plans, in a dry run,
a training job for every method of every experiment and each of its 5 seeds, with 3-5x the
default study's steps and every estimator the registry trains with."""

import re

from snakemake.utils import update_config

from fwdsnn.config import load_config_file, method_settings, train_settings, validate_config
from fwdsnn.registry import ESTIMATORS
from conftest import REPO, copy_workflow, planned_outputs, snakemake

PAPER = "workflow/configs/paper.yaml"
SEEDS = [0, 1, 2, 3, 4]


def configs() -> tuple[dict, dict]:
    """config.yaml, and config.yaml with the paper overlay merged as Snakemake merges it."""
    study = load_config_file(REPO / "config.yaml")
    paper = load_config_file(REPO / "config.yaml")
    update_config(paper, load_config_file(REPO / PAPER))
    return validate_config(study), validate_config(paper)


def runs(config: dict) -> dict[tuple, dict]:
    """(target, model, method) -> that run's train and method settings."""
    return {(e["target"], e["model"], m): {"train": train_settings(config, e, m),
                                            "method": method_settings(config, e, m)}
            for e in config["experiments"] for m in e["methods"]}


def test_the_dry_run_plans_every_method_for_every_seed(tmp_path):
    workdir = copy_workflow(tmp_path)
    # train_all: the training jobs and their data, what the overlay is about (a third faster)
    proc = snakemake(workdir, "-n", "train_all", "--configfile", "config.yaml", PAPER)
    output = proc.stdout + proc.stderr
    assert "invalid configuration" not in output
    _, paper = configs()
    assert paper["seeds"] == SEEDS
    expected = {f"results/runs/{target}/{model}/{method}/s{seed}/model.nc"
                for target, model, method in runs(paper) for seed in SEEDS}
    planned = {path for path in planned_outputs(proc) if re.fullmatch(r"results/runs/.+/model\.nc", path)}
    assert planned == expected
    train_jobs = re.search(r"^train\s+(\d+)$", output, flags=re.M)
    assert train_jobs and int(train_jobs.group(1)) == len(expected)
    assert not (workdir / "data").exists() and not (workdir / "results").exists()  # nothing ran


def test_it_holds_the_study_and_every_estimator_in_each_scope():
    study, paper = configs()
    studied = {(target, model) for target, model, _ in runs(study)}
    planned = runs(paper)
    assert {(target, model) for target, model, _ in planned} == studied
    assert set(runs(study)) <= set(planned)  # every method of the study, on every experiment
    # every estimator but backprop-norse, the reference that bp equals (timed by step_time)
    kinds = {(s["method"]["estimator"], s["method"].get("scope")) for s in planned.values()}
    assert {estimator for estimator, _ in kinds} == set(ESTIMATORS) - {"backprop-norse"}
    for estimator in ("forward", "perturbation", "activity"):
        assert {(estimator, "global"), (estimator, "layer")} <= kinds, estimator
    methods = [s["method"] for s in planned.values()]
    assert any(m.get("epsilon_scale") == "rms" for m in methods)
    assert any(m.get("readout") == "exact" for m in methods if m["estimator"] == "forward")


def test_budgets_are_three_to_five_times_the_studys():
    study, paper = configs()
    before, after = runs(study), runs(paper)
    for run, settings in before.items():
        ratio = after[run]["train"]["steps"] / settings["train"]["steps"]
        assert 3 <= ratio <= 5, (run, ratio)
        # the same run otherwise: learning rate, batch and the method's settings
        assert {k: v for k, v in after[run]["train"].items() if not k.endswith(("steps", "every"))} == \
               {k: v for k, v in settings["train"].items() if not k.endswith(("steps", "every"))}, run
        assert after[run]["method"] == settings["method"], run
    # a method new in the overlay gets the budget of the study's method of its estimator, else
    # bp's; weight perturbation, at several times bp's step, at least a fifth of it (the
    # compute-matched table compares it at bp's wall time)
    for target, model, method in after:
        if (target, model, method) not in before:
            estimator = after[target, model, method]["method"]["estimator"]
            kin = [m for (t, mo, m) in before if (t, mo) == (target, model)
                   and before[t, mo, m]["method"]["estimator"] == estimator] or ["bp"]
            share = 0.2 if estimator == "perturbation" and kin == ["bp"] else 1.0
            assert after[target, model, method]["train"]["steps"] >= \
                share * min(after[target, model, m]["train"]["steps"] for m in kin), (target, method)


def test_rfg_layer_exact_gets_rfg_layers_budget_where_the_study_tuned_it():
    """Poisson raises rfg-layer's K and steps: its exact-readout twin gets the same."""
    _, paper = configs()
    planned = runs(paper)
    for target, model, name in planned:
        if name == "rfg-layer":
            twin = planned[target, model, "rfg-layer-exact"]
            assert twin["train"] == planned[target, model, name]["train"], target
            assert twin["method"]["directions"] == planned[target, model, name]["method"]["directions"]
