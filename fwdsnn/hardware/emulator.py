"""Integer-only emulator of a `HardwareNet`: Lava's bit-accurate Dense + LIF, vectorised over
the batch, with a configurable synaptic delay.

Semantics (all arithmetic in int64; t = 0, 1, ... is the step):
- Dense: weights clipped and truncated as Lava's Dense does (weight_bits <= 8; wider weights
  are used as stored, the format's extension); ``acc = W_eff @ x[t]`` (binary inputs: the
  columns of the spiking inputs), then ``acc << weight_exp`` or ``acc >> -weight_exp``
  (arithmetic: floors). The always-on column is one more input sending ``always_on_input``.
  A layer with a fine Dense adds that Dense's output (same inputs, its own weights, exponent
  and floor), as Lava sums the a_in of several Dense processes into one LIF.
- The neuron sees ``a[t] = Dense(x[t - delay])`` (0 before): delay 1 is Lava (one step per
  Dense), delay 0 is Norse (the current reaches the neuron in the same step).
- LIF, with trunc0(y) = sign(y) * (|y| >> 12):
  ``u = wrap(trunc0(u * (4096 - (du + 1))) + (a << 6))`` (Lava's conditional +-2^24 wrap),
  ``v = clip(trunc0(v * (4096 - dv)) + u + (bias_mant << bias_exp), -(2^23 - 1), 2^23 - 1)``,
  ``s = v > vth << 6``, ``v = 0`` where s; the readout (spiking = 0) skips the last two.
Checked bit for bit against Lava's own traces (tests/data/lava_golden.nc). The sub-networks'
decoded floats are combined by the model kind's own `combine` (fwdsnn.snn.models), in float.
"""

import logging

import numpy as np
import torch
import xarray as xr

from fwdsnn import io
from fwdsnn.artifacts import EMULATED, LAVA_MAX_WEIGHT_BITS, REFERENCE
from fwdsnn.data import make_problem, test_errors
from fwdsnn.hardware.format import (ACT_SHIFT, DECAY_BITS, STATE_BITS, V_LIMIT, VTH_SHIFT, HardwareNet,
                                    Layer, read_fixed)
from fwdsnn.hardware.trained import load_trained
from fwdsnn.predictions import prediction_dataset
from fwdsnn.snn.models import model_class
from fwdsnn.snn.neuron import decode_window
from fwdsnn.snn.record import record_spikes
from fwdsnn.status import COMPLETED

log = logging.getLogger(__name__)
U_MAX = 2 ** (STATE_BITS - 1)
DECAY_UNITY = 1 << DECAY_BITS
CHUNK = 256  # test samples per emulator call: bounds the memory of the recorded traces


def effective_weights(weight: np.ndarray, bits: int) -> np.ndarray:
    """The weights Lava's bit-accurate Dense uses: by sign mode (mixed, excitatory, inhibitory)
    clip to 8 bits and floor away the low 8 - bits (+1 if mixed) bits."""
    w = np.asarray(weight, np.int64)
    if bits > LAVA_MAX_WEIGHT_BITS:
        return w
    inhibitory = w.max() <= 0 and w.min() < 0
    mixed = w.min() < 0 < w.max()
    if inhibitory:
        w = -w
    w = np.clip(w, -256 if mixed else 0, 255)
    drop = LAVA_MAX_WEIGHT_BITS - bits + int(mixed)
    w = (w >> drop) << drop
    return -w if inhibitory else w


def shift(values: np.ndarray, exponent: int) -> np.ndarray:
    """values * 2^exponent, flooring for negative exponents (arithmetic shift, as Lava)."""
    return values << exponent if exponent >= 0 else values >> -exponent


def trunc0(y: np.ndarray) -> np.ndarray:
    """y / 4096 rounded toward zero (the decay rounding of Lava's LIF)."""
    return np.sign(y) * (np.abs(y) >> DECAY_BITS)


def wrap_current(pre: np.ndarray) -> np.ndarray:
    """Lava's current overflow: a single conditional +-2^24, not a modulo."""
    wrapped = np.where(pre > U_MAX, pre - 2 * U_MAX, pre)
    return np.where(wrapped <= -U_MAX, pre + 2 * U_MAX, wrapped)


