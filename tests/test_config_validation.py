"""Bad configuration fails `snakemake -n` before any job, naming the key it breaks."""

import pytest
import yaml

from fwdsnn.config import ConfigError, load_config_file, method_settings, validate_config
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
]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("badconfig"))


@pytest.mark.parametrize("case, config, expected", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_fails_the_dry_run_naming_the_key(scratch, case, config, expected):
    text = config if isinstance(config, str) else yaml.safe_dump(config)
    (scratch / "config.yaml").write_text(text)
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
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    required_anywhere = {"targets", "family", "expression", "domain", "target", "model",
                         "methods", "length_scale", "kind", "estimator"}
    missing = []

    def visit(node, path):
        for name, sub in node.get("properties", {}).items():
            if "description" not in sub and "$ref" not in sub:
                missing.append(f"{path}{name}: description")
            if "default" not in sub and name not in required_anywhere:
                missing.append(f"{path}{name}: default")
            visit(sub, f"{path}{name}.")
        for name, sub in node.get("$defs", {}).items():
            visit(sub, f"$defs.{name}.")

    visit(schema, "")
    assert missing == []


def test_validation_does_not_modify_its_input():
    config = with_target()
    validate_config(config)
    assert config == with_target()
    with pytest.raises(ConfigError, match="targets.p.n_test"):
        validate_config(with_target(n_test=-5))


def test_method_overrides_apply_to_their_experiment_only():
    config = validate_config({
        **FUNCTION, "methods": {"rfg": {"estimator": "forward", "directions": 2}},
        "experiments": [{"target": "f", "model": "mlp", "methods": ["rfg"],
                         "method_overrides": {"rfg": {"directions": 16}}},
                        {"target": "f", "model": "mlp", "methods": ["rfg"]}]})
    tuned, plain = (method_settings(config, e, "rfg") for e in config["experiments"])
    assert tuned["directions"] == 16 and plain["directions"] == 2
    assert tuned["scope"] == plain["scope"] == "layer"  # defaults survive the merge
    assert config["methods"]["rfg"]["directions"] == 2
