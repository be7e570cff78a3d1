"""Plain-numpy re-implementation of Lava's bit-accurate Dense + LIF models.

Only numpy is needed (no Lava).  This file is the executable statement of the
integer semantics that the golden traces in ``tests/data/lava_golden.nc`` were
checked against (0 mismatches, every step, every variable, every layer).  It
mirrors lava-nc 0.10 ``PyDenseModelBitAcc`` (lava/proc/dense/models.py, with
``clip_weights``/``truncate_weights`` from lava/utils/weightutils.py) and
``PyLifModelBitAcc`` (lava/proc/lif/models.py).  All arithmetic is done in
int64, so it behaves the same under numpy 1.x and 2.x.

Semantics (t = 0, 1, ... is the 0-based step index; Lava's ``time_step`` is t+1)
-------------------------------------------------------------------------------
Weights (once, before the first step), per Dense layer, with
``sign_mode`` MIXED if W has both signs, EXCITATORY if min(W) >= 0,
INHIBITORY if max(W) <= 0 (Lava's ``determine_sign_mode``; MIXED is what the
golden network uses)::

    MIXED:       W = clip(W, -256, 255)
    EXCITATORY:  W = clip(W, 0, 255)
    INHIBITORY:  W = -clip(-W, 0, 255)
    k = 8 - num_weight_bits + (1 if MIXED else 0)
    W_eff = (W >> k) << k            # arithmetic shift: floors toward -inf
                                     # (INHIBITORY: applied to -W, then negated)

So with the default num_weight_bits = 8 and mixed signs the lowest bit is
dropped (W_eff even, in [-256, 254]); num_weight_bits = 6 keeps multiples of 8.

Dense, per step t (input vector x[t] arrives at the Dense in step t)::

    acc[t]  = W_eff @ x[t]                       # graded input (num_message_bits > 0)
            = W_eff[:, x[t] != 0].sum(axis=1)    # binary spikes (num_message_bits = 0)
    out[t]  = acc[t] << weight_exp   if weight_exp > 0
              acc[t] >> -weight_exp  otherwise   # arithmetic: floors toward -inf

The Dense *sends* out[t-1] in step t (``a_buff`` holds it one step; out[-1] = 0).
So the LIF behind it sees ``a[t] = out[t-1]``: one step of delay per Dense layer.
With the input source (RingBuffer, which sends column t of its data in step t)::

    a1[t] = Dense1(x[t-1]),   a2[t] = Dense2(s1[t-1]),   a3[t] = Dense3(s2[t-1])
    a_k[0] = 0 for every layer.

LIF, per step t, with trunc0(y) = sign(y) * (|y| >> 12)  (rounds toward zero)::

    pre_u = trunc0(u[t-1] * (4096 - (du + 1))) + (a[t] << 6)
    u[t]  = pre_u - 2**24   if pre_u >  2**23
            pre_u + 2**24   if pre_u <= -2**23
            pre_u           otherwise                 # Lava's "wrap"
    b     = bias_mant << bias_exp   (bias_exp >= 0)   # per neuron
            bias_mant >> -bias_exp  (bias_exp <  0)
    pre_v = trunc0(v[t-1] * (4096 - dv)) + u[t] + b
    v'    = clip(pre_v, -(2**23 - 1), 2**23 - 1)
    s[t]  = v' > (vth << 6)
    v[t]  = 0 where s[t], else v'
    u[-1] = v[-1] = 0

Note the current decay uses du + 1 (Lava's ``ds_offset = 1``: du = 0 still
decays by 1/4096 and du = 4095 zeroes u every step), the voltage decay uses dv
(``dm_offset = 0``: dv = 0 means no leak).  Lava's current "wrap" is a single
conditional +-2**24, *not* a modulo: it keeps +2**23 (a true 24-bit wrap would
give -2**23), maps -2**23 to +2**23, and leaves |pre_u| >= 3 * 2**23 outside the
24-bit range.  The golden traces avoid those three cases (``count_events``
reports them; all zero), so a true two's-complement wrap24 matches them too.
Positive voltage saturation is only visible through the spike: 2**23 - 1 is
always above the largest threshold (131071 << 6 = 2**23 - 64).
"""
from __future__ import annotations