def dense(layer: Layer, x: np.ndarray) -> np.ndarray:
    """Dense output for inputs x (..., n_in), the always-on column appended; plus the fine
    Dense's output where the layer has one (a second Dense process, its own floor)."""
    x = np.asarray(x, np.int64)
    if not layer.graded_input:
        x = (x != 0).astype(np.int64)
    always_on = np.full((*x.shape[:-1], 1), layer.always_on_input, np.int64)
    x = np.concatenate([x, always_on], axis=-1)
    processes = [(layer.weight, layer.always_on_weight, layer.weight_exp)]
    if layer.has_fine_dense:
        processes.append((layer.fine_weight, layer.fine_always_on_weight, layer.fine_weight_exp))
    out = 0
    for weight, always_on_weight, exponent in processes:
        w = effective_weights(np.column_stack([weight, always_on_weight]), layer.weight_bits)
        out = out + shift(x @ w.T, exponent)
    return out


def neuron(layer: Layer, a: np.ndarray) -> dict[str, np.ndarray]:
    """Run the layer's neurons over time on Dense outputs a (steps, ..., n): u, v, s per step."""
    mant, exp = np.asarray(layer.bias_mant, np.int64), np.asarray(layer.bias_exp, np.int64)
    bias = np.where(exp >= 0, mant << np.maximum(exp, 0), mant >> np.maximum(-exp, 0))
    u_keep = DECAY_UNITY - (layer.du + 1)
    v_keep = DECAY_UNITY - layer.dv
    threshold = layer.vth << VTH_SHIFT
    u = np.zeros(a.shape[1:], np.int64)
    v = np.zeros(a.shape[1:], np.int64)
    trace = {name: np.zeros(a.shape, np.int64) for name in ("u", "v")}
    trace["s"] = np.zeros(a.shape, bool)
    for t in range(a.shape[0]):
        u = wrap_current(trunc0(u * u_keep) + (a[t] << ACT_SHIFT))
        v = np.clip(trunc0(v * v_keep) + u + bias, -V_LIMIT, V_LIMIT)
        if layer.spiking:
            s = v > threshold
            v = np.where(s, 0, v)
            trace["s"][t] = s
        trace["u"][t], trace["v"][t] = u, v
    return trace


def run_layers(layers: list[Layer], x: np.ndarray, delay: int) -> list[dict[str, np.ndarray]]:
    """Feed-forward chain on integer inputs x (steps, ..., n_in): per layer the traces a_in
    (what the neuron received), u, v, s, each (steps, ..., n)."""
    traces = []
    for layer in layers:
        out = dense(layer, x)
        a = np.zeros_like(out)
        a[delay:] = out[:out.shape[0] - delay]
        trace = {"a_in": a, **neuron(layer, a)}
        traces.append(trace)
        x = trace["s"]
    return traces


def quantise_input(x: np.ndarray, layer: Layer, bits: int) -> np.ndarray:
    """Graded input message: x / input_scale rounded to nearest, saturated to `bits` (signed)."""
    limit = 2 ** (bits - 1) - 1
    return np.clip(np.rint(np.asarray(x, np.float64) / layer.input_scale), -limit, limit).astype(np.int64)


def run_subnet(net: HardwareNet, layers: list[Layer], x: np.ndarray, delay: int
               ) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """Normalised float input (B, n_in), sent every step -> decoded readout (B, n_out), traces."""
    message = quantise_input(x, layers[0], net.input_bits)
    traces = run_layers(layers, np.broadcast_to(message, (net.steps, *message.shape)), delay)
    start, _ = decode_window(net.steps, net.decode, net.window)
    decoded = traces[-1]["v"][start:].mean(axis=0)  # the float network's decode, on integers
    return decoded * layers[-1].state_scale, traces


