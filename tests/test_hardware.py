"""Hardware format, conversion and integer emulator: bit-exact against Lava's own traces,
lossless file round trip, fidelity to the float network, and clear errors on bad files."""

from pathlib import Path

import netCDF4
import numpy as np
import pytest

from fwdsnn import io
from fwdsnn.hardware.emulator import run_layers
from fwdsnn.hardware.format import Layer

GOLDEN = Path(__file__).resolve().parent / "data" / "lava_golden.nc"


def golden_layers(clip: bool) -> tuple[list[Layer], np.ndarray, dict]:
    """The golden network as format Layers (no always-on input, Lava's voltage bias), its
    integer input and Lava's traces. clip: weights pre-clipped to Lava's [-256, 255] as the
    format requires (Lava clips the same way inside the Dense)."""
    with netCDF4.Dataset(GOLDEN) as ds:
        def get(name):
            return np.asarray(ds[name][:]).astype(np.int64)
        layers, traces = [], {}
        for k in range(1, int(ds.getncattr("num_layers")) + 1):
            weight = get(f"l{k}_weights")
            n = weight.shape[0]
            layers.append(Layer(
                name=f"l{k}", weight=np.clip(weight, -256, 255) if clip else weight,
                always_on_weight=np.zeros(n, np.int64), always_on_input=0,
                weight_exp=int(get(f"l{k}_weight_exp")), weight_bits=int(get(f"l{k}_num_weight_bits")),
                graded_input=bool(get(f"l{k}_num_message_bits") > 0), input_scale=1.0,
                du=int(get(f"l{k}_du")), dv=int(get(f"l{k}_dv")), vth=int(get(f"l{k}_vth")),
                spiking=True, bias_mant=get(f"l{k}_bias_mant"), bias_exp=get(f"l{k}_bias_exp"),
                state_scale=1.0))
            traces.update({(k, t): get(f"l{k}_{t}") for t in ("a_in", "u", "v", "s")})
        return layers, get("input"), traces


def mismatches(layers, x, traces) -> int:
    ours = run_layers(layers, x, delay=1)
    return sum(int(np.sum(trace[t].astype(np.int64) != traces[k, t]))
               for k, trace in enumerate(ours, start=1) for t in ("a_in", "u", "v", "s"))


def test_engine_matches_lava_bit_for_bit():
    layers, x, traces = golden_layers(clip=False)
    assert mismatches(layers, x, traces) == 0


def test_engine_detects_a_changed_semantic():
    layers, x, traces = golden_layers(clip=False)
    layers[2].du += 1
    assert mismatches(layers, x, traces) > 0
