# Config validation, wildcard constraints, input functions and target lists shared by all rules.
import sys

from snakemake.exceptions import WorkflowError

from fwdsnn.artifacts import RUN_DIR
from fwdsnn.config import (
    ConfigError,
    check_config_files,
    diagnosed_methods,
    finetune_settings,
    finetuned_runs,
    method_settings,
    step_time_runs,
    train_settings,
    untrained_finetune_runs,
    validate_config,
)
from fwdsnn.fingerprint import code_fingerprint
from fwdsnn.registry import FAMILIES, estimator_module, training_code_fingerprint

try:
    check_config_files(workflow.configfiles)
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
config.clear()
config.update(_validated)
_skipped = untrained_finetune_runs(config)
if _skipped:
    print(
        "fwdsnn: hardware.finetune.runs lists runs no experiment trains; skipped: "
        + ", ".join(_skipped),
        file=sys.stderr,
    )

TARGETS = sorted(config["targets"])


wildcard_constraints:
    target="|".join(TARGETS),
    model="[A-Za-z0-9_-]+",
    method="[A-Za-z0-9_-]+",
    seed=r"\d+",


def target_params(wildcards):
    """The validated settings of one target: a change reruns only that target's data."""
    return config["targets"][wildcards.target]


def reference_code(wildcards):
    """Fingerprint of the stage code plus the target's solver family (and what it imports)."""
    family = config["targets"][wildcards.target]["family"]
    return code_fingerprint("fwdsnn.reference", FAMILIES[family])


def train_code(wildcards):
    """Fingerprint of the training stage plus the run's own estimator: editing one estimator
    reruns the runs that use it, not the whole study."""
    estimator = config["methods"][wildcards.method][
        "estimator"
    ]  # overrides cannot change it
    return training_code_fingerprint(estimator)


def log_path(stage, name):
    return f"logs/{stage}/{name}.log"


def benchmark_path(stage, name):
    return f"results/benchmarks/{stage}/{name}.tsv"


def experiment_for(wildcards):
    for experiment in config["experiments"]:
        if (experiment["target"], experiment["model"]) == (
            wildcards.target,
            wildcards.model,
        ) and wildcards.method in experiment["methods"]:
            return experiment
    raise WorkflowError(
        f"no experiment trains {wildcards.target}/{wildcards.model} with {wildcards.method}"
    )


def run_settings(wildcards):
    """Model, method and merged train settings of one run: a change reruns just those runs."""
    return {
        "model": config["models"][wildcards.model],
        "method": method_settings(config, experiment_for(wildcards), wildcards.method),
        "train": train_settings(config, experiment_for(wildcards), wildcards.method),
    }


RUN_KEYS = [
    {"target": e["target"], "model": e["model"], "method": method, "seed": seed}
    for e in config["experiments"]
    for method in e["methods"]
    for seed in config["seeds"]
]
RUNS = [RUN_DIR.format(**key) for key in RUN_KEYS]
SPIKING_RUNS = [
    RUN_DIR.format(**key)
    for key in RUN_KEYS
    if config["methods"][key["method"]]["spiking"]
]
EXPERIMENT_TARGETS = list(dict.fromkeys(e["target"] for e in config["experiments"]))


def target_runs(wildcards):
    """The runs of every experiment on one target (all models, methods and seeds)."""
    return [
        RUN_DIR.format(**key) for key in RUN_KEYS if key["target"] == wildcards.target
    ]


def energy_input(wildcards):
    """A spiking run's energy.nc (synaptic operations, MACs); an ANN run has none."""
    if not config["methods"][wildcards.method]["spiking"]:
        return []
    return [f"results/hardware/{RUN_DIR}/energy.nc".format(**wildcards)]


def target_training(wildcards):
    """Train settings per 'model/method' of one target's runs (for figure captions)."""
    return {
        f"{e['model']}/{method}": train_settings(config, e, method)
        for e in config["experiments"]
        if e["target"] == wildcards.target
        for method in e["methods"]
    }


# 'target/model' -> {method: settings, gradient kind, K swept}: the forward-only spiking methods
# the diagnostics compare with BPTT; each job's params hold only its own methods, so adding one
# reruns only that job.
DIAGNOSED_METHODS = diagnosed_methods(config)
DIAGNOSED = list(DIAGNOSED_METHODS)


def diagnosed(wildcards):
    """The methods of one diagnostics job."""
    return DIAGNOSED_METHODS[f"{wildcards.target}/{wildcards.model}"]


def diagnostics_code(wildcards):
    """Fingerprint of the diagnostics stage plus the estimators of the job's methods."""
    modules = {
        estimator_module(m["method"]["estimator"])
        for m in diagnosed(wildcards).values()
    }
    return code_fingerprint("fwdsnn.diagnostics", *sorted(modules))


def finetune_params(wildcards):
    """One fine-tune's model, in-loop method (at the job's bits) and train settings."""
    return finetune_settings(
        config,
        wildcards.target,
        wildcards.model,
        wildcards.method,
        int(wildcards.bits),
    )


def finetune_code(wildcards):
    """Fingerprint of the fine-tune stage plus the estimator of its in-loop method (read when a
    job is planned: without fine-tuned runs hardware.finetune.method may be absent)."""
    estimator = config["methods"][config["hardware"]["finetune"]["method"]]["estimator"]
    return code_fingerprint("fwdsnn.finetune", estimator_module(estimator))
