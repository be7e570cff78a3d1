# Config validation, wildcard constraints, input functions and target lists shared by all rules.
from snakemake.exceptions import WorkflowError

from fwdsnn.config import ConfigError, check_config_files, validate_config
from fwdsnn.fingerprint import code_fingerprint
from fwdsnn.pdes import FAMILY_MODULES

try:
    check_config_files(workflow.configfiles)
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(f"invalid configuration: {err}") from None
config.clear()
config.update(_validated)

TARGETS = sorted(config["targets"])


wildcard_constraints:
    target="|".join(TARGETS),


def target_params(wildcards):
    """The validated settings of one target: a change reruns only that target's data."""
    return config["targets"][wildcards.target]


def reference_code(wildcards):
    """Fingerprint of the stage code plus the target's solver family (and what it imports)."""
    family = config["targets"][wildcards.target]["family"]
    return code_fingerprint("fwdsnn.reference", FAMILY_MODULES[family])


def log_path(stage, name):
    return f"logs/{stage}/{name}.log"


def benchmark_path(stage, name):
    return f"results/benchmarks/{stage}/{name}.tsv"