import numpy as np

U_MAX = 2 ** 23  # Lava's max_uv_val
V_LIMIT = 2 ** 23 - 1
DECAY_SHIFT = 12
DECAY_UNITY = 1 << DECAY_SHIFT
ACT_SHIFT = 6
VTH_SHIFT = 6
DS_OFFSET = 1  # added to du
DM_OFFSET = 0  # added to dv


def sign_mode(w: np.ndarray) -> str:
    """Lava's determine_sign_mode."""
    if np.min(w) >= 0:
        return "excitatory"
    if np.max(w) <= 0:
        return "inhibitory"
    return "mixed"


def effective_weights(w: np.ndarray, num_weight_bits: int = 8,
                      mode: str | None = None) -> np.ndarray:
    """Weights as Lava's bit-accurate Dense uses them (clip to 8 bits, then
    drop the low 8 - num_weight_bits (+1 if mixed) bits by floor-shifting)."""
    w = np.asarray(w).astype(np.int64)
    mode = mode or sign_mode(w)
    mixed = mode == "mixed"
    inhib = mode == "inhibitory"
    if inhib:
        w = -w
    w = np.clip(w, -256 if mixed else 0, 255)
    k = 8 - int(num_weight_bits) + int(mixed)
    w = (w >> k) << k
    if inhib:
        w = -w
    return w


def trunc0(y: np.ndarray) -> np.ndarray:
    """sign(y) * (|y| >> 12): division by 4096 rounding toward zero."""
    return np.sign(y) * (np.abs(y) >> DECAY_SHIFT)


def lava_wrap24(pre: np.ndarray) -> np.ndarray:
    """Lava's conditional current wrap (see module docstring)."""
    w = np.where(pre > U_MAX, pre - 2 * U_MAX, pre)
    return np.where(w <= -U_MAX, pre + 2 * U_MAX, w)


def dense_out(w_eff: np.ndarray, x: np.ndarray, weight_exp: int,
              graded: bool) -> np.ndarray:
    x = np.asarray(x).astype(np.int64)
    if graded:
        acc = w_eff @ x
    else:
        acc = w_eff[:, x != 0].sum(axis=1)
    weight_exp = int(weight_exp)
    return acc << weight_exp if weight_exp > 0 else acc >> -weight_exp


def effective_bias(bias_mant, bias_exp) -> np.ndarray:
    m = np.asarray(bias_mant).astype(np.int64)
    e = np.asarray(bias_exp).astype(np.int64)
    return np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))


def lif_step(u, v, a, du, dv, vth, bias):
    """One LIF step. Returns u, v (after reset), s, and the pre-wrap current
    and pre-clip voltage (for event counting)."""
    pre_u = trunc0(u * (DECAY_UNITY - (int(du) + DS_OFFSET))) + (a << ACT_SHIFT)
    u = lava_wrap24(pre_u)
    pre_v = trunc0(v * (DECAY_UNITY - (int(dv) + DM_OFFSET))) + u + bias
    v = np.clip(pre_v, -V_LIMIT, V_LIMIT)
    s = v > (int(vth) << VTH_SHIFT)
    v = np.where(s, 0, v)
    return u, v, s.astype(np.int64), pre_u, pre_v