def emulate(net: HardwareNet, inputs: tuple, delay: int | None = None
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The model's output (normalised units) for its usual inputs (see Problem.model_inputs),
    and the spike trains (steps, batch, n) of every LIF layer by name."""
    delay = net.synaptic_delay if delay is None else delay
    kind = model_class(net.kind)
    feeds = kind.subnet_inputs(net.subnets, inputs)
    outputs, spikes = {}, {}
    for key, layers in net.subnets.items():
        decoded, traces = run_subnet(net, layers, np.asarray(feeds[key]), delay)
        outputs[key] = torch.from_numpy(decoded)
        spikes.update({layer.name: trace["s"] for layer, trace in zip(layers, traces) if layer.spiking})
    b0 = torch.tensor(net.b0, dtype=torch.float64)
    return kind.combine(outputs, {"b0": b0}).numpy(), spikes


def emulate_run(model_path, pairs: list[tuple], reference_path, delay: int | None = None) -> None:
    """The stage: for each (fixed_w*.nc, emulated_w*.nc) pair converted from the float network
    in model_path, emulated predictions on the test split of the reference data, their rel-L2,
    spike rates/counts per layer (laid out like the float network's prediction.nc), and per
    layer the share of (neuron, step) pairs whose spike equals the float network's. The
    reference is read and the float network run once for all widths."""
    reference = io.read_artifact(reference_path, REFERENCE)
    nets = [read_fixed(fixed_path) for fixed_path, _ in pairs]
    delays = [net.synaptic_delay if delay is None else delay for net in nets]
    model = load_trained(model_path)[0].double()  # no dropout or batch norm: train mode changes nothing
    problem = make_problem(reference, nets[0].kind).to(torch.device("cpu"), torch.float64)
    n = len(problem.targets("test"))
    for (fixed_path, _), net, d in zip(pairs, nets, delays):
        log.info("emulating %s (%d layers) on %d test samples, delay %d", fixed_path, len(net.layers), n, d)
    sums = [{"outputs": [], "rate": {}, "count": {}, "agreement": {}} for _ in nets]
    for start in range(0, n, CHUNK):
        index = np.arange(start, min(start + CHUNK, n))
        inputs = problem.model_inputs("test", torch.as_tensor(index))
        reference_spikes = {name: s.numpy() > 0 for name, s in record_spikes(model, inputs).items()}
        inputs = tuple([t.numpy() for t in x] if isinstance(x, list) else x.numpy() for x in inputs)
        weight = len(index) / n  # trunk activity repeats in every chunk
        for net, d, acc in zip(nets, delays, sums):
            output, spikes = emulate(net, inputs, d)
            acc["outputs"].append(output)
            for name, s in spikes.items():
                for key, value in (("rate", s.mean()), ("count", s.sum(axis=(0, -1)).mean()),
                                   ("agreement", np.mean(s == reference_spikes[name]))):
                    acc[key][name] = acc[key].get(name, 0.0) + weight * float(value)
        log.info("emulated %d/%d test samples at %d widths", index[-1] + 1, n, len(nets))
    for (fixed_path, out_path), net, d, acc in zip(pairs, nets, delays, sums):
        prediction = np.concatenate(acc["outputs"]) * net.output_scale + net.output_offset
        prediction = prediction.reshape(n, *problem.grid_shape)
        ds = prediction_dataset(reference, prediction, test_errors(problem, prediction), acc["rate"], acc["count"])
        layers = list(ds["layer"].values)
        agreement = np.array([acc["agreement"][name] for name in layers])
        neurons = {layer.name: layer.weight.shape[0] for layer in net.layers}
        ds["spike_agreement"] = ("layer", agreement, {
            "long_name": "share of (neuron, step) pairs spiking as in the float network", "units": "1"})
        ds.attrs.update(status=COMPLETED, synaptic_delay=d, weight_bits=max(l.weight_bits for l in net.layers),
                        spike_agreement_all=float(np.average(agreement, weights=[neurons[k] for k in layers])))
        io.write_dataset(ds, out_path, stage=EMULATED.stage, config={"synaptic_delay": d},
                         inputs=[model_path, fixed_path, reference_path])
        log.info("%s: rel-L2 mean %.4f, spikes as in the float network %.4f", out_path,
                 float(np.mean(ds["rel_l2"])), ds.attrs["spike_agreement_all"])


def write_placeholder(path, status: str, bits: int, inputs=()) -> None:
    """The emulated_w{bits}.nc of a run with nothing to emulate (its training did not
    complete): `status`, and the error and spike agreement the bit sweep reads, as NaN."""
    ds = xr.Dataset({"rel_l2": ((), np.nan, {"long_name": f"relative L2 error of the prediction "
                                             f"(NaN: training {status})", "units": "1"})})
    ds.attrs.update(status=status, weight_bits=bits, spike_agreement_all=np.nan)
    io.write_dataset(ds, path, stage=EMULATED.stage, config={"weight_bits": bits, "status": status},
                     inputs=inputs)
