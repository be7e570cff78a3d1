"""Conversion of a trained float SNN (Norse LIF) into the fixed-point format.

The mapping (per layer; alpha_s = dt * tau_syn_inv, alpha_m = dt * tau_mem_inv, v_leak =
v_reset = 0). Norse, per step, with input current I_t = W x_t + b:

    j_t = i_{t-1} + I_t;   v_t = (1 - alpha_m) v_{t-1} + alpha_m j_t;   i_t = (1 - alpha_s) j_t
    => j_t = (1 - alpha_s) j_{t-1} + I_t;   spike v_t > v_th, then v_t = 0.

Lava: u_t = (1 - (du + 1)/4096) u_{t-1} + (a_t << 6);  v_t = (1 - dv/4096) v_{t-1} + u_t (+ bias).
With a state scale s (float value of one integer unit of v), set u = alpha_m j / s and
v_int = v / s: both recursions coincide when

    du + 1 = round(4096 alpha_s),   dv = round(4096 alpha_m),
    64 a_t = alpha_m I_t / s       (the Dense output, in units of u >> 6),
    vth << 6 = v_th / s            (so s = v_th / (64 vth)).

alpha_m in the weights is the quantised dv/4096, which keeps the steady state v = j exact. So
a weight W (current per unit of input) becomes the integer W alpha_m / (64 s), written as a
mantissa times 2^weight_exp (Lava's Dense shift). Norse adds the Linear bias b to the current
each step (not to v): it becomes the weight of an always-on input column of the Dense (Loihi
has no current bias), and Lava's voltage bias stays 0.

Inputs: the first layer takes graded integer messages x_int = round(x / q), saturated to
`input_bits` (signed, default 16: Loihi 2's graded spikes carry up to 24 bits), with
q = range / (2^(input_bits-1) - 1); range is 1.25 for coordinates (scaled to [-1, 1] by their
training range; test points may lie a little outside) and 4 for standardised sensor values
(4 sigma). Hidden layers take binary spikes. The always-on input sends 1 to hidden layers; to
the graded first layer it sends the integer c that makes the bias column fill its mantissa
range by itself (weight b / c), so a small bias is not rounded on the scale of large weights.

Choices, per layer:
- State scale: from a worst-case bound, so that no input whatsoever can wrap the current:
  with the quantised weights, |a| <= sum_j |W_int| max|x_j| (+1 for the floor) and
  |u| <= 64 max|a| / alpha_s <= 2^23 - 1. It needs no data. A LIF voltage needs no bound of
  its own: above the threshold it spikes and resets whether or not it saturated, and it
  saturates at -(2^23 - 1) only under inhibition 1/alpha_m deeper than the threshold scale,
  where neither network spikes (on the trained nets: first-layer neurons with a negative
  constant current). Bounding v as well would cost log2(1/alpha_m) = 3.3 bits of resolution:
  one unit of a moves v by 64 / (alpha_s alpha_m) units in the steady state, and with the
  v bound the threshold was only 16-100 such units on the parabola net, so rounding the Dense
  output cost 1.7% of the spikes at 16-bit weights; with the u bound it is 130-880 units.
  The readout (no reset; its voltage is the output) keeps |v| <= max|u| / alpha_m. The scale is then
  coarsened by less than 2x so that the largest weight fills the mantissa range exactly (the
  state has bits to spare, the weights do not); for LIF layers it is v_th / (64 vth) with an
  integer vth <= 2^17 - 1; for the readout (no threshold) any float.
- Weight exponent: the smallest that fits the largest weight; mantissas are rounded to nearest.
- Graded first layers at up to 8 bits get a fine Dense (format docstring): the same inputs,
  exponent lower by bits - 1, weights = what rounding the first Dense left out (at most half
  its step, so it fills the mantissa range again). The first layer's currents drive everything
  downstream from constant inputs, and one 8-bit Dense there cost most of the 8-bit error
  (trained parabola nets, emulated / float rel-L2 per seed at 8 bits: bp 1.19, 0.99, 1.06 and
  rfg-layer 1.11, 1.02, 1.11 with one Dense; 1.01, 1.02, 1.02 and 1.07, 1.05, 1.01 with the
  fine Dense). It adds n x (n_in + 1) synapses, a few percent of the network's; hidden layers
  keep one 8-bit weight per synapse.
- Weights up to 8 bits follow Lava's Dense exactly: the stored value m 2^k with k = 9 - bits
  and |m| <= 2^(bits-1) - 1 survives Lava's clip to [-256, 255] and its dropping of the low k
  bits unchanged. 12 and 16 bits are an extension of the format (Loihi 2 has 8-bit weights):
  mantissas within +-(2^(bits-1) - 1), used as stored.
- Lava floors the Dense output when weight_exp < 0. Where that floor loses bits (exponent below
  -k), the always-on column also carries half an output LSB, 2^(-weight_exp-1), which turns the
  floor into rounding to nearest; otherwise the floor's bias of half an LSB per step builds up
  to percents of the threshold in v. A fine Dense's floor gets its half LSB on the first
  Dense's always-on column too (both outputs are in the same units).

The readout is the same integer neuron with spiking = 0 (Norse's LI with the same constants);
its voltage, averaged over the decode window and times its state scale, is the sub-network's
float output. The model kind's `combine` (DeepONet: branch . trunk + b0; SepONet: the outer
product sum + b0) and the output affine are applied in float; the format stores the kind and
b0, and the sub-networks under the names the kind gives them.
"""

