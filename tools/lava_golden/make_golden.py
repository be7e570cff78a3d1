"""Make the golden traces tests/data/lava_golden.nc from Lava's bit-accurate
Loihi-2 CPU models (lava-nc 0.10, Python 3.10; see README.md beside this file).

Network: RingBuffer (graded integer input, 6 channels) -> Dense -> LIF(8)
-> Dense -> LIF(7) -> Dense -> LIF(5), run with PyDenseModelBitAcc and
PyLifModelBitAcc.  Recorded at every step with Monitor processes: for each layer
the activation the LIF receives (the Dense's a_out port), u, v (state after the
step, v after reset) and the spikes (the LIF's s_out port); also the input as
sent by the source.  A second, monitor-free copy of the network is run one step
at a time with Var.get() of u, v and Dense.a_buff to cross-check the monitor
timing.  Then reference_numpy.py (numpy only) recomputes everything and the
script fails unless there are 0 mismatches.

Usage (from the repository root):
    /work/lava-venv/bin/python tools/lava_golden/make_golden.py \
        [--out tests/data/lava_golden.nc] [--steps 80]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import reference_numpy as ref  # noqa: E402

SEED = 20240611
SIZES = [6, 8, 7, 5]


def build_params(steps: int, seed: int = SEED):
    """Network parameters (exactly as given to Lava) and the input sequence."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 64, size=(steps, SIZES[0]))
    x[rng.random((steps, SIZES[0])) < 0.3] = 0
    x[20:26] = 0  # a quiet stretch: decays without drive
    layers = []
    # Layer 1: graded input, weight_exp 0, full 8 bits (mixed: low bit dropped),
    # du = 0 (u still decays by 1/4096), dv = 4095; large drive wraps u.
    layers.append(dict(
        weights=rng.integers(-256, 256, size=(SIZES[1], SIZES[0])),
        weight_exp=0, num_weight_bits=8, num_message_bits=8,
        du=0, dv=4095, vth=60000,
        bias_mant=rng.integers(-4096, 4096, SIZES[1]),
        bias_exp=rng.integers(0, 8, SIZES[1])))
    # Layer 2: binary spikes, weight_exp -4 (floor shift of negative sums),
    # num_weight_bits 6 (mixed: low 3 bits dropped), du = 4095 (u = a<<6),
    # dv = 0 (no leak): big negative biases saturate v at -(2**23 - 1).
    layers.append(dict(
        weights=rng.integers(-256, 256, size=(SIZES[2], SIZES[1])),
        weight_exp=-4, num_weight_bits=6, num_message_bits=0,
        du=4095, dv=0, vth=150,
        bias_mant=np.array([-4096, 1500, -700, 300, 4095, -2000, 50]),
        bias_exp=np.array([7, 0, 3, 5, 0, 6, 1])))
    # Layer 3: binary spikes, weight_exp +5 (u wraps), two weights outside the
    # 8-bit range (clipped by Lava to [-256, 255]), moderate decays.
    w3 = rng.integers(-256, 256, size=(SIZES[3], SIZES[2]))
    w3[0, 0] = 300
    w3[1, 2] = -300
    layers.append(dict(
        weights=w3, weight_exp=5, num_weight_bits=8, num_message_bits=0,
        du=200, dv=1500, vth=90000,
        bias_mant=np.array([100, -100, 0, 4095, -4096]),
        bias_exp=np.array([2, 4, 0, 3, 2])))
    for p in layers:
        p["weights"] = p["weights"].astype(np.int64)
        p["bias_mant"] = p["bias_mant"].astype(np.int64)
        p["bias_exp"] = p["bias_exp"].astype(np.int64)
    return layers, x.astype(np.int64)


