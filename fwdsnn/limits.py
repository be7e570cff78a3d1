"""Rough memory estimates of a target's data and of a training run, checked before any job.

A size typed by mistake (``n_train: 1000000000``, ``width: 1000000``) should fail the dry run
naming its key, not a job after it has allocated gigabytes. The estimates are deliberately
rough upper bounds built from the settings alone (no torch, no solver): a sum of terms, each
a product of config values times bytes. The refusal names the key that blew up the largest
term: the factor furthest above its schema default.

Reference data: every sample's stored grid (times the solver's ``refine``), its sensors, its
fine GRF grid and spectral grid, in float64 with a few working copies, plus the fine grid's
covariance matrix and Cholesky factor.

A training run: the parameters with their gradient, Adam moments and the estimator's rows
(K tangents for forward, 2K weight sets for perturbation, K per LIF layer for activity and 2K
for node, which also keep per-example sums of every LIF layer's size on every example, and for
eligibility the traces of each sub-network's last hidden layer on every example); the LIF
states of the batch (every layer and time step for backprop, two layers' stacked outputs for
the forward-only estimators), and a DeepONet's or SepONet's trunks on the grid; the
network's output on the batch; the reference data it loads; and the history of every step.
The gradient diagnostics and the cost benchmark are estimated as runs at their largest K
(and T).
"""

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fwdsnn.registry import estimator_memory, model_kind

FLOAT64, FLOAT32 = 8, 4
WORKING_COPIES = 4          # solver output, float32 copy, training's float64 copy, normalised
HISTORY_BYTES_PER_STEP = 256  # five Python floats per step in lists, then their arrays
LIF_STATE = 4               # backprop: v, i, spikes and the surrogate's saved input per neuron and step
GRID_KEYS = ("n_points", "nx", "nt")
PER_SAMPLE_KEYS = ("n_sensors", "fine_points", "n_grid")


class MemoryLimitError(ValueError):
    """A setting whose memory estimate exceeds the limit; ``key`` is its dotted config key."""

    def __init__(self, key: str, reason: str):
        super().__init__(reason)
        self.key, self.reason = key, reason


@dataclass(frozen=True)
class Term:
    """bytes_each times the product of the config values in factors ((dotted key, value) pairs)."""

    what: str
    bytes_each: int
    factors: tuple[tuple[str, int], ...]

    @property
    def bytes(self) -> int:
        return self.bytes_each * math.prod(value for _, value in self.factors)


def machine_memory_bytes() -> int | None:
    """This machine's physical memory (MemTotal on Linux), or None where the system hides it."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def memory_limit(limits: Mapping[str, Any]) -> tuple[int, str]:
    """The byte limit of one job and how it was set (for the error message)."""
    if limits["memory_mib"]:
        return limits["memory_mib"] * 2**20, f"limits.memory_mib = {limits['memory_mib']}"
    total = machine_memory_bytes()
    if total is None:
        raise MemoryLimitError("limits.memory_mib", "this system does not report its memory: "
                                                    "set the limit in MiB")
    fraction = limits["memory_fraction"]
    return int(fraction * total), (f"limits.memory_fraction = {fraction} of this machine's "
                                   f"{_human(total)}; set limits.memory_mib to choose")


def _human(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n_bytes < 1024 or unit == "PiB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1024
    raise AssertionError("unreachable")


def _samples(prefix: str, target: Mapping[str, Any]) -> tuple[str, int]:
    """n_train + n_test, named by the larger of the two."""
    key = "n_train" if target["n_train"] >= target["n_test"] else "n_test"
    return prefix + key, target["n_train"] + target["n_test"]


def _grid(prefix: str, target: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    """The stored points of one sample: its grid keys, or the coordinates of one function point."""
    if target["family"] == "function":
        return ((prefix + "domain", len(target["domain"]) + 1),)
    return tuple((prefix + key, target[key]) for key in GRID_KEYS if key in target)


def target_terms(name: str, target: Mapping[str, Any]) -> list[Term]:
    """The memory terms of generating and storing one target's reference data."""
    prefix = f"targets.{name}."
    samples = _samples(prefix, target)
    grid = _grid(prefix, target)
    refine = ((prefix + "refine", target["refine"]),) if "refine" in target else ()
    terms = [Term("solutions on the solver grid", FLOAT64 * WORKING_COPIES, (samples, *grid, *refine))]
    terms += [Term(f"per-sample {key}", FLOAT64 * WORKING_COPIES, (samples, (prefix + key, target[key])))
              for key in PER_SAMPLE_KEYS if key in target]
    if "fine_points" in target:
        fine = (prefix + "fine_points", target["fine_points"])
        terms.append(Term("GRF covariance and Cholesky factor", FLOAT64 * 3, (fine, fine)))
    return terms


