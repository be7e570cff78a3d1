"""The fixed-point hardware format `fixed_w{bits}.nc`: integer networks in Lava/Loihi-2 terms.

A network is a set of sub-networks (one for spiking_mlp, branch + trunk(s) for the operator
models), each a chain of layers `Dense -> LIF` ending in a non-spiking readout. Per layer, the
file holds (variables prefixed ``{layer}.``, e.g. ``branch.hidden0.weight``):

- ``weight`` (neuron, input): the weights handed to Lava's Dense (for weight_bits <= 8 within
  [-256, 255]; Lava clips and drops the low ``8 - bits (+1 if mixed sign)`` bits);
- ``always_on_weight`` (neuron) and ``always_on_input``: an extra input column whose input sends
  ``always_on_input`` every step. It carries the Linear layer's bias as a current, like any
  input (Norse adds the bias to the synaptic current, not to the voltage);
- ``weight_exp``, ``weight_bits``, ``graded_input`` (1: integer messages, 0: binary spikes),
  ``input_scale`` (float value of one unit of the layer's input message);
- ``fine_weight`` (neuron, input), ``fine_always_on_weight`` (neuron) and ``fine_weight_exp``:
  a second Dense from the same inputs (always-on included) into the same neurons, whose
  output is added to the first's. On Loihi these are two synapse groups. The converter uses it
  for graded inputs at up to 8 bits, where it carries the rounding residual of ``weight`` at a
  finer exponent; elsewhere it is all zeros and adds nothing;
- ``du``, ``dv`` (12-bit decays; the current decays by (du + 1)/4096 per step, the voltage by
  dv/4096), ``vth`` (17-bit threshold mantissa, compared as ``v > vth << 6``), ``spiking``
  (0 for the readout: no threshold, no reset);
- ``bias_mant``, ``bias_exp`` (neuron): Lava's voltage bias ``bias_mant << bias_exp`` (0 for
  converted networks, kept because Lava has it and the golden traces use it);
- ``state_scale``: float value of one integer unit of the layer's current u and voltage v.

Global attributes hold the semantics (bit widths, shifts, rounding and overflow modes), the
input quantisation, the readout decoding (decode, window, output affine, b0), the synaptic
delay and the run's ``status`` (``completed``). Reading validates every variable and range and
names the offender. A run whose training diverged has a placeholder instead: ``status`` and
``weight_bits`` only, no network, which reading refuses by name.
"""

import json
from dataclasses import dataclass, fields

import numpy as np
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import FIXED, LAVA_MAX_WEIGHT_BITS
from fwdsnn.status import COMPLETED

FORMAT_VERSION = 2  # 2: the fine Dense
STATE_BITS = 24
DECAY_BITS = 12
THRESHOLD_BITS = 17
ACT_SHIFT = 6          # the Dense output enters u as a << 6
VTH_SHIFT = 6          # the threshold mantissa is compared as vth << 6
V_LIMIT = 2 ** (STATE_BITS - 1) - 1
WEIGHT_BITS = (2, 3, 4, 6, 8, 12, 16)
DECODES = ("last", "mean")

SEMANTICS = {  # constant attrs: what the integers mean (checked on read)
    "format_version": FORMAT_VERSION,
    "state_bits": STATE_BITS,
    "decay_bits": DECAY_BITS,
    "threshold_bits": THRESHOLD_BITS,
    "activation_shift": ACT_SHIFT,
    "threshold_shift": VTH_SHIFT,
    "decay_rounding": "toward_zero",
    "weight_exp_rounding": "floor",
    "current_overflow": "wrap",
    "voltage_overflow": "saturate",
    "reset": "zero",
}


@dataclass
class Layer:
    """One Dense -> LIF (or readout) stage in integers; see the module docstring."""

    name: str
    weight: np.ndarray            # (neuron, input) int
    always_on_weight: np.ndarray  # (neuron,) int
    always_on_input: int
    weight_exp: int
    weight_bits: int
    graded_input: bool
    input_scale: float
    du: int
    dv: int
    vth: int
    spiking: bool
    bias_mant: np.ndarray         # (neuron,) int
    bias_exp: np.ndarray          # (neuron,) int
    state_scale: float
    fine_weight: np.ndarray       # (neuron, input) int
    fine_always_on_weight: np.ndarray  # (neuron,) int
    fine_weight_exp: int

    @property
    def size(self) -> int:
        return self.weight.shape[0]

    @property
    def has_fine_dense(self) -> bool:
        return bool(np.any(self.fine_weight) or np.any(self.fine_always_on_weight))


@dataclass
class HardwareNet:
    """A converted network: sub-networks of layers plus how inputs and outputs map to floats."""

    kind: str
    subnets: dict[str, list[Layer]]  # "" for spiking_mlp; "branch", "trunk"/"trunk0", ...
    dt: float
    steps: int
    input_bits: int
    decode: str
    window: int
    output_offset: float
    output_scale: float
    b0: float = 0.0
    synaptic_delay: int = 0

    @property
    def layers(self) -> list[Layer]:
        return [layer for chain in self.subnets.values() for layer in chain]


