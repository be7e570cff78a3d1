"""Bad configuration fails `snakemake -n` before any job, naming the key it breaks."""

import copy

import pytest
import yaml

from fwdsnn.config import ConfigError, load_config_file, load_schema, method_settings, validate_config
from fwdsnn.limits import machine_memory_bytes, memory_limit
from conftest import REPO, copy_workflow, snakemake

MINIMAL = {"targets": {"p": {"family": "poisson1d"}}}
FUNCTION = {"targets": {"f": {"family": "function", "expression": "x", "domain": [[0, 1]]}},
            "models": {"mlp": {"kind": "spiking_mlp"}}, "methods": {"bp": {"estimator": "backprop"}}}


def with_target(**fields):
    return {"targets": {"p": {"family": "poisson1d", **fields}}}


# (case id, config or raw YAML text, text the error must contain)
BAD_CONFIGS = [
    ("unknown family", {"targets": {"p": {"family": "wave9d"}}}, "targets.p.family"),
    ("missing required key", {"targets": {"f": {"family": "function", "domain": [[0, 1]]}}},
     "'expression' is a required property"),
    ("wrong type", with_target(n_points="many"), "targets.p.n_points"),
    ("zero size", with_target(n_train=0), "targets.p.n_train"),
    ("negative size", with_target(refine=-2), "targets.p.refine"),
    ("length scale zero", with_target(grf={"length_scale": 0.0}), "targets.p.grf.length_scale"),
    ("length scale negative", with_target(grf={"length_scale": -1}), "targets.p.grf.length_scale"),
    ("name with slash", {"targets": {"a/b": {"family": "poisson1d"}}}, "'a/b' does not match"),
    ("name with dots", {"targets": {"..": {"family": "poisson1d"}}}, "'..' does not match"),
    ("attribute access", {"targets": {"f": {"family": "function", "expression": "x.__class__",
                                            "domain": [[0, 1]]}}}, "targets.f.expression"),
    ("call outside whitelist", {"targets": {"f": {"family": "function", "expression": "open(x)",
                                                  "domain": [[0, 1]]}}}, "'open'"),
    ("unknown variable", {"targets": {"f": {"family": "function", "expression": "x*y",
                                            "domain": [[0, 1]]}}}, "'y'"),
    ("empty targets", {"targets": {}}, "config key 'targets'"),
    ("undefined target in experiment",
     {**FUNCTION, "experiments": [{"target": "q", "model": "mlp", "methods": ["bp"]}]},
     "experiments.0.target"),
    ("unknown key", with_target(nx=11), "'nx' was unexpected"),
    ("duplicate seeds", {**MINIMAL, "seeds": [1, 1]}, "config key 'seeds'"),
    ("empty interval", {"targets": {"f": {"family": "function", "expression": "x",
                                          "domain": [[1, 1]]}}}, "targets.f.domain.0"),
    ("undefined model in experiment",
     {**FUNCTION, "experiments": [{"target": "f", "model": "nope", "methods": ["bp"]}]},
     "experiments.0.model"),
    ("undefined method in experiment",
     {**FUNCTION, "experiments": [{"target": "f", "model": "mlp", "methods": ["bp", "rfg"]}]},
     "'rfg' is not defined under methods"),
    ("model cannot learn the target",
     {**FUNCTION, "targets": {"p": {"family": "poisson1d"}},
      "experiments": [{"target": "p", "model": "mlp", "methods": ["bp"]}]},
     "a spiking_mlp cannot learn target 'p'"),
    ("bad per-method train override",
     {**FUNCTION, "experiments": [{"target": "f", "model": "mlp", "methods": ["bp"],
                                   "train": {"methods": {"bp": {"lr": 0}}}}]},
     "experiments.0.train.methods.bp.lr"),
    ("bad per-experiment method override",
     {**FUNCTION, "experiments": [{"target": "f", "model": "mlp", "methods": ["bp"],
                                   "method_overrides": {"bp": {"directions": 0}}}]},
     "experiments.0.method_overrides.bp.directions"),
    ("method override for a method the experiment does not train",
     {**FUNCTION, "experiments": [{"target": "f", "model": "mlp", "methods": ["bp"],
                                   "method_overrides": {"wp": {"directions": 2}}}]},
     "experiments.0.method_overrides': ['wp'] not among"),
    ("unknown train key", {**FUNCTION, "train": {"epochs": 3}}, "'epochs' was unexpected"),
    ("unknown surrogate", {**FUNCTION, "methods": {"bp": {"estimator": "backprop",
                                                          "surrogate": {"kind": "arctan"}}}},
     "methods.bp.surrogate.kind"),
    ("duplicate target name",
     "targets:\n  p: {family: poisson1d}\n  p: {family: heat1d}\n", "duplicate key 'p'"),
    ("duplicate top-level key", "seeds: [0]\nseeds: [1]\ntargets: {p: {family: poisson1d}}\n",
     "duplicate key 'seeds'"),
    ("YAML .nan", "targets: {p: {family: poisson1d, grf: {length_scale: .nan}}}\n",
     "config key 'targets.p.grf.length_scale': nan is not a finite number"),
    ("integer written as a float", "seeds: [0]\ntargets: {p: {family: poisson1d, n_train: 2.0e+1}}\n",
     "config key 'targets.p.n_train': 20.0 is not of type 'integer'"),
    ("empty study", {**MINIMAL, "experiments": []}, "config key 'experiments'"),
    ("name with a trailing newline", {"targets": {"evil\n": {"family": "poisson1d"}}},
     "config key 'targets': 'evil\\n' does not match"),
]