def stored_terms(name: str, target: Mapping[str, Any]) -> list[Term]:
    """The reference file's arrays as a training run loads them."""
    prefix = f"targets.{name}."
    samples = _samples(prefix, target)
    terms = [Term("reference solutions", FLOAT64 * WORKING_COPIES, (samples, *_grid(prefix, target)))]
    if "n_sensors" in target:
        terms.append(Term("reference inputs", FLOAT64 * WORKING_COPIES,
                          (samples, (prefix + "n_sensors", target["n_sensors"]))))
    return terms


def trunk_points(layout: str, axes: list[int]) -> int:
    """The points a model's trunks run on: none (pointwise), the grid (DeepONet), each axis."""
    if layout == "pointwise":
        return 0
    return math.prod(axes) if layout == "deeponet" else sum(axes)


def run_terms(target: Mapping[str, Any], model: Mapping[str, Any], method: Mapping[str, Any],
              train: Mapping[str, Any], key: Callable[[str, str], str]) -> list[Term]:
    """The memory terms of training a model on a target (without the data it loads);
    ``key(section, name)`` is the dotted config key that set a ``model``, ``method`` or
    ``train`` setting (an experiment's override, a method's, the top level)."""
    width, depth, steps = ((key("model", n), model[n]) for n in ("width", "depth", "steps"))
    batch = (key("train", "batch"), train["batch"])
    kind = model_kind(model["kind"])
    layout = kind["layout"]
    axes = [value for _, value in _grid("", target)]
    # sub-networks per layout: one chain; branch + trunk; branch + one trunk per axis
    subnets = {"pointwise": 1, "deeponet": 2}.get(layout, 1 + len(axes))
    fan_out = kind["outputs"]
    outputs = (key("model", fan_out), model[fan_out]) if fan_out else ("outputs", 1)
    inputs = ((key("target", "n_sensors"), target["n_sensors"]) if "n_sensors" in target
              else ("inputs", len(axes)))
    memory = estimator_memory(method["estimator"])
    rows = ("estimator rows", 1) if memory["autograd"] else (
        key("method", "directions"),
        method["directions"] * memory["rows"] * (depth[1] if memory["per_layer"] else 1))
    if method.get("first_layer") == "jacobian":  # eligibility: a row per first-layer neuron
        rows = (key("method", "first_layer"), rows[1] + width[1])
    per_param = FLOAT32 * (4 + rows[1])  # value, gradient, two Adam moments, the estimator's rows
    terms = [
        Term("hidden weights", per_param * subnets, (depth, width, width)),
        Term("input weights", per_param * subnets, (width, inputs)),
        Term("output weights", per_param * subnets, (width, outputs)),
    ]
    # backprop keeps every layer's state at every step; the forward-only estimators, without
    # autograd, keep the stacked outputs of two layers at a time
    if memory["autograd"]:
        kept, state = (steps, depth), FLOAT32 * LIF_STATE
    else:
        kept, state = (steps, ("live layers", 2)), FLOAT32
    terms.append(Term("LIF states of a batch", state, (*kept, width, batch, rows)))
    if layout != "pointwise":
        # a DeepONet's trunk runs on every grid point, a SepONet's trunks on each axis
        terms += [Term("trunk states on the grid", state,
                       (*kept, width, ("trunk points", trunk_points(layout, axes)), rows)),
                  Term("output on the batch", FLOAT32 * 4,
                       (batch, ("grid points", math.prod(axes)), rows))]
    if memory["example_sums"]:
        # sums of u x^T per LIF layer, row and sub-network example: the batch, every trunk point
        terms.append(Term("per-example noise sums", FLOAT32,
                          (depth, width, width, (key("method", "directions"), method["directions"]),
                           ("examples", batch[1] + trunk_points(layout, axes)))))
    if memory["traces"]:
        # eligibility traces of each sub-network's last hidden layer, per example: width x its
        # inputs (the encoding's at depth 1), on the batch and every trunk point
        trace_inputs = width if depth[1] > 1 else inputs
        examples = ("examples", batch[1] + trunk_points(layout, axes))
        terms.append(Term("eligibility traces", FLOAT32 * memory["traces"],
                          (width, trace_inputs, examples)))
    terms.append(Term("history of every step", HISTORY_BYTES_PER_STEP,
                      ((key("train", "steps"), train["steps"]),)))
    return terms


