"""Where each name the config may use is implemented: target families, model kinds and gradient
estimators, as import paths rather than imports.

No torch, and no stage module imports it: a job's code fingerprint covers the modules its stage
imports, so a stage that read this table would rerun every job whenever a name is registered.
Callers (the workflow's scripts, config validation, a user's own code) resolve a name here and
hand the stage its implementation; the workflow adds that module to the job's fingerprint.
"""

from importlib import import_module
from types import ModuleType

from fwdsnn.fingerprint import code_fingerprint

FAMILIES = {
    "function": "fwdsnn.pdes.function",
    "antiderivative": "fwdsnn.pdes.antiderivative",
    "poisson1d": "fwdsnn.pdes.poisson1d",
    "heat1d": "fwdsnn.pdes.heat1d",
    "diffusion_reaction1d": "fwdsnn.pdes.diffusion_reaction1d",
    "advection1d": "fwdsnn.pdes.advection1d",
    "burgers1d": "fwdsnn.pdes.burgers1d",
}
ESTIMATORS = {
    "backprop": "fwdsnn.grad.bptt:AdjointBackprop",
    "backprop-norse": "fwdsnn.grad.backprop:Backprop",
    "forward": "fwdsnn.grad.forward:ForwardGradient",
    "perturbation": "fwdsnn.grad.perturbation:WeightPerturbation",
    "activity": "fwdsnn.grad.activity:ActivityPerturbation",
    "eligibility": "fwdsnn.grad.eligibility:EligibilityTraces",
    "node": "fwdsnn.grad.node:NodePerturbation",
}

# What fwdsnn.limits needs to estimate an estimator's memory from the config alone: whether it
# back-propagates (autograd keeps every layer's state at every step), the value rows it carries
# per direction (`directions` times this, times the LIF layers where `per_layer`), whether it
# keeps per-example sums of every LIF layer's size, and how many per-example tensors of its last
# hidden layer's size (width x its inputs, on every sub-network example) it carries as traces.
# Every ESTIMATORS name has an entry.
ESTIMATOR_MEMORY = {
    "backprop": {"autograd": True, "rows": 0, "per_layer": False, "example_sums": False, "traces": 0},
    "backprop-norse": {"autograd": True, "rows": 0, "per_layer": False, "example_sums": False, "traces": 0},
    "forward": {"autograd": False, "rows": 1, "per_layer": False, "example_sums": False, "traces": 0},
    "perturbation": {"autograd": False, "rows": 2, "per_layer": False, "example_sums": False, "traces": 0},
    "activity": {"autograd": False, "rows": 1, "per_layer": True, "example_sums": True, "traces": 0},
    "eligibility": {"autograd": False, "rows": 1, "per_layer": True, "example_sums": True, "traces": 2},
    "node": {"autograd": False, "rows": 2, "per_layer": True, "example_sums": True, "traces": 0},
}

# What an estimator's estimate follows, for the gradient diagnostics (fwdsnn.diagnostics):
# "exact" (BPTT: nothing to diagnose), "surrogate" (a random estimate of the surrogate
# gradient) or "derivative_free" (loss values through the true spike only). Every ESTIMATORS
# name has an entry.
ESTIMATOR_GRADIENT = {
    "backprop": "exact",
    "backprop-norse": "exact",
    "forward": "surrogate",
    "perturbation": "derivative_free",
    "activity": "surrogate",
    "eligibility": "surrogate",
    "node": "derivative_free",
}

# Model kinds the config may name: the class, the problem layout its inputs follow
# (fwdsnn.data: pointwise inputs, or a DeepONet's / SepONet's sensors and coordinates), and the
# model setting that sizes its sub-networks' outputs (None: the target's own outputs).
MODEL_KINDS = {
    "spiking_mlp": {"class": "fwdsnn.snn.models:SpikingMLP", "layout": "pointwise", "outputs": None},
    "spiking_deeponet": {"class": "fwdsnn.snn.models:SpikingDeepONet", "layout": "deeponet",
                         "outputs": "latent"},
    "spiking_seponet": {"class": "fwdsnn.snn.models:SpikingSepONet", "layout": "seponet",
                        "outputs": "rank"},
}


def _entry(table: dict[str, str], what: str, name: str) -> str:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; known: {', '.join(sorted(table))}") from None


def family_module(family: str) -> ModuleType:
    """The solver module of a target family (see fwdsnn.pdes)."""
    return import_module(_entry(FAMILIES, "target family", family))


def model_kind(kind: str) -> dict:
    """What the config's checks need of model kind ``kind`` (see MODEL_KINDS), without torch."""
    return _entry(MODEL_KINDS, "model kind", kind)


def estimator_memory(name: str) -> dict:
    """What the memory estimate needs of estimator ``name`` (see ESTIMATOR_MEMORY), without torch."""
    return _entry(ESTIMATOR_MEMORY, "estimator", name)


def estimator_gradient(name: str) -> str:
    """What estimator ``name`` estimates (see ESTIMATOR_GRADIENT), without torch."""
    return _entry(ESTIMATOR_GRADIENT, "estimator", name)


def estimator_module(name: str) -> str:
    """The module implementing estimator ``name``, without importing it (and torch)."""
    return _entry(ESTIMATORS, "estimator", name).split(":")[0]


def estimator_class(name: str) -> type:
    """The class of estimator ``name``: built as ``cls(method_config, generator)``."""
    module, attr = _entry(ESTIMATORS, "estimator", name).split(":")
    return getattr(import_module(module), attr)


def training_code_fingerprint(name: str) -> str:
    """Fingerprint of the code a training run with estimator ``name`` executes (the training
    stage records the same for its checkpoints, from the class it was given)."""
    return code_fingerprint("fwdsnn.train", estimator_module(name))
