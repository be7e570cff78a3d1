"""Integer-only emulator of `HardwareNet`s: Lava's bit-accurate Dense + LIF, vectorised over
the batch and over R weight sets (rows) of one architecture, with a configurable synaptic
delay. One pass runs all rows, so training in the loop evaluates every perturbed set at once.

Semantics (integers; t = 0, 1, ... is the step):
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

The integers are held in float64 tensors, so that the Dense products are BLAS matrix products.
That is exact while every intermediate, partial sums included, stays below 2^53 in magnitude
(integers are exact there, and a power-of-two scaling, floor or trunc of one is exact). The
bound (`exact_bound`, checked for every layer of every row before a pass, ValueError if over):
- Dense accumulator: |acc| <= A0 = max over neurons of sum_j |W_eff| peak|x_j| + |always-on
  weight| always_on_input, peak|x| being 2^(input_bits - 1) - 1 for a graded input (the
  message saturates there) and 1 for spikes; any partial sum of the product is within A0;
- Dense output: |a| <= A = sum over the layer's Dense processes of A0 2^weight_exp (+1 where
  the exponent floors);
- current: the wrap never increases |u| and trunc0 shrinks it, so |u_t| <= (1 - (du + 1)/4096)
  |u_{t-1}| + 64 A, hence |u| <= U = 64 A 4096 / (du + 1), and |u * (4096 - (du + 1))| < 4096 U;
- voltage: clipped to V_LIMIT = 2^23 - 1 every step, so |v * (4096 - dv)| <= 4096 V_LIMIT and
  the sum before the clip is within V_LIMIT + U + |bias|, |bias| <= 2^12 2^8.
The largest is max(A0 2^max(weight_exp, 0), 4096 U, 4096 V_LIMIT + U + 2^20); a converted
network keeps U within 2^23 (convert.py), so it has about 2^17 of margin. A Dense of spikes
whose A0 (the sum of |W_eff| over a neuron's inputs and rows) is below 2^24 multiplies in
float32, exact there too and twice as fast; its output is float64 again before the shift.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import xarray as xr
from torch import Tensor

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
EXACT_LIMIT = 2.0 ** 53  # float64 holds every integer below this exactly
FLOAT32_EXACT = 2.0 ** 24  # and float32 below this
BIAS_LIMIT = 2.0 ** 20   # |bias_mant << bias_exp| within the format's 13-bit mantissa, exponent <= 8
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


@dataclass
class Rows:
    """One layer of R networks as float64 tensors of integers, ready for the batched pass.
    dense: per Dense process (effective weights (R, in, n), the always-on column's current
    (R, 1, n), 2^exponent (R, 1, 1)); bias and threshold (R, 1, n) and (R, 1, 1)."""

    name: str
    dense: list[tuple[Tensor, Tensor, Tensor]]
    graded: bool
    spiking: bool
    u_keep: int
    v_keep: int
    bias: Tensor
    threshold: Tensor
    state_scale: Tensor  # (R,) float value of one unit of v


def _same(layers: list[Layer], key: str):
    values = {getattr(layer, key) for layer in layers}
    if len(values) > 1:
        raise ValueError(f"{layers[0].name}: rows differ in {key} ({sorted(values)}): one pass "
                         "runs one architecture")
    return values.pop()


def stack_rows(layers: list[Layer]) -> Rows:
    """The same layer of R networks (one per row) as `Rows`."""
    def tensor(arrays):
        return torch.from_numpy(np.stack(arrays).astype(np.float64))

    def process(weight, always_on_weight, exponent):
        w = [effective_weights(np.column_stack([getattr(l, weight), getattr(l, always_on_weight)]),
                               l.weight_bits) for l in layers]
        on = [l.always_on_input for l in layers]
        product = tensor([m[:, :-1].T for m in w])
        if not first.graded_input and float(product.abs().sum(dim=1).max()) < FLOAT32_EXACT:
            product = product.float()  # spikes times these weights: exact in float32 (docstring)
        return (product, tensor([m[None, :, -1] * c for m, c in zip(w, on)]),
                tensor([[[2.0 ** getattr(l, exponent)]] for l in layers]))

    for key in ("size", "graded_input", "spiking", "du", "dv", "weight_bits"):
        _same(layers, key)
    first = layers[0]
    dense = [process("weight", "always_on_weight", "weight_exp")]
    if any(layer.has_fine_dense for layer in layers):
        dense.append(process("fine_weight", "fine_always_on_weight", "fine_weight_exp"))
    bias = [np.where(l.bias_exp >= 0, l.bias_mant << np.maximum(l.bias_exp, 0),
                     l.bias_mant >> np.maximum(-l.bias_exp, 0))[None] for l in layers]
    return Rows(name=first.name, dense=dense, graded=first.graded_input, spiking=first.spiking,
                u_keep=DECAY_UNITY - (first.du + 1), v_keep=DECAY_UNITY - first.dv, bias=tensor(bias),
                threshold=tensor([[[l.vth << VTH_SHIFT]] for l in layers]),
                state_scale=torch.tensor([l.state_scale for l in layers], dtype=torch.float64))


def exact_bound(rows: Rows, peak_input: float) -> float:
    """The largest magnitude any intermediate of the layer's integer step can take, for input
    messages within peak_input (module docstring: the bound)."""
    peak_x = peak_input if rows.graded else 1.0
    a, acc = 0.0, 0.0
    for weight, always_on, scale in rows.dense:
        peaks = weight.abs().sum(dim=1) * peak_x + always_on.abs()[:, 0]  # (R, n)
        row_peak = peaks.max(dim=1).values
        acc = max(acc, float((row_peak * torch.clamp(scale[:, 0, 0], min=1.0)).max()))
        a += float((row_peak * scale[:, 0, 0] + (scale[:, 0, 0] < 1)).max())
    u = 2 ** ACT_SHIFT * a * DECAY_UNITY / (DECAY_UNITY - rows.u_keep)
    return max(acc, DECAY_UNITY * u, DECAY_UNITY * V_LIMIT + u + BIAS_LIMIT)


def check_exact(stack: list[Rows], peak_input: float) -> None:
    """ValueError naming the first layer whose intermediates could leave float64's integers."""
    for k, rows in enumerate(stack):
        bound = exact_bound(rows, peak_input if k == 0 else 1.0)
        if bound >= EXACT_LIMIT:
            raise ValueError(f"{rows.name}: an intermediate of the integer step could reach "
                             f"{bound:.3g} >= 2^53, beyond the integers float64 holds exactly "
                             "(weights, exponents or input bits too large)")