# A valid study to break one key at a time (validate_config directly: no Snakemake start-up)
STUDY = {**FUNCTION, "targets": {**FUNCTION["targets"], "p": {"family": "poisson1d"}},
         "models": {**FUNCTION["models"], "don": {"kind": "spiking_deeponet"}},
         "methods": {**FUNCTION["methods"], "wp": {"estimator": "perturbation"}},
         "experiments": [{"target": "f", "model": "mlp", "methods": ["bp", "wp"]},
                         {"target": "p", "model": "don", "methods": ["bp"]}]}


def study(change) -> dict:
    config = copy.deepcopy(STUDY)
    change(config)
    return config


def setting(section_path: str, value):
    """A change that sets one dotted key of STUDY (creating missing mappings)."""
    def change(config):
        *parents, leaf = section_path.split(".")
        node = config
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if isinstance(node, list) and int(leaf) == len(node):
            node.append(value)
        else:
            node[int(leaf) if isinstance(node, list) else leaf] = value
    return change


NAN, INF = float("nan"), float("inf")
# (dotted key changed, value, text the error must contain)
IN_LOOP = {"estimator": "perturbation", "epsilon": 2.0}
FUZZ = [
    # non-finite numbers anywhere (YAML .nan / .inf)
    *[(key, value, f"config key '{key}': {value} is not a finite number") for key, value in [
        ("train.lr", NAN), ("train.lr_final", INF), ("methods.wp.epsilon", NAN),
        ("models.mlp.neuron.dt", INF), ("models.mlp.neuron.v_th", NAN), ("models.mlp.gain", -INF),
        ("methods.bp.surrogate.slope", NAN), ("targets.p.grf.length_scale", INF),
        ("targets.p.grf.variance", NAN), ("experiments.0.train.lr", INF),
        ("experiments.0.method_overrides.wp.epsilon", NAN)]],
    ("targets.b.nu", NAN, "config key 'targets.b.nu': nan is not a finite number"),
    ("targets.h.t_max", INF, "config key 'targets.h.t_max': inf is not a finite number"),
    ("targets.f.domain", [[0, INF]], "config key 'targets.f.domain.0.1': inf"),
    # floats where the schema means integers
    ("train.steps", 20.0, "config key 'train.steps': 20.0 is not of type 'integer'"),
    ("models.mlp.width", 16.0, "config key 'models.mlp.width': 16.0 is not of type 'integer'"),
    ("seeds", [1.0], "config key 'seeds.0': 1.0 is not of type 'integer'"),
    ("hardware.bits", [8.0], "config key 'hardware.bits.0': 8.0 is not of type 'integer'"),
    ("hardware.synaptic_delay", 1.0, "config key 'hardware.synaptic_delay'"),
    ("targets.p.n_points", 51.0, "config key 'targets.p.n_points'"),
    ("experiments.0.train.batch", 8.0, "config key 'experiments.0.train.batch'"),
    ("models.mlp.depth", True, "config key 'models.mlp.depth'"),
    # seeds outside [0, 2**32)
    ("seeds", [2**64], "config key 'seeds.0'"),
    ("seeds", [2**32], "config key 'seeds.0'"),
    ("seeds", [-1], "config key 'seeds.0'"),
    ("targets.p.seed", 2**32, "config key 'targets.p.seed'"),
    # sizes past the memory limit
    ("targets.f.n_train", 10**9, "config key 'targets.f.n_train'"),
    ("targets.p.n_test", 10**9, "config key 'targets.p.n_test'"),
    ("targets.h.nx", 10**6, "config key 'targets.h.nx'"),
    ("targets.h.fine_points", 10**6, "config key 'targets.h.fine_points'"),
    ("models.mlp.width", 10**6, "config key 'models.mlp.width'"),
    ("models.don.latent", 10**9, "config key 'models.don.latent'"),
    ("models.mlp.steps", 10**12, "config key 'models.mlp.steps'"),
    ("train.steps", 10**12, "config key 'train.steps'"),
    ("experiments.1.train.batch", 10**9, "config key 'experiments.1.train.batch'"),
    ("experiments.0.train.methods", {"wp": {"steps": 10**12}},
     "config key 'experiments.0.train.methods.wp.steps'"),
    ("limits.memory_mib", 1, "config key 'targets.p.n_train'"),  # an explicit, tiny limit
    ("diagnostics.batch", 10**9, "config key 'diagnostics.batch'"),
    ("diagnostics.directions", [10**9], "config key 'diagnostics.directions'"),
    ("bench.width", 10**6, "config key 'bench.width'"),
    ("bench.time_steps", [16, 10**9], "config key 'bench.time_steps'"),
    ("methods.wp.directions", 10**8, "config key 'methods.wp.directions'"),
    # training in the loop
    ("methods.wp", {**IN_LOOP, "hardware": {"bits": 5}}, "config key 'methods.wp.hardware.bits'"),
    ("methods.wp", {**IN_LOOP, "hardware": {"bits": 8, "bit": 8}}, "config key 'methods.wp.hardware'"),
    ("methods.wp", {**IN_LOOP, "hardware": {"input_bits": 8}}, "config key 'methods.wp.hardware'"),
    ("methods.wp.hardware", {"bits": 8}, "config key 'methods.wp.epsilon': 0.05 is less than"),
    ("methods.bp.hardware", {"bits": 8}, "config key 'methods.bp.estimator'"),
    ("methods.wp", {**IN_LOOP, "hardware": {"bits": 8}, "epsilon_scale": "rms"},
     "config key 'methods.wp.epsilon_scale'"),
    ("experiments.0.method_overrides", {"wp": {"directions": 10**8}},
     "config key 'experiments.0.method_overrides.wp.directions'"),
    # the study's shape
    ("experiments", [], "config key 'experiments': the study has no experiments"),
    ("experiments.2", {"target": "f", "model": "mlp", "methods": ["wp"]},
     "config key 'experiments.2.methods': f/mlp/wp is already trained by experiments.0"),
    # names that become paths
    ("targets.evil\n", {"family": "poisson1d"}, "'evil\\n' does not match"),
    ("targets." + "a" * 65, {"family": "poisson1d"}, "is too long"),
    ("models.m\t", {"kind": "spiking_mlp"}, "config key 'models'"),
    ("methods.bp\x00", {"estimator": "backprop"}, "config key 'methods'"),
]


