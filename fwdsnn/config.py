"""The study configuration: strict loading, schema validation with defaults, cross-checks.

Snakemake merges config files with a YAML loader that silently keeps the last of duplicate
keys and knows nothing of our rules, so the workflow calls :func:`check_config_files` and
:func:`validate_config` before any job is planned. Every error names the config key (as a
dotted path) and the rule it breaks, because the config is the user interface.
"""

import copy
import functools
import math
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from fwdsnn import limits
from fwdsnn.artifacts import NORSE_REFERENCE, RUN_DIR
from fwdsnn.pdes import ParameterError
from fwdsnn.registry import FAMILIES, MODEL_KINDS, estimator_gradient, family_module, model_kind

SCHEMA = ("schemas", "config.schema.yaml")  # package data, so an installed fwdsnn validates too


class ConfigError(ValueError):
    """An invalid study configuration; the message names the offending key."""


class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys instead of keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise ConfigError(f"{node.start_mark.name} line {key_node.start_mark.line + 1}: "
                              f"duplicate key {key!r} (first at line {seen[key].start_mark.line + 1})")
        seen[key] = key_node
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_config_file(path: str | Path) -> dict:
    """Read one YAML config file, refusing duplicate keys."""
    path = Path(path)
    try:
        with open(path) as handle:
            data = yaml.load(handle, Loader=_StrictLoader)  # noqa: S506 (SafeLoader subclass)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from err
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of config keys")
    return data


def check_config_files(paths: Iterable[str | Path]) -> None:
    """Fail on duplicate keys in any of the config files Snakemake merged."""
    for path in paths:
        load_config_file(path)


def load_schema() -> dict:
    """The study's JSON Schema, read from the package (not from workflow/). A copy of one parse
    per process: planning a study resolves every run's settings against it."""
    return copy.deepcopy(_parsed_schema())


@functools.cache
def _parsed_schema() -> dict:
    return yaml.safe_load(resources.files("fwdsnn").joinpath(*SCHEMA).read_text())


def _is_strict_integer(checker, instance) -> bool:
    """JSON Schema counts 16.0 as an integer; the study would then fail late (a TypeError, an
    ``s1.0/`` path), so an integer key takes only a written integer."""
    return isinstance(instance, int) and not isinstance(instance, bool)