def build_network(layers, x):
    from lava.proc.dense.process import Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF

    src = RingBuffer(data=x.T.astype(np.int32))  # (channels, steps)
    prev_port = src.s_out
    dense, lif = [], []
    for k, p in enumerate(layers, start=1):
        d = Dense(weights=p["weights"].astype(np.int32),
                  weight_exp=int(p["weight_exp"]),
                  num_weight_bits=int(p["num_weight_bits"]),
                  num_message_bits=int(p["num_message_bits"]),
                  name=f"dense{k}")
        n = p["weights"].shape[0]
        l_ = LIF(shape=(n,), du=int(p["du"]), dv=int(p["dv"]),
                 vth=int(p["vth"]),
                 bias_mant=p["bias_mant"].astype(np.int32),
                 bias_exp=p["bias_exp"].astype(np.int32),
                 name=f"lif{k}")
        prev_port.connect(d.s_in)
        d.a_out.connect(l_.a_in)
        prev_port = l_.s_out
        dense.append(d)
        lif.append(l_)
    return src, dense, lif


def run_cfg():
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.models import PyDenseModelBitAcc
    from lava.proc.dense.process import Dense
    from lava.proc.lif.models import PyLifModelBitAcc
    from lava.proc.lif.process import LIF

    return Loihi2SimCfg(select_tag="fixed_pt",
                        exception_proc_model_map={Dense: PyDenseModelBitAcc,
                                                  LIF: PyLifModelBitAcc})


def run_monitored(layers, x):
    from lava.magma.core.run_conditions import RunSteps
    from lava.proc.monitor.process import Monitor

    steps = x.shape[0]
    src, dense, lif = build_network(layers, x)
    mons = {}

    def probe(key, target):
        m = Monitor()
        m.probe(target, steps)
        mons[key] = m

    probe("input", src.s_out)
    for k, (d, l_) in enumerate(zip(dense, lif), start=1):
        probe(f"l{k}_a_in", d.a_out)  # what the LIF receives in that step
        probe(f"l{k}_u", l_.u)
        probe(f"l{k}_v", l_.v)
        probe(f"l{k}_s", l_.s_out)
    src.run(condition=RunSteps(num_steps=steps), run_cfg=run_cfg())
    out = {}
    for key, m in mons.items():
        var = m.out_read_0 if key.endswith(("_a_in", "_s")) or key == "input" \
            else m.var_read_0
        data = np.asarray(var.get())
        data = data.reshape(steps, -1)
        # Monitor stores float64: exact for these (< 2**53) integers.
        assert np.all(data == np.round(data)), key
        out[key] = np.round(data).astype(np.int64)
    src.stop()
    return out


def run_stepwise(layers, x):
    """Same network, no monitors; one step per run(), reading Vars."""
    from lava.magma.core.run_conditions import RunSteps

    steps = x.shape[0]
    src, dense, lif = build_network(layers, x)
    cfg = run_cfg()
    out = {f"l{k}_{n}": [] for k in range(1, len(layers) + 1)
           for n in ("u", "v", "a_buff")}
    for _ in range(steps):
        src.run(condition=RunSteps(num_steps=1), run_cfg=cfg)
        for k, (d, l_) in enumerate(zip(dense, lif), start=1):
            out[f"l{k}_u"].append(np.asarray(l_.u.get()))
            out[f"l{k}_v"].append(np.asarray(l_.v.get()))
            out[f"l{k}_a_buff"].append(np.asarray(d.a_buff.get()))
    src.stop()
    return {k: np.round(np.array(v)).astype(np.int64) for k, v in out.items()}


def empirical_delay(layers, x, tr) -> int:
    """Smallest d in 0..3 with a1[t] == Dense1(x[t-d]) (0 for t < d) at all t."""
    p = layers[0]
    w_eff = ref.effective_weights(p["weights"], p["num_weight_bits"])
    d_out = np.stack([ref.dense_out(w_eff, xt, p["weight_exp"], True)
                      for xt in tr["input"]])
    found = []
    for d in range(4):
        shifted = np.zeros_like(d_out)
        shifted[d:] = d_out[:len(d_out) - d]
        if np.array_equal(shifted, tr["l1_a_in"]):
            found.append(d)
    if len(found) != 1:
        raise SystemExit(f"cannot determine the Dense delay: {found}")
    return found[0]