def _mantissa_range(bits: int) -> tuple[int, int]:
    """Allowed stored weight values: Lava's Dense range up to 8 bits, +-(2^(bits-1)-1) above."""
    if bits <= LAVA_MAX_WEIGHT_BITS:
        return -256, 255
    return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1


# name -> (long_name, units, allowed range or None); ints unless listed in FLOAT_VARS
LAYER_VARS = {
    "weight": ("synaptic weight mantissa as given to Lava's Dense", "1", None),
    "always_on_weight": ("weight mantissa of the always-on input (Linear bias as a current)", "1", None),
    "always_on_input": ("message sent every step by the always-on input", "1", (0, 2 ** 23 - 1)),
    "weight_exp": ("weight exponent: Dense output shifted left by it (right if negative)", "1", (-31, 31)),
    "weight_bits": ("weight bits (Lava's num_weight_bits up to 8, extension above)", "1", None),
    "graded_input": ("1: input messages are integers, 0: binary spikes", "1", (0, 1)),
    "input_scale": ("float value of one unit of the input message", "1", None),
    "du": ("current decay: u loses (du + 1)/4096 per step", "1", (0, 2 ** DECAY_BITS - 1)),
    "dv": ("voltage decay: v loses dv/4096 per step", "1", (0, 2 ** DECAY_BITS)),
    "vth": ("threshold mantissa, compared as v > vth << 6", "1", (0, 2 ** THRESHOLD_BITS - 1)),
    "spiking": ("1: LIF with threshold and reset, 0: non-spiking readout", "1", (0, 1)),
    "bias_mant": ("voltage bias mantissa (Lava's 13-bit bias_mant)", "1", (-(2 ** 12), 2 ** 12 - 1)),
    "bias_exp": ("voltage bias exponent (Lava's bias_exp)", "1", (-8, 8)),
    "state_scale": ("float value of one integer unit of current u and voltage v", "1", None),
    "fine_weight": ("weight mantissa of the fine Dense (same inputs, added output)", "1", None),
    "fine_always_on_weight": ("weight mantissa of the always-on input in the fine Dense", "1", None),
    "fine_weight_exp": ("exponent of the fine Dense", "1", (-31, 31)),
}
FLOAT_VARS = ("input_scale", "state_scale")
MATRIX_VARS = ("weight", "fine_weight")
NEURON_VARS = ("always_on_weight", "fine_always_on_weight", "bias_mant", "bias_exp")


def _layer_variables(layer: Layer) -> dict[str, xr.Variable]:
    neuron, inputs = f"{layer.name}.neuron", f"{layer.name}.input"
    out = {}
    for key, (long_name, units, _) in LAYER_VARS.items():
        value = getattr(layer, key)
        dtype = np.float64 if key in FLOAT_VARS else np.int32
        dims = (neuron, inputs) if key in MATRIX_VARS else (neuron,) if key in NEURON_VARS else ()
        out[f"{layer.name}.{key}"] = xr.Variable(dims, np.asarray(value).astype(dtype),
                                                 {"long_name": long_name, "units": units})
    return out


def to_dataset(net: HardwareNet) -> xr.Dataset:
    variables = {}
    for layer in net.layers:
        variables.update(_layer_variables(layer))
    ds = xr.Dataset(variables)
    ds.attrs.update(SEMANTICS)
    ds.attrs.update(
        model_kind=net.kind, layers_json=json.dumps({k: [l.name for l in v] for k, v in net.subnets.items()}),
        dt=net.dt, steps=net.steps, input_bits=net.input_bits, decode=net.decode, window=net.window,
        output_offset=net.output_offset, output_scale=net.output_scale, b0=net.b0,
        synaptic_delay=net.synaptic_delay, weight_bits=max(l.weight_bits for l in net.layers))
    return ds


def write_fixed(net: HardwareNet, path, config: dict, inputs=()) -> None:
    """Validate (so no invalid file is ever written) and write atomically with provenance."""
    ds = to_dataset(net)
    validate(ds, str(path))
    ds.attrs["status"] = COMPLETED  # only a completed run's network is converted
    io.write_dataset(ds, path, stage=FIXED.stage, config=config, inputs=inputs)


def write_placeholder(path, status: str, bits: int, inputs=()) -> None:
    """The fixed_w{bits}.nc of a run with nothing to convert (its training did not complete):
    no network, only `status`, `weight_bits` and the format version."""
    ds = xr.Dataset(attrs={"status": status, "weight_bits": bits, "format_version": FORMAT_VERSION})
    io.write_dataset(ds, path, stage=FIXED.stage, config={"weight_bits": bits, "status": status},
                     inputs=inputs)


def _check_range(where: str, name: str, values: np.ndarray, low: int, high: int) -> None:
    bad = (values < low) | (values > high)
    if np.any(bad):
        raise io.DatasetError(f"{where}: {name} has {int(bad.sum())} value(s) outside [{low}, {high}] "
                              f"(e.g. {values[bad].flat[0]})")