def _with_defaults(validator_class):
    """A validator class that fills each property's schema default before validating it, and
    whose integers are strict."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for name, subschema in props.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from validate_properties(validator, props, instance, schema)

    type_checker = validator_class.TYPE_CHECKER.redefine("integer", _is_strict_integer)
    return jsonschema.validators.extend(validator_class, {"properties": properties},
                                        type_checker=type_checker)


_Validator = _with_defaults(jsonschema.Draft202012Validator)


def _key(prefix: str, path: Iterable[Any]) -> str:
    return (prefix + ".".join(str(part) for part in path)).rstrip(".") or "(top level)"


def _non_finite_error(node: Any, path: tuple = ()) -> ConfigError | None:
    """A NaN or infinity anywhere in the config (YAML's .nan, .inf): every comparison with
    NaN is false, so the schema's bounds would let it through."""
    if isinstance(node, float) and not math.isfinite(node):
        return ConfigError(f"config key '{_key('', path)}': {node} is not a finite number")
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for name, child in children:
        error = _non_finite_error(child, (*path, name))
        if error is not None:
            return error
    return None


def _schema_error(config: dict, schema: dict, prefix=lambda path: "") -> ConfigError | None:
    """The most specific schema violation, as a ConfigError naming key and rule."""
    errors = list(_Validator(schema).iter_errors(config))
    if not errors:
        return None
    # a property that fails its own rule is also "unevaluated": report the real failure first
    errors = [e for e in errors if e.validator != "unevaluatedProperties"] or errors
    error = jsonschema.exceptions.best_match(errors)
    while error.context:  # descend into if/then and $ref branches to the real cause
        error = jsonschema.exceptions.best_match(error.context)
    path = list(error.absolute_path)
    return ConfigError(f"config key '{_key(prefix(path), path)}': {error.message} "
                       f"(schema rule: {error.validator})")


def _check_target(name: str, target: Mapping[str, Any]) -> None:
    """The family's own checks of parameter combinations the schema cannot express."""
    check = getattr(family_module(target["family"]), "check", None)
    if check is None:
        return
    try:
        check(target)
    except ParameterError as err:
        raise ConfigError(f"config key 'targets.{name}.{err.key}': {err.reason}") from None


def validate_config(config: Mapping[str, Any], schema: dict | None = None) -> dict:
    """A validated deep copy of config with every schema default filled in."""
    schema = load_schema() if schema is None else schema
    config = copy.deepcopy(dict(config))
    error = _non_finite_error(config) or _schema_error(config, schema)
    if error is not None:
        raise error
    for name, target in config["targets"].items():
        _check_target(name, target)
    if not config["experiments"]:
        raise ConfigError("config key 'experiments': the study has no experiments (each entry "
                          "trains a target with a model and methods)")
    trained: dict[tuple, int] = {}
    for index, experiment in enumerate(config["experiments"]):
        _check_experiment(config, index, experiment, schema)
        for method in experiment["methods"]:
            run = (experiment["target"], experiment["model"], method)
            if run in trained:
                raise ConfigError(f"config key 'experiments.{index}.methods': {'/'.join(run)} is "
                                  f"already trained by experiments.{trained[run]} (each target/"
                                  "model/method runs once: merge the two entries)")
            trained[run] = index
    _check_finetune(config, schema)
    _check_memory(config, schema)
    return config


def _check_finetune(config: dict, schema: dict) -> None:
    """hardware.finetune names a method in the loop, bits of the bit sweep and trained runs."""
    block, key = config["hardware"]["finetune"], "hardware.finetune"
    if not block["runs"]:
        return
    name = block["method"]
    method = config["methods"].get(name)
    if method is None:
        raise ConfigError(f"config key '{key}.method': {name!r} is not defined under methods "
                          f"(defined: {', '.join(config['methods'])})")
    if method["estimator"] not in ("perturbation", "node") or "hardware" not in method:
        raise ConfigError(f"config key '{key}.method': {name!r} must be weight or node perturbation with the "
                          "hardware key (every loss the emulator's), not "
                          f"{method['estimator']}{'' if 'hardware' in method else ' without it'}")
    missing = [b for b in block["bits"] if b not in config["hardware"]["bits"]]
    if missing:
        raise ConfigError(f"config key '{key}.bits': {missing} not in hardware.bits "
                          f"{config['hardware']['bits']}: the bit sweep compares each tuned width "
                          "with its post-training value")
    for index, entry in enumerate(block["runs"]):
        where = f"{key}.runs.{index}"
        _check_names_defined(config, where, entry)
        for source in entry["methods"]:
            if not config["methods"][source]["spiking"]:
                raise ConfigError(f"config key '{where}.methods': {source!r} is not spiking; "
                                  "an ANN has no fixed-point network to tune")
    for target, model, method in _finetune_runs_by_training(config)[0]:
        finetune_settings(config, target, model, method, block["bits"][0], schema)


def _finetune_runs_by_training(config: dict) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(target, model, method) of hardware.finetune.runs that an experiment trains, and the
    'target/model/method' of those none trains: an overlay that replaces the experiments leaves
    the default runs untrained, and they are skipped."""
    trained = {(e["target"], e["model"], m) for e in config["experiments"] for m in e["methods"]}
    listed = [(entry["target"], entry["model"], method)
              for entry in config["hardware"]["finetune"]["runs"] for method in entry["methods"]]
    return ([run for run in listed if run in trained],
            ["/".join(run) for run in listed if run not in trained])


def untrained_finetune_runs(config: dict) -> list[str]:
    """'target/model/method' of hardware.finetune.runs that no experiment trains (skipped)."""
    return _finetune_runs_by_training(config)[1]


def finetune_settings(config: dict, target: str, model: str, method: str, bits: int,
                      schema: dict | None = None) -> dict:
    """One fine-tune (fwdsnn.finetune): the run's model settings, the in-loop method at ``bits``
    and the run's own train settings overridden by hardware.finetune.train."""
    block = config["hardware"]["finetune"]
    experiment = next(e for e in config["experiments"]
                      if (e["target"], e["model"]) == (target, model) and method in e["methods"])
    merged = {**train_settings(config, experiment, method, schema), **block["train"]}
    schema = load_schema() if schema is None else schema
    error = _schema_error(merged, {**schema["$defs"]["train"], "$defs": schema["$defs"]},
                          lambda path: "hardware.finetune.train." if path and path[0] in block["train"] else "train.")
    if error is not None:
        raise error
    in_loop = config["methods"][block["method"]]
    return {"model": config["models"][model], "train": merged,
            "method": {**in_loop, "hardware": {**in_loop["hardware"], "bits": bits}}}


def finetuned_runs(config: dict) -> list[str]:
    """The run paths (fwdsnn.artifacts.RUN_DIR) that hardware.finetune tunes, every seed; runs
    no experiment trains are left out (untrained_finetune_runs names them)."""
    return [RUN_DIR.format(target=target, model=model, method=method, seed=seed)
            for target, model, method in _finetune_runs_by_training(config)[0]
            for seed in config["seeds"]]


def _default_of(schema: dict, key: str) -> Any:
    """The schema default of a dotted size key, for naming the key that grew an estimate most."""
    leaf = key.rsplit(".", 1)[-1]
    if key.startswith("targets."):
        sections = [schema["$defs"]["target"], *(schema["$defs"][f] for f in FAMILIES)]
    elif key.startswith("models."):
        sections = [schema["$defs"]["model"]]
    elif key.startswith(("diagnostics.", "bench.")):
        sections = [schema["properties"][key.split(".", 1)[0]]]
    elif ".method_overrides." in key or key.startswith("methods."):
        sections = [schema["$defs"]["method"]]
    else:
        sections = [schema["$defs"]["train"]]
    for section in sections:
        if leaf in section.get("properties", {}):
            return section["properties"][leaf].get("default")
    return None


def _run_key(index: int, experiment: dict, method: str):
    """The dotted config key that set a setting of one run, for the memory check's message."""
    where = f"experiments.{index}"
    overrides = _per_method(experiment["method_overrides"], experiment,
                            f"{where}.method_overrides").get(method, {})
    prefixes = {"target": f"targets.{experiment['target']}.", "model": f"models.{experiment['model']}."}

    def key(section: str, name: str) -> str:
        if section == "train":
            return _train_origin(experiment, method, where)([name]) + name
        if section == "method":
            return (f"{where}.method_overrides.{method}." if name in overrides
                    else f"methods.{method}.") + name
        return prefixes[section] + name

    return key


def _check_memory(config: dict, schema: dict) -> None:
    """Each target's data, each training run, the diagnostics and the benchmark must fit the
    memory limit (rough estimates, fwdsnn.limits)."""
    def default_of(key):
        return _default_of(schema, key)

    targets, models = config["targets"], config["models"]
    try:
        limit = limits.memory_limit(config["limits"])
        for name, target in targets.items():
            limits.check(limits.target_terms(name, target), limit,
                         f"the reference data of target {name!r}", default_of)
        for index, experiment in enumerate(config["experiments"]):
            where = f"experiments.{index}"
            target, model = targets[experiment["target"]], models[experiment["model"]]
            for method in experiment["methods"]:
                terms = limits.run_terms(
                    target, model, method_settings(config, experiment, method, schema, where),
                    train_settings(config, experiment, method, schema, where),
                    _run_key(index, experiment, method))
                limits.check(terms + limits.stored_terms(experiment["target"], target), limit,
                             f"training {experiment['model']}/{method} on "
                             f"{experiment['target']!r} ({where})", default_of)
        for run, methods in diagnosed_methods(config, schema).items():
            target_name, model_name = run.split("/")
            limits.check(limits.diagnostics_terms(target_name, targets[target_name], model_name,
                                                  models[model_name], config["diagnostics"], methods),
                         limit, f"the gradient diagnostics of {run}", default_of)
        limits.check(limits.bench_terms(config["bench"]), limit, "the cost benchmark", default_of)
    except limits.MemoryLimitError as err:
        raise ConfigError(f"config key '{err.key}': {err.reason}") from None


def _check_names_defined(config: dict, where: str, entry: dict) -> None:
    """The target, model and methods an experiment or a fine-tuned run names are in the config."""
    for section, name in [("targets", entry["target"]), ("models", entry["model"]),
                          *[("methods", m) for m in entry["methods"]]]:
        if name not in config[section]:
            key = {"targets": "target", "models": "model", "methods": "methods"}[section]
            raise ConfigError(f"config key '{where}.{key}': {name!r} is not defined under {section} "
                              f"(defined: {', '.join(config[section]) or 'none'})")


def _check_experiment(config: dict, index: int, experiment: dict, schema: dict | None) -> None:
    where = f"experiments.{index}"
    _check_names_defined(config, where, experiment)
    kind = config["models"][experiment["model"]]["kind"]
    family = config["targets"][experiment["target"]]["family"]
    pointwise = [name for name, entry in MODEL_KINDS.items() if entry["layout"] == "pointwise"]
    if (family == "function") != (model_kind(kind)["layout"] == "pointwise"):
        raise ConfigError(f"config key '{where}.model': a {kind} cannot learn target "
                          f"{experiment['target']!r} of family {family} ({', '.join(pointwise)} "
                          "learn function targets; the other model kinds learn operator targets)")
    for method in experiment["methods"]:
        train_settings(config, experiment, method, schema, where=where)
        method_settings(config, experiment, method, schema, where=where)


def _per_method(block: Any, experiment: dict, key: str) -> dict:
    """An experiment's per-method block ({method name: settings}), checked against its methods."""
    if not isinstance(block, dict) or not all(isinstance(v, dict) for v in block.values()):
        raise ConfigError(f"config key '{key}': must map method names to settings")
    unknown = set(block) - set(experiment["methods"])
    if unknown:
        raise ConfigError(f"config key '{key}': {sorted(unknown)} not among this "
                          f"experiment's methods {experiment['methods']}")
    return block


def _train_overrides(experiment: dict, method: str, where: str) -> tuple[dict, dict]:
    """The experiment's train overrides and its per-method ones for method."""
    overrides = dict(experiment["train"])
    mine = _per_method(overrides.pop("methods", {}), experiment, f"{where}.train.methods").get(method, {})
    return overrides, mine


def _train_origin(experiment: dict, method: str, where: str):
    """Which of the three layers set a train key: the dotted prefix of its config key."""
    overrides, mine = _train_overrides(experiment, method, where)

    def origin(path: list) -> str:
        if path and path[0] in mine:
            return f"{where}.train.methods.{method}."
        return f"{where}.train." if not path or path[0] in overrides else "train."

    return origin


def train_settings(config: dict, experiment: dict, method: str, schema: dict | None = None,
                   where: str = "experiments") -> dict:
    """Top-level train settings, overridden by the experiment's, overridden by its method's."""
    overrides, mine = _train_overrides(experiment, method, where)
    merged = {**config["train"], **overrides, **mine}
    schema = load_schema() if schema is None else schema
    error = _schema_error(merged, {**schema["$defs"]["train"], "$defs": schema["$defs"]},
                          _train_origin(experiment, method, where))
    if error is not None:
        raise error
    return merged


def method_settings(config: dict, experiment: dict, method: str, schema: dict | None = None,
                    where: str = "experiments") -> dict:
    """The method's settings with the experiment's ``method_overrides`` for it, key by key: a
    budget such as K may differ between a small and a large network while the method keeps
    its name (and its row in every table)."""
    key = f"{where}.method_overrides"
    mine = _per_method(experiment["method_overrides"], experiment, key).get(method, {})
    merged = {**config["methods"][method], **mine}

    def origin(path: list) -> str:
        return f"{key}.{method}." if path and path[0] in mine else f"methods.{method}."

    schema = load_schema() if schema is None else schema
    error = _schema_error(merged, {**schema["$defs"]["method"], "$defs": schema["$defs"]}, origin)
    if error is not None:
        raise error
    return merged


def target_params(family: str, **overrides: Any) -> dict:
    """One target's complete, validated parameters: schema defaults plus overrides."""
    schema = load_schema()
    targets = {"target": {"family": family, **overrides}}
    error = _non_finite_error(targets, ("targets",)) or _schema_error(
        targets, {**schema["properties"]["targets"], "$defs": schema["$defs"]},
        lambda path: "targets.")
    if error is not None:
        raise error
    _check_target("target", targets["target"])
    return targets["target"]


def step_time_runs(config: dict) -> dict[str, dict]:
    """What the step-time benchmark (fwdsnn.step_time) times: model name -> the first
    experiment that trains it, its target, model settings and {method: (method settings,
    train settings)}, with `bp-norse` (bp's BPTT through Norse's modules) beside `bp`."""
    runs = {}
    for experiment in config["experiments"]:
        name = experiment["model"]
        if name in runs:
            continue
        methods = {method: (method_settings(config, experiment, method),
                            train_settings(config, experiment, method))
                   for method in experiment["methods"]}
        if "bp" in methods:
            bp, train = methods["bp"]
            methods[NORSE_REFERENCE] = ({**bp, "estimator": "backprop-norse"}, train)
        runs[name] = {"target": experiment["target"], "model": config["models"][name],
                      "methods": methods}
    return runs


def diagnosed_methods(config: dict, schema: dict | None = None) -> dict[str, dict[str, dict]]:
    """What the gradient diagnostics (fwdsnn.diagnostics) compare with BPTT: 'target/model' ->
    {method: {"method": its settings with the experiment's overrides, "gradient": what its
    estimator estimates (fwdsnn.registry.ESTIMATOR_GRADIENT), "directions": the K swept}} for
    every spiking method that does not compute the exact gradient, over the experiments of
    that target and model. ANN methods are left out: the diagnostics measure estimates of a
    spiking network's gradient. A target and model with no such method is not diagnosed.

    A derivative-free method sweeps only the ``diagnostics.directions`` up to its training K
    (at least the smallest): each of its directions costs full passes of the network, and a
    larger K says nothing about how it trains."""
    ks = config["diagnostics"]["directions"]
    diagnosed: dict[str, dict[str, dict]] = {}
    for index, experiment in enumerate(config["experiments"]):
        for method in experiment["methods"]:
            settings = method_settings(config, experiment, method, schema, f"experiments.{index}")
            gradient = estimator_gradient(settings["estimator"])
            # in the loop (method.hardware) the estimate is of the emulator's loss, which has
            # no BPTT gradient to compare with
            if not settings["spiking"] or gradient == "exact" or "hardware" in settings:
                continue
            swept = (([k for k in ks if k <= settings["directions"]] or [min(ks)])
                     if gradient == "derivative_free" else list(ks))
            run = f"{experiment['target']}/{experiment['model']}"
            diagnosed.setdefault(run, {})[method] = {"method": settings, "gradient": gradient,
                                                     "directions": swept}
    return dict(sorted(diagnosed.items()))