TIMING = (
    "Steps are 0-based, t = 0..steps-1 (Lava time_step = t+1). The source "
    "(RingBuffer) sends input[t] in step t. Each Dense sends in step t the "
    "result of the input it received in step t-1 (Lava's a_buff; 0 in step "
    "0): one step of delay per Dense. So l1_a_in[t] = Dense1(input[t-1]), "
    "lk_a_in[t] = Densek(l(k-1)_s[t-1]), and lk_a_in[0] = 0. Within step t "
    "the LIF uses lk_a_in[t]; lk_u[t], lk_v[t] are the states at the end of "
    "step t (v after reset to 0), lk_s[t] the spikes emitted in step t. "
    "Empirically determined: Dense delay = {delay} step(s); stepwise Var.get() "
    "after each step agreed with the monitors and Dense.a_buff after step t "
    "equals lk_a_in[t+1]."
)

SEMANTICS = (
    "Wk_eff = clip(Wk,-256,255) (mixed sign), then (W>>k8)<<k8 with "
    "k8 = 8-num_weight_bits+1 (floor); out = (Wk_eff @ x) << weight_exp "
    "(weight_exp>0) or >> -weight_exp (arithmetic, floor); graded input "
    "(num_message_bits>0) is a dot product, binary spikes sum the columns of "
    "the spiking inputs. LIF: trunc0(y)=sign(y)*(|y|>>12); "
    "pre_u = trunc0(u*(4096-(du+1))) + (a<<6); u = pre_u-2^24 if pre_u>2^23, "
    "pre_u+2^24 if pre_u<=-2^23, else pre_u; "
    "v = clip(trunc0(v*(4096-dv)) + u + (bias_mant<<bias_exp), -(2^23-1), "
    "2^23-1); s = v > vth<<6; v[s] = 0. See tools/lava_golden/"
    "reference_numpy.py."
)