def validate(ds: xr.Dataset, where: str) -> None:
    """Every attr, variable, dtype and range the emulator relies on; errors name the offender."""
    status = ds.attrs.get("status", COMPLETED)
    if status != COMPLETED:
        raise io.DatasetError(f"{where}: placeholder of a run whose training {status}: it holds no network")
    for key, expected in SEMANTICS.items():
        if ds.attrs.get(key) != expected:
            raise io.DatasetError(f"{where}: attribute {key!r} is {ds.attrs.get(key)!r}, "
                                  f"this reader needs {expected!r}")
    for key in ("model_kind", "layers_json", "dt", "steps", "input_bits", "decode", "window",
                "output_offset", "output_scale", "b0", "synaptic_delay"):
        if key not in ds.attrs:
            raise io.DatasetError(f"{where}: missing attribute {key!r}")
    if not ds.attrs["model_kind"]:  # the kind's class (fwdsnn.snn.models) combines the outputs
        raise io.DatasetError(f"{where}: empty model_kind")
    if ds.attrs["decode"] not in DECODES:
        raise io.DatasetError(f"{where}: decode {ds.attrs['decode']!r} not in {DECODES}")
    if not 1 <= int(ds.attrs["window"]) <= int(ds.attrs["steps"]):
        raise io.DatasetError(f"{where}: window {ds.attrs['window']} outside [1, steps]")
    if int(ds.attrs["synaptic_delay"]) not in (0, 1):
        raise io.DatasetError(f"{where}: synaptic_delay must be 0 or 1")
    if not 2 <= int(ds.attrs["input_bits"]) <= 24:
        raise io.DatasetError(f"{where}: input_bits {ds.attrs['input_bits']} outside [2, 24]")
    for names in json.loads(ds.attrs["layers_json"]).values():
        for name in names:
            _validate_layer(ds, name, where)


def _validate_layer(ds: xr.Dataset, name: str, where: str) -> None:
    for key, (_, _, bounds) in LAYER_VARS.items():
        var = f"{name}.{key}"
        if var not in ds.variables:
            raise io.DatasetError(f"{where}: missing variable {var!r}")
        is_float = key in FLOAT_VARS
        if np.issubdtype(ds[var].dtype, np.floating) != is_float:
            raise io.DatasetError(f"{where}: variable {var!r} must be {'float' if is_float else 'integer'}")
        if bounds is not None:
            _check_range(where, var, ds[var].values, *bounds)
    bits = int(ds[f"{name}.weight_bits"])
    if bits not in WEIGHT_BITS:
        raise io.DatasetError(f"{where}: {name}.weight_bits {bits} not in {WEIGHT_BITS}")
    for key in ("weight", "always_on_weight", "fine_weight", "fine_always_on_weight"):
        _check_range(where, f"{name}.{key}", ds[f"{name}.{key}"].values, *_mantissa_range(bits))
    for key in FLOAT_VARS:
        value = float(ds[f"{name}.{key}"])
        if not np.isfinite(value) or value <= 0:
            raise io.DatasetError(f"{where}: {name}.{key} must be positive and finite, is {value}")
    n = ds[f"{name}.weight"].shape[0]
    if ds[f"{name}.fine_weight"].shape != ds[f"{name}.weight"].shape:
        raise io.DatasetError(f"{where}: {name}.fine_weight must have the shape of {name}.weight")
    for key in NEURON_VARS:
        if ds[f"{name}.{key}"].shape != (n,):
            raise io.DatasetError(f"{where}: {name}.{key} must have one value per neuron ({n})")


def _layer(ds: xr.Dataset, name: str) -> Layer:
    values = {}
    for f in fields(Layer):
        if f.name == "name":
            continue
        raw = ds[f"{name}.{f.name}"].values
        if f.name in FLOAT_VARS:
            values[f.name] = float(raw)
        elif f.name in ("graded_input", "spiking"):
            values[f.name] = bool(raw)
        elif raw.ndim:
            values[f.name] = raw.astype(np.int64)
        else:
            values[f.name] = int(raw)
    return Layer(name=name, **values)


def from_dataset(ds: xr.Dataset, where: str = "dataset") -> HardwareNet:
    validate(ds, where)
    a = ds.attrs
    subnets = {key: [_layer(ds, name) for name in names]
               for key, names in json.loads(a["layers_json"]).items()}
    return HardwareNet(kind=a["model_kind"], subnets=subnets, dt=float(a["dt"]), steps=int(a["steps"]),
                       input_bits=int(a["input_bits"]), decode=str(a["decode"]), window=int(a["window"]),
                       output_offset=float(a["output_offset"]), output_scale=float(a["output_scale"]),
                       b0=float(a["b0"]), synaptic_delay=int(a["synaptic_delay"]))


def read_fixed(path) -> HardwareNet:
    return from_dataset(io.read_dataset(path, stage=FIXED.stage), str(path))