def simulate(layers: list[dict], x: np.ndarray, delay: int = 1) -> dict:
    """Run the feed-forward Dense->LIF stack.

    layers: dicts with keys weights (n_out, n_in), weight_exp, num_weight_bits,
        num_message_bits, du, dv, vth, bias_mant (n_out), bias_exp (n_out).
    x: (steps, n_in0) integer input sent by the source at each step.
    delay: steps between a Dense's input and the LIF seeing it (Lava: 1).
    Returns {f"l{k}_{a_in,u,v,s,pre_u,pre_v}": (steps, n_out)} (k from 1).
    """
    x = np.asarray(x).astype(np.int64)
    steps = x.shape[0]
    out = {}
    prev = x  # (steps, n) drive of the current layer's Dense
    for k, p in enumerate(layers, start=1):
        w_eff = effective_weights(p["weights"], p["num_weight_bits"])
        graded = int(p["num_message_bits"]) > 0
        n = w_eff.shape[0]
        bias = effective_bias(p["bias_mant"], p["bias_exp"])
        d_out = np.stack([dense_out(w_eff, prev[t], p["weight_exp"], graded)
                          for t in range(steps)])
        a = np.zeros((steps, n), np.int64)
        a[delay:] = d_out[:steps - delay]
        rec = {name: np.zeros((steps, n), np.int64)
               for name in ("u", "v", "s", "pre_u", "pre_v")}
        u = np.zeros(n, np.int64)
        v = np.zeros(n, np.int64)
        for t in range(steps):
            u, v, s, pre_u, pre_v = lif_step(u, v, a[t], p["du"], p["dv"],
                                             p["vth"], bias)
            for name, val in zip(("u", "v", "s", "pre_u", "pre_v"),
                                 (u, v, s, pre_u, pre_v)):
                rec[name][t] = val
        out[f"l{k}_a_in"] = a
        for name, val in rec.items():
            out[f"l{k}_{name}"] = val
        prev = rec["s"]
    return out


def count_events(sim: dict, layers: list[dict]) -> dict:
    """Corner-case counts per layer (neuron-steps)."""
    res = {}
    for k, p in enumerate(layers, start=1):
        pre_u, pre_v = sim[f"l{k}_pre_u"], sim[f"l{k}_pre_v"]
        u, s = sim[f"l{k}_u"], sim[f"l{k}_s"]
        res[f"l{k}"] = {
            "current_wrap_pos": int(np.sum(pre_u > U_MAX)),
            "current_wrap_neg": int(np.sum(pre_u <= -U_MAX)),
            "negative_current": int(np.sum(u < 0)),
            "negative_input": int(np.sum(sim[f"l{k}_a_in"] < 0)),
            "voltage_sat_pos": int(np.sum(pre_v > V_LIMIT)),
            "voltage_sat_neg": int(np.sum(pre_v < -V_LIMIT)),
            "spikes": int(np.sum(s)),
            "spike_rate": float(np.mean(s)),
            # cases where Lava's wrap differs from a true 24-bit wrap:
            "wrap_ambiguous": int(np.sum((pre_u == U_MAX) | (pre_u == -U_MAX)
                                         | (np.abs(pre_u) >= 3 * U_MAX))),
            # Lava declares the LIF's a_in int16 but does not enforce it:
            "activation_over_int16": int(np.sum(
                np.abs(sim[f"l{k}_a_in"]) > 32767)),
            "weights_clipped": int(np.sum(
                (np.asarray(p["weights"]) > 255)
                | (np.asarray(p["weights"]) < -256))),
        }
    return res


def wrap24_twos_complement(y: np.ndarray) -> np.ndarray:
    """True 24-bit two's-complement wrap, for comparison."""
    return ((np.asarray(y) + U_MAX) % (2 * U_MAX)) - U_MAX


def check(layers: list[dict], x: np.ndarray, traces: dict) -> int:
    """Number of mismatching entries between simulate() and traces
    (keys l{k}_{a_in,u,v,s})."""
    sim = simulate(layers, x)
    bad = 0
    for k in range(1, len(layers) + 1):
        for name in ("a_in", "u", "v", "s"):
            key = f"l{k}_{name}"
            bad += int(np.sum(np.asarray(traces[key]).astype(np.int64)
                              != sim[key]))
    return bad