import logging
import math

import numpy as np

from fwdsnn.artifacts import LAVA_MAX_WEIGHT_BITS
from fwdsnn.hardware.format import (ACT_SHIFT, DECAY_BITS, STATE_BITS, THRESHOLD_BITS, V_LIMIT, VTH_SHIFT, WEIGHT_BITS, HardwareNet,
                                    Layer, write_fixed)
from fwdsnn.snn.models import SpikingMLP, SpikingModel, layer_name
from fwdsnn.hardware.trained import load_trained

log = logging.getLogger(__name__)
COORDINATE_RANGE = 1.25  # input saturation (normalised units): see the module docstring
SENSOR_RANGE = 4.0
INPUT_BITS = 16
MAX_VTH = 2 ** THRESHOLD_BITS - 1


def _decays(p, dt: float) -> tuple[int, int, float, float]:
    """du, dv and the decay factors they realise (alpha_s, alpha_m)."""
    if float(p.v_leak) != 0.0 or float(getattr(p, "v_reset", 0.0)) != 0.0:
        raise ValueError("only v_leak = v_reset = 0 maps onto Lava's LIF (reset to 0, no leak target)")
    unity = 2 ** DECAY_BITS
    du = round(unity * dt * float(p.tau_syn_inv)) - 1
    dv = round(unity * dt * float(p.tau_mem_inv))
    if not (0 <= du < unity and 0 < dv <= unity):
        raise ValueError(f"decays du={du}, dv={dv} outside Lava's 12-bit range "
                         "(dt * tau_inv too small or too large)")
    alpha_s, alpha_m = (du + 1) / unity, dv / unity
    wanted = (dt * float(p.tau_syn_inv), dt * float(p.tau_mem_inv))
    if not np.allclose((alpha_s, alpha_m), wanted, rtol=1e-9, atol=0.0):
        # a 0.1% decay error alone changes ~1% of the spikes of a trained 3-layer net
        log.warning("dt * tau_inv = %.6g, %.6g are not multiples of 1/%d: the chip decays by "
                    "%.6g, %.6g instead; make 4096 dt tau_inv integers (dt = 2^-10 s for integer "
                    "tau_inv) for an exact mapping", *wanted, unity, alpha_s, alpha_m)
    return du, dv, alpha_s, alpha_m


def _levels(bits: int) -> tuple[int, int]:
    """(largest mantissa, low bits Lava drops) for mixed-sign weights of `bits` bits."""
    drop = LAVA_MAX_WEIGHT_BITS + 1 - bits if bits <= LAVA_MAX_WEIGHT_BITS else 0
    return 2 ** (bits - 1) - 1, drop