def dense(rows: Rows, x: Tensor) -> Tensor:
    """Dense outputs (R, steps, B, n) of integer inputs x (R or 1, steps, B, in): every process's
    product, its always-on current, then its power-of-two scaling with floor."""
    if not rows.graded:
        x = x if x.dtype == torch.bool else x != 0
    flat = x.reshape(x.shape[0], -1, x.shape[-1])
    out = 0
    for weight, always_on, scale in rows.dense:
        product = torch.matmul(flat.to(weight.dtype), weight).to(torch.float64)
        out = out + product.add_(always_on).mul_(scale).floor_()
    return out.reshape(out.shape[0], *x.shape[1:-1], out.shape[-1])


def decay(y: Tensor, keep: int) -> Tensor:
    """trunc0(y * keep): y * keep / 4096 rounded toward zero (Lava's decay rounding), y scaled
    in place. One multiply by keep / 4096 is exact: the product has the bits of y * keep
    (< 2^53). Rounded as floor(|y|) with y's sign, several times faster than torch.trunc."""
    y.mul_(keep / DECAY_UNITY)
    return y.abs().floor_().copysign_(y)


def wrap_current(pre: Tensor) -> Tensor:
    """Lava's current overflow: a single conditional +-2^24, not a modulo."""
    low, high = torch.aminmax(pre)
    if high <= U_MAX and low > -U_MAX:  # nothing to wrap: skip the masks
        return pre
    wrapped = torch.where(pre > U_MAX, pre - 2 * U_MAX, pre)
    return torch.where(wrapped <= -U_MAX, pre + 2 * U_MAX, wrapped)


def neuron(rows: Rows, a: Tensor, keep: tuple[str, ...]) -> dict[str, Tensor]:
    """Run the layer's neurons over time on Dense outputs a (R, steps, B, n): the traces named
    in keep of u, v and s (bool), each (R, steps, B, n)."""
    drive = a * 2 ** ACT_SHIFT
    u = a.new_zeros(a.shape[0], *a.shape[2:])
    v = torch.zeros_like(u)
    trace = {name: torch.zeros(a.shape, dtype=torch.bool if name == "s" else a.dtype) for name in keep}
    for t in range(a.shape[1]):
        u = wrap_current(decay(u, rows.u_keep).add_(drive[:, t]))
        v = decay(v, rows.v_keep).add_(u).add_(rows.bias).clamp_(-V_LIMIT, V_LIMIT)
        if rows.spiking:
            s = v > rows.threshold
            v.masked_fill_(s, 0.0)
            if "s" in trace:
                trace["s"][:, t] = s
        for name, value in (("u", u), ("v", v)):
            if name in trace:
                trace[name][:, t] = value
    return trace