def diagnostics_terms(target_name: str, target: Mapping[str, Any], model_name: str,
                      model: Mapping[str, Any], diagnostics: Mapping[str, Any],
                      methods: Mapping[str, Mapping[str, Any]]) -> list[Term]:
    """The gradient diagnostics of one target and model: the largest of its methods' rows at
    their largest K (``methods``: fwdsnn.config.diagnosed_methods of the job) and the BPTT
    gradient they are compared with, on the fixed batch, plus the data."""
    keys = {"batch": "diagnostics.batch", "directions": "diagnostics.directions",
            "steps": "diagnostics.draws"}

    def keyed(method):
        """The config key of a setting, a method's own (first_layer, say) under ``method``."""
        def key(section, name):
            prefix = {"model": f"models.{model_name}.", "target": f"targets.{target_name}."}.get(section)
            if section == "method" and name not in keys:
                prefix = f"methods.{method}."
            return prefix + name if prefix else keys[name]
        return key

    def total(terms):
        return sum(term.bytes for term in terms)

    train = {"batch": diagnostics["batch"], "steps": diagnostics["draws"]}
    largest = max((run_terms(target, model, {**m["method"], "directions": max(m["directions"])},
                             train, keyed(name)) for name, m in methods.items()), key=total)
    return [*largest, *run_terms(target, model, {"estimator": "backprop"}, train, keyed("bp")),
            *stored_terms(target_name, target)]


def bench_terms(bench: Mapping[str, Any]) -> list[Term]:
    """The cost benchmark's largest point: a spiking MLP on one input at the largest T and K,
    with perturbation's 2K weight sets and with backprop's states over every step."""
    keys = {("model", "width"): "bench.width", ("model", "depth"): "bench.depth",
            ("model", "steps"): "bench.time_steps", ("method", "directions"): "bench.directions",
            ("train", "batch"): "bench.batch", ("train", "steps"): "bench.repeats"}
    model = {"kind": "spiking_mlp", "width": bench["width"], "depth": bench["depth"],
             "steps": max(bench["time_steps"])}
    train = {"batch": bench["batch"], "steps": bench["repeats"]}
    point = {"family": "function", "domain": [[-1, 1]]}

    def key(section, name):
        return keys[section, name]

    return [*run_terms(point, model, {"estimator": "perturbation",
                                      "directions": max(bench["directions"])}, train, key),
            *run_terms(point, model, {"estimator": "backprop"}, train, key)]


def _label(key: str) -> str:
    leaf = key.rsplit(".", 1)[-1]
    return "n_train + n_test" if leaf in ("n_train", "n_test") else leaf


def check(terms: Iterable[Term], limit: tuple[int, str], what: str,
          default_of: Callable[[str], Any]) -> None:
    """Raise MemoryLimitError naming the key that blew up the largest term over the limit;
    ``default_of(key)`` is a dotted key's schema default (None where it has none)."""
    terms = list(terms)
    total = sum(term.bytes for term in terms)
    if total <= limit[0]:
        return
    worst = max(terms, key=lambda term: term.bytes)
    named = [(key, value) for key, value in worst.factors if "." in key]

    def blow_up(factor):  # how far above its schema default the value is
        key, value = factor
        default = default_of(key)
        return value / (default if isinstance(default, int) and default > 0 else 1), value

    key = max(named, key=blow_up)[0]
    detail = " x ".join(f"{_label(k)} {v}" for k, v in worst.factors)
    raise MemoryLimitError(key, f"{what} would need about {_human(total)} (mostly {worst.what}: "
                                f"{detail}), more than the limit of {_human(limit[0])} "
                                f"({limit[1]})")