def write_nc(path, layers, x, tr, attrs):
    import netCDF4

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with netCDF4.Dataset(path, "w", format="NETCDF4") as ds:
        for k, v in attrs.items():
            ds.setncattr(k, v)
        ds.createDimension("step", x.shape[0])
        ds.createDimension("l1_in", x.shape[1])
        v = ds.createVariable("input", "i4", ("step", "l1_in"))
        v[:] = x
        v.long_name = "integer input sent by the source in each step " \
            "(graded, to Dense 1)"
        for k, p in enumerate(layers, start=1):
            n_out, n_in = p["weights"].shape
            dout, din = f"l{k}_neuron", f"l{k}_in"
            ds.createDimension(dout, n_out)
            if din not in ds.dimensions:
                ds.createDimension(din, n_in)
            v = ds.createVariable(f"l{k}_weights", "i4", (dout, din))
            v[:] = p["weights"]
            v.long_name = "weight mantissas exactly as given to Lava " \
                "(row = post-synaptic neuron); Lava clips and truncates them"
            v = ds.createVariable(f"l{k}_weights_eff", "i4", (dout, din))
            v[:] = ref.effective_weights(p["weights"], p["num_weight_bits"])
            v.long_name = "weights after Lava's clip_weights/truncate_weights" \
                " (derived, for convenience)"
            for name in ("weight_exp", "num_weight_bits", "num_message_bits",
                         "du", "dv", "vth"):
                v = ds.createVariable(f"l{k}_{name}", "i4", ())
                v.assignValue(int(p[name]))
            v = ds.createVariable(f"l{k}_sign_mode", str, ())
            v[...] = np.array(ref.sign_mode(p["weights"]), dtype=object)
            for name in ("bias_mant", "bias_exp"):
                v = ds.createVariable(f"l{k}_{name}", "i4", (dout,))
                v[:] = p[name]
            for name, dt, desc in (
                    ("a_in", "i4", "activation received by the LIF in step t "
                     "(Dense a_out port)"),
                    ("u", "i4", "LIF current at the end of step t"),
                    ("v", "i4", "LIF voltage at the end of step t (after "
                     "reset)"),
                    ("s", "i1", "spike emitted in step t (0/1)")):
                v = ds.createVariable(f"l{k}_{name}", dt, ("step", dout),
                                      zlib=True)
                v[:] = tr[f"l{k}_{name}"]
                v.long_name = desc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/data/lava_golden.nc")
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--no-stepwise", action="store_true",
                    help="skip the one-step-at-a-time cross-check")
    args = ap.parse_args()

    from importlib.metadata import version

    layers, x = build_params(args.steps)
    tr = run_monitored(layers, x)
    assert np.array_equal(tr["input"], x), "source did not send input[t] in step t"
    delay = empirical_delay(layers, x, tr)
    print(f"Dense delay (empirical): {delay} step(s)")

    if not args.no_stepwise:
        sw = run_stepwise(layers, x)
        bad = 0
        for k in range(1, len(layers) + 1):
            bad += int(np.sum(sw[f"l{k}_u"] != tr[f"l{k}_u"]))
            bad += int(np.sum(sw[f"l{k}_v"] != tr[f"l{k}_v"]))
            bad += int(np.sum(sw[f"l{k}_a_buff"][:-1] != tr[f"l{k}_a_in"][1:]))
        print(f"stepwise Var.get() vs monitors: {bad} mismatches")
        if bad:
            raise SystemExit("monitor timing check failed")

    sim = ref.simulate(layers, x, delay=delay)
    mism = {}
    for k in range(1, len(layers) + 1):
        for name in ("a_in", "u", "v", "s"):
            key = f"l{k}_{name}"
            mism[key] = int(np.sum(sim[key] != tr[key]))
    total = sum(mism.values())
    print("mismatches numpy reference vs Lava:", mism, "total", total)
    events = ref.count_events(sim, layers)
    for k, e in events.items():
        print(k, e)
    if total:
        raise SystemExit("reference_numpy disagrees with Lava")
    # Stay where Lava agrees with 24-bit hardware state and 16-bit activations.
    assert all(e["wrap_ambiguous"] == 0 for e in events.values())
    assert all(e["activation_over_int16"] == 0 for e in events.values())

    attrs = {
        "title": "Golden traces from Lava's bit-accurate Loihi-2 CPU models "
                 "(PyDenseModelBitAcc, PyLifModelBitAcc)",
        "lava_version": version("lava-nc"),
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "command": ("python tools/lava_golden/make_golden.py " +
                   " ".join(sys.argv[1:])).strip(),
        "run_config": "Loihi2SimCfg(select_tag='fixed_pt', "
                      "exception_proc_model_map={Dense: PyDenseModelBitAcc, "
                      "LIF: PyLifModelBitAcc})",
        "seed": SEED,
        "num_layers": np.int32(len(layers)),
        "sizes": np.array(SIZES, dtype=np.int32),
        "dense_delay_steps": np.int32(delay),
        "timing_convention": TIMING.format(delay=delay),
        "semantics": SEMANTICS,
        "reference_mismatches": np.int32(total),
        "layer_variables": "lK_weights (lK_neuron, lK_in), lK_weights_eff, "
                           "lK_weight_exp, lK_num_weight_bits, "
                           "lK_num_message_bits, lK_sign_mode, lK_du, lK_dv, "
                           "lK_vth, lK_bias_mant (lK_neuron), lK_bias_exp, "
                           "traces lK_a_in, lK_u, lK_v, lK_s (step, lK_neuron)",
    }
    for k, e in events.items():
        for name in ("current_wrap_pos", "current_wrap_neg",
                     "negative_current", "voltage_sat_pos", "voltage_sat_neg",
                     "spikes"):
            attrs[f"{k}_events_{name}"] = np.int32(e[name])
    write_nc(args.out, layers, x, tr, attrs)
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes)")


if __name__ == "__main__":
    main()