def run_rows(stack: list[Rows], x: Tensor, steps: int, delay: int, keep: tuple[str, ...] = (),
             inject: Callable[[int, Tensor], Tensor] | None = None) -> list[dict[str, Tensor]]:
    """Feed-forward chain on integer inputs x (R or 1, steps, B, n_in; a steps dimension of 1:
    the same input every step, whose Dense output is computed once): per layer the traces a_in
    (what the neuron received) and those in keep, each (R, steps, B, n); a hidden layer keeps
    s for the next layer, the last keeps v (the readout's output). `inject(k, a)` may return
    layer k's Dense outputs with rows added or a current summed in before its neurons run
    (node perturbation in the loop: a second input into the neurons' a_in, as Lava sums them)."""
    traces = []
    for k, rows in enumerate(stack):
        out = dense(rows, x)
        a = out.new_zeros(out.shape[0], steps, *out.shape[2:])
        a[:, delay:] = out if out.shape[1] == 1 else out[:, :steps - delay]
        if inject is not None:
            a = inject(k, a)
        wanted = tuple(keep) + (("s",) if k < len(stack) - 1 else ("v",))
        trace = {"a_in": a, **neuron(rows, a, tuple(dict.fromkeys(wanted)))}
        traces.append(trace)
        x = trace.get("s")
    return traces


def run_layers(layers: list[Layer], x: np.ndarray, delay: int) -> list[dict[str, np.ndarray]]:
    """One network's chain on integer inputs x (steps, ..., n_in), through `run_rows` with one
    row: per layer the traces a_in, u, v (int64) and s (bool), each (steps, ..., n)."""
    x = np.asarray(x, np.int64)
    stack = [stack_rows([layer]) for layer in layers]
    check_exact(stack, float(np.abs(x).max(initial=0)))
    flat = torch.from_numpy(x.reshape(x.shape[0], -1, x.shape[-1]).astype(np.float64))[None]
    traces = run_rows(stack, flat, x.shape[0], delay, keep=("u", "v", "s"))
    return [{name: value[0].numpy().astype(bool if name == "s" else np.int64)
             .reshape(*x.shape[:-1], value.shape[-1]) for name, value in trace.items()}
            for trace in traces]


def quantise_input(x: Tensor, input_scale: float, bits: int) -> Tensor:
    """Graded input message: x / input_scale rounded to nearest, saturated to `bits` (signed)."""
    limit = 2 ** (bits - 1) - 1
    return torch.clamp(torch.round(torch.as_tensor(x, dtype=torch.float64) / input_scale), -limit, limit)


def emulate_rows(nets: list[HardwareNet], inputs: tuple, delay: int | None = None, spikes: bool = False
                 ) -> tuple[Tensor, dict[str, Tensor]]:
    """R networks of one architecture in one pass: their outputs (R, *output) in normalised
    units for the usual inputs (see Problem.model_inputs, tensors or arrays), and with
    `spikes` the spike trains (R, steps, batch, n) of every LIF layer by name."""
    net = nets[0]
    for key in ("kind", "steps", "input_bits", "decode", "window", "synaptic_delay"):
        if len({getattr(n, key) for n in nets}) > 1:
            raise ValueError(f"the rows' networks differ in {key}: one pass runs one architecture")
    delay = net.synaptic_delay if delay is None else delay
    kind = model_class(net.kind)
    feeds = kind.subnet_inputs(net.subnets, inputs)
    start, _ = decode_window(net.steps, net.decode, net.window)
    outputs, trains = {}, {}
    for key, layers in net.subnets.items():
        stack = [stack_rows([n.subnets[key][k] for n in nets]) for k in range(len(layers))]
        check_exact(stack, 2 ** (net.input_bits - 1) - 1)
        if len({n.subnets[key][0].input_scale for n in nets}) > 1:
            raise ValueError(f"{layers[0].name}: the rows' networks differ in input_scale")
        message = quantise_input(feeds[key], layers[0].input_scale, net.input_bits)
        traces = run_rows(stack, message[None, None], net.steps, delay, keep=("s",) if spikes else ())
        decoded = traces[-1]["v"][:, start:].mean(dim=1)  # the float network's decode, on integers
        outputs[key] = decoded * stack[-1].state_scale[:, None, None]
        if spikes:
            trains.update({l.name: t["s"] for l, t in zip(layers, traces) if l.spiking})
    b0 = torch.tensor([n.b0 for n in nets], dtype=torch.float64)
    return kind.combine_rows(outputs, {"b0": b0}), trains


def emulate(net: HardwareNet, inputs: tuple, delay: int | None = None
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One network (`emulate_rows` with one row): the model's output (normalised units) and
    the spike trains (steps, batch, n) of every LIF layer by name, as arrays."""
    output, trains = emulate_rows([net], inputs, delay, spikes=True)
    return output[0].numpy(), {name: s[0].numpy() for name, s in trains.items()}


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