STUDY["targets"].update(h={"family": "heat1d"}, b={"family": "burgers1d"})


@pytest.mark.parametrize("key, value, expected", FUZZ, ids=[f"{k}={v!r}"[:60] for k, v, _ in FUZZ])
def test_fuzzed_config_is_refused_naming_the_key(key, value, expected):
    config = study(setting(key, value))
    with pytest.raises(ConfigError) as caught:
        validate_config(config)
    assert expected in str(caught.value)


def test_the_study_before_fuzzing_is_valid():
    """Every fuzz case above breaks a config that is valid without its change."""
    validate_config(STUDY)


def test_a_study_of_ann_runs_only_is_valid():
    config = validate_config(study(lambda c: c.update(
        methods={"ann": {"estimator": "backprop", "spiking": False}},
        experiments=[{"target": "f", "model": "mlp", "methods": ["ann"]}])))
    assert [e["methods"] for e in config["experiments"]] == [["ann"]]


def test_the_memory_limit_follows_the_machine_or_the_setting():
    assert memory_limit({"memory_mib": 3, "memory_fraction": 0.5})[0] == 3 * 2**20
    total = machine_memory_bytes()
    assert total > 2**20
    assert memory_limit({"memory_mib": 0, "memory_fraction": 0.25})[0] == int(0.25 * total)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("badconfig"))


def config_text(config) -> str:
    return config if isinstance(config, str) else yaml.safe_dump(config)


