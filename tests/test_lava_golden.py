"""The committed Lava golden traces agree bit-for-bit with the numpy reference
(tools/lava_golden/reference_numpy.py), and they exercise the corners."""

import importlib.util
from pathlib import Path

import netCDF4
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "data" / "lava_golden.nc"
PARAMS = ("weights", "weight_exp", "num_weight_bits", "num_message_bits",
          "du", "dv", "vth", "bias_mant", "bias_exp")
TRACES = ("a_in", "u", "v", "s")


def _reference():
    spec = importlib.util.spec_from_file_location(
        "reference_numpy", REPO / "tools" / "lava_golden" / "reference_numpy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def golden():
    with netCDF4.Dataset(GOLDEN) as ds:
        n = int(ds.getncattr("num_layers"))
        layers = [{p: np.asarray(ds[f"l{k}_{p}"][:]) for p in PARAMS}
                  for k in range(1, n + 1)]
        x = np.asarray(ds["input"][:])
        traces = {f"l{k}_{t}": np.asarray(ds[f"l{k}_{t}"][:])
                  for k in range(1, n + 1) for t in TRACES}
        attrs = {a: ds.getncattr(a) for a in ds.ncattrs()}
    return layers, x, traces, attrs


def test_reference_matches_lava_bit_for_bit(golden):
    layers, x, traces, attrs = golden
    ref = _reference()
    assert int(attrs["dense_delay_steps"]) == 1
    assert x.shape[0] >= 60
    assert ref.check(layers, x, traces) == 0


def test_golden_exercises_corners(golden):
    layers, x, _, _ = golden
    ref = _reference()
    ev = ref.count_events(ref.simulate(layers, x), layers)
    total = {key: sum(e[key] for e in ev.values()) for key in next(iter(ev.values()))}
    for key in ("current_wrap_pos", "current_wrap_neg", "negative_current",
                "voltage_sat_pos", "voltage_sat_neg", "weights_clipped"):
        assert total[key] > 0, key
    assert total["wrap_ambiguous"] == 0
    assert all(e["spikes"] > 0 for e in ev.values())


def test_semantic_changes_are_detected(golden):
    """Rounding the decay toward -inf instead of zero breaks the match."""
    layers, x, traces, _ = golden
    ref = _reference()
    ref.trunc0 = lambda y: y >> ref.DECAY_SHIFT
    assert ref.check(layers, x, traces) > 0