def _mantissas(ideal: np.ndarray, exponent: int, always_on: int, top: int, drop: int, floors: int
               ) -> tuple[np.ndarray, np.ndarray]:
    """Stored mantissas at `exponent` of ideal integer weights (last column: the always-on
    input's), and what rounding left out (in ideal units). `floors` Dense floors that drop bits
    are compensated by half an output LSB each on the always-on column (module docstring)."""
    raw = ideal / 2.0 ** exponent
    raw[:, -1] += floors * 2.0 ** (-exponent - 1) / always_on
    stored = np.clip(np.rint(raw / 2 ** drop), -top, top).astype(np.int64) << drop
    return stored, (raw - stored) * 2.0 ** exponent


def convert_layer(name: str, weight: np.ndarray, bias: np.ndarray, p, dt: float, bits: int,
                  input_scale: float, peak_input: int, graded: bool, spiking: bool) -> Layer:
    """One Linear + LIF (or + LI readout when not spiking) in integers (module docstring).
    input_scale: float value of one unit of the input message; peak_input: its largest |value|."""
    du, dv, alpha_s, alpha_m = _decays(p, dt)
    top, drop = _levels(bits)
    full = top * 2 ** drop  # largest stored |weight|
    # ideal integer weights are these over the state scale
    w_per_scale = weight * input_scale * alpha_m / 2 ** ACT_SHIFT
    b_per_scale = bias * alpha_m / 2 ** ACT_SHIFT
    # binary inputs: one exponent for all columns; graded inputs: the exponent fits the x
    # columns and the always-on message is chosen so that the bias column fills its range
    largest_bias = float(np.max(np.abs(b_per_scale)))
    largest = float(np.max(np.abs(w_per_scale), initial=0.0 if graded else largest_bias))
    peak_current = float(np.max(np.abs(weight) @ np.full(weight.shape[1], input_scale * peak_input)
                                + np.abs(bias)))
    gain = alpha_m if spiking else 1.0  # bound u (LIF) or v = u / alpha_m (readout)
    min_scale = gain * peak_current / alpha_s / V_LIMIT  # float bound: it fits
    fine = graded and bits <= LAVA_MAX_WEIGHT_BITS  # a fine Dense carries the rounding residual
    for _ in range(100):
        # coarsen the state by < 2x so that the largest weight fills the mantissa exactly
        scale = min_scale
        if largest > 0:
            scale = largest / (full * 2.0 ** math.floor(math.log2(largest / (min_scale * full))))
        if spiking:
            vth = min(MAX_VTH, math.floor(float(p.v_th) / (2 ** VTH_SHIFT * scale)))
            if vth < 1:
                raise ValueError(f"{name}: currents too large for a {THRESHOLD_BITS}-bit threshold")
            scale = float(p.v_th) / (2 ** VTH_SHIFT * vth)
        exponent = math.ceil(math.log2(largest / (scale * full))) if largest > 0 else 0
        fine_exp = exponent - (bits - 1) if fine else exponent  # the residual fills the mantissa
        always_on = max(1, math.ceil(largest_bias / (scale * full * 2.0 ** exponent))) if graded else 1
        ideal = np.column_stack([w_per_scale, b_per_scale / always_on]) / scale
        floors = int(exponent < -drop) + int(fine and fine_exp < -drop)
        stored, residual = _mantissas(ideal, exponent, always_on, top, drop, floors)
        fine_stored = (_mantissas(residual, fine_exp, always_on, top, drop, 0)[0] if fine
                       else np.zeros_like(stored))
        peak_message = np.append(np.full(weight.shape[1], peak_input), always_on).astype(np.float64)
        peak_a = sum(float(np.max(np.abs(w) @ peak_message)) * 2.0 ** e + 1
                     for w, e in ((stored, exponent), (fine_stored, fine_exp)))
        excess = gain * 2 ** ACT_SHIFT * peak_a / (alpha_s * alpha_m) / V_LIMIT
        if excess <= 1:
            break
        min_scale *= max(excess, 1.02)  # rounding may hide small steps: move on by 2% at least
    else:
        raise RuntimeError(f"{name}: no state scale keeps the state within {STATE_BITS} bits")
    n = weight.shape[0]
    return Layer(name=name, weight=stored[:, :-1], always_on_weight=stored[:, -1],
                 always_on_input=always_on, weight_exp=exponent, weight_bits=bits,
                 graded_input=graded, input_scale=input_scale, du=du, dv=dv,
                 vth=vth if spiking else 0, spiking=spiking, bias_mant=np.zeros(n, np.int64),
                 bias_exp=np.zeros(n, np.int64), state_scale=scale, fine_weight=fine_stored[:, :-1],
                 fine_always_on_weight=fine_stored[:, -1], fine_weight_exp=fine_exp)