@pytest.mark.parametrize("case, config, expected", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_refused_naming_the_key(tmp_path, case, config, expected):
    """What the workflow runs on its config (common.smk), without Snakemake's start-up."""
    path = tmp_path / "config.yaml"
    path.write_text(config_text(config))
    with pytest.raises(ConfigError) as err:
        validate_config(load_config_file(path))
    assert expected in str(err.value)


# a few of the cases through Snakemake itself: the refusal reaches the user before any job
DRY_RUN_CASES = ("unknown family", "duplicate target name", "YAML .nan", "integer written as a float",
                 "empty study", "undefined method in experiment", "name with a trailing newline")


@pytest.mark.parametrize("case, config, expected", [c for c in BAD_CONFIGS if c[0] in DRY_RUN_CASES],
                         ids=[c[0] for c in BAD_CONFIGS if c[0] in DRY_RUN_CASES])
def test_bad_config_fails_the_dry_run_naming_the_key(scratch, case, config, expected):
    (scratch / "config.yaml").write_text(config_text(config))
    proc = snakemake(scratch, "-n", check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{case}: dry run accepted the config"
    assert "invalid configuration" in output and expected in output, output[-2000:]
    assert not (scratch / "data").exists() and not (scratch / "results").exists()


def test_the_default_and_quick_configs_are_valid():
    config = validate_config(load_config_file(REPO / "config.yaml"))
    assert config["targets"]["poisson1d"]["grf"] == {"length_scale": 1.0, "variance": 1.0}
    assert config["targets"]["antiderivative"]["fine_points"] == 1000  # filled from the schema default
    assert load_config_file(REPO / "workflow/configs/quick.yaml")["targets"]


def test_every_schema_key_has_a_description_and_a_default():
    schema = load_schema()
    required_anywhere = {"targets", "family", "expression", "domain", "target", "model",
                         "methods", "length_scale", "kind", "estimator", "bits",
                         "method"}  # hardware.finetune.method: required once it lists runs
    # a method key whose default is the estimator's own (or its absence): a schema default
    # would enter the settings of every existing run (its Snakemake params) and rerun the study
    # (epsilon's 0.05 is filled for every estimator but node, which requires it)
    estimator_defaults = {"readout", "epsilon_scale", "first_layer", "hardware", "epsilon"}
    missing = []

    def visit(node, path):
        for name, sub in node.get("properties", {}).items():
            if "description" not in sub and "$ref" not in sub:
                missing.append(f"{path}{name}: description")
            if "default" not in sub and name not in required_anywhere | estimator_defaults:
                missing.append(f"{path}{name}: default")
            visit(sub, f"{path}{name}.")
        for name, sub in node.get("$defs", {}).items():
            visit(sub, f"$defs.{name}.")

    visit(schema, "")
    assert missing == []


def test_validation_does_not_modify_its_input():
    config = copy.deepcopy(STUDY)
    validate_config(config)
    assert config == STUDY
    with pytest.raises(ConfigError, match="targets.f.n_test"):
        validate_config(study(lambda c: c["targets"]["f"].update(n_test=-5)))


def test_method_overrides_apply_to_their_experiment_only():
    config = validate_config({
        **FUNCTION, "methods": {"rfg": {"estimator": "forward", "directions": 2}},
        "models": {"mlp": {"kind": "spiking_mlp"}, "wide": {"kind": "spiking_mlp", "width": 128}},
        "experiments": [{"target": "f", "model": "wide", "methods": ["rfg"],
                         "method_overrides": {"rfg": {"directions": 16}}},
                        {"target": "f", "model": "mlp", "methods": ["rfg"]}]})
    tuned, plain = (method_settings(config, e, "rfg") for e in config["experiments"])
    assert tuned["directions"] == 16 and plain["directions"] == 2
    assert tuned["scope"] == plain["scope"] == "layer"  # defaults survive the merge
    assert config["methods"]["rfg"]["directions"] == 2


def test_a_method_setting_that_sizes_the_diagnostics_is_named_by_its_method():
    """first_layer: jacobian adds a row per first-layer neuron to the diagnosed rows; the term is
    keyed by the method's own setting, which the diagnostics' key map once lacked (KeyError)."""
    jacobian = {"estimator": "eligibility", "directions": 1, "first_layer": "jacobian"}
    config = study(setting("methods.wp", jacobian))
    validate_config(copy.deepcopy(config))
    config["models"]["mlp"]["width"] = 10**5
    with pytest.raises(ConfigError, match="config key 'models.mlp.width'"):
        validate_config(config)