def convert_mlp(mlp: SpikingMLP, prefix: str, bits: int, input_bits: int, input_range: float
                ) -> list[Layer]:
    """A SpikingMLP: graded first layer, spiking hidden layers, LI readout."""
    def arrays(linear):
        return (linear.weight.detach().double().numpy(), linear.bias.detach().double().numpy())

    top = 2 ** (input_bits - 1) - 1
    first = mlp.lifs[0]
    layers = [convert_layer(layer_name(prefix, "hidden0"), *arrays(mlp.linears[0]), first.p,
                            first.dt, bits, input_range / top, top, graded=True, spiking=True)]
    for k, (linear, lif) in enumerate(zip(mlp.linears[1:], mlp.lifs[1:]), start=1):
        layers.append(convert_layer(layer_name(prefix, f"hidden{k}"), *arrays(linear), lif.p,
                                    lif.dt, bits, 1.0, 1, graded=False, spiking=True))
    layers.append(convert_layer(layer_name(prefix, "readout"), *arrays(mlp.readout), mlp.li.p,
                                mlp.li.dt, bits, 1.0, 1, graded=False, spiking=False))
    return layers


def convert(model: SpikingModel, output, bits: int, input_bits: int = INPUT_BITS,
            synaptic_delay: int = 0) -> HardwareNet:
    """A trained spiking model and its output affine as a HardwareNet with `bits`-bit weights.
    The model's own parameters may be a b0 only (the format's one float of the combination)."""
    if bits not in WEIGHT_BITS:
        raise ValueError(f"weight bits {bits} not supported (one of {WEIGHT_BITS})")
    scalars = model.scalars()
    if set(scalars) - {"b0"}:
        raise ValueError(f"the hardware format holds a b0 only, not {sorted(set(scalars) - {'b0'})}")
    subnets = model.subnets()
    mlp = next(iter(subnets.values()))
    if not mlp.spiking:
        raise ValueError("only spiking models convert to the hardware format (this is the ANN)")
    chains = {name: convert_mlp(net, name, bits, input_bits,
                                SENSOR_RANGE if model.feed(name).sensors else COORDINATE_RANGE)
              for name, net in subnets.items()}
    b0 = float(scalars["b0"].detach()) if "b0" in scalars else 0.0
    return HardwareNet(kind=model.kind, subnets=chains, dt=mlp.lifs[0].dt, steps=mlp.steps,
                       input_bits=input_bits, decode=mlp.decode, window=mlp.window,
                       output_offset=output.offset, output_scale=output.scale, b0=b0,
                       synaptic_delay=synaptic_delay)


def convert_run(model_path, bits: int, out_path, input_bits: int = INPUT_BITS,
                synaptic_delay: int = 0) -> None:
    """The stage: model.nc -> fixed_w{bits}.nc."""
    model, _, output = load_trained(model_path)
    net = convert(model, output, bits, input_bits, synaptic_delay)
    for layer in net.layers:
        log.info("%s: weight_exp %d, vth %d, state scale %.3e", layer.name, layer.weight_exp,
                 layer.vth, layer.state_scale)
    write_fixed(net, out_path, config={"weight_bits": bits, "input_bits": input_bits,
                                       "synaptic_delay": synaptic_delay},
                inputs=[model_path])
    log.info("wrote %s (%d layers, %d-bit weights)", out_path, len(net.layers), bits)
