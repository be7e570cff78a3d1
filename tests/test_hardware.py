"""Hardware format, conversion and integer emulator: bit-exact against Lava's own traces,
lossless file round trip, fidelity to the float network, and clear errors on bad files."""

import json
from dataclasses import fields
from pathlib import Path

import netCDF4
import numpy as np
import pytest
import torch

from fwdsnn import io
from fwdsnn.data import Affine, make_problem
from fwdsnn.hardware.convert import convert, convert_run
from fwdsnn.hardware.emulator import effective_weights, emulate, emulate_run, run_layers
from fwdsnn.hardware.format import HardwareNet, Layer, read_fixed, to_dataset, validate, write_fixed
from fwdsnn.snn.models import build_model
from fwdsnn.snn.record import record_spikes
from fwdsnn.snn.spike import make_surrogate
from fwdsnn.weights import model_dataset

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
                state_scale=1.0, fine_weight=np.zeros_like(weight), fine_always_on_weight=np.zeros(n, np.int64),
                fine_weight_exp=0))
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


def test_golden_network_through_the_file_format(tmp_path):
    layers, x, traces = golden_layers(clip=True)
    net = HardwareNet(kind="spiking_mlp", subnets={"": layers}, dt=1e-3, steps=len(x), input_bits=8,
                      decode="last", window=1, output_offset=0.0, output_scale=1.0, synaptic_delay=1)
    write_fixed(net, tmp_path / "golden.nc", config={})
    back = read_fixed(tmp_path / "golden.nc")
    assert mismatches(back.subnets[""], x, traces) == 0


# --- converted networks -----------------------------------------------------------------------

SMALL = {"width": 16, "depth": 2, "steps": 16, "gain": 9.0, "decode": "mean", "window": 8,
         "neuron": {}, "latent": 6, "rank": 5}
SHAPES = {"spiking_mlp": {"in_features": 2, "out_features": 3},
          "spiking_deeponet": {"n_sensors": 6, "coord_dim": 2},
          "spiking_seponet": {"n_sensors": 6, "n_axes": 2}}


def random_model(kind: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(kind, SHAPES[kind], SMALL, make_surrogate({"kind": "fast_sigmoid", "slope": 10.0}),
                       spiking=True).double().eval()


def random_inputs(kind: str, seed: int = 1) -> tuple:
    g = torch.Generator().manual_seed(seed)

    def u(*shape, spread=1.0):
        return spread * (2 * torch.rand(*shape, generator=g, dtype=torch.float64) - 1)
    return {"spiking_mlp": (u(40, 2),),
            "spiking_deeponet": (u(12, 6, spread=2.0), u(15, 2)),
            "spiking_seponet": (u(12, 6, spread=2.0), [u(9, 1), u(7, 1)])}[kind]


def numpy_inputs(inputs: tuple) -> tuple:
    return tuple([t.numpy() for t in x] if isinstance(x, list) else x.numpy() for x in inputs)


def agreement(kind: str, bits: int) -> tuple[float, dict, np.ndarray, np.ndarray]:
    model, inputs = random_model(kind), random_inputs(kind)
    net = convert(model, Affine(0.0, 1.0), bits)
    output, spikes = emulate(net, numpy_inputs(inputs), delay=0)
    reference = {k: v.numpy() > 0 for k, v in record_spikes(model, inputs).items()}
    assert set(spikes) == set(reference)
    same = sum(int(np.sum(spikes[k] == reference[k])) for k in spikes)
    rates = {k: float(v.mean()) for k, v in reference.items()}
    with torch.no_grad():
        expected = model(*inputs).numpy()
    return same / sum(v.size for v in spikes.values()), rates, output, expected


def test_emulator_spikes_like_the_float_mlp():
    share, rates, output, expected = agreement("spiking_mlp", 16)
    assert all(0.03 < r < 0.3 for r in rates.values()), rates
    assert share >= 0.99, share
    assert np.max(np.abs(output - expected)) < 0.1 * np.max(np.abs(expected))


@pytest.mark.parametrize("kind", ["spiking_deeponet", "spiking_seponet"])
def test_emulator_spikes_like_the_float_operator_nets(kind):
    share, _, output, expected = agreement(kind, 16)
    assert share >= 0.99, share
    assert output.shape == expected.shape


def test_fewer_weight_bits_cost_agreement():
    """The agreement measure can fail: 2-bit weights change the spikes."""
    assert agreement("spiking_mlp", 2)[0] < agreement("spiking_mlp", 16)[0]


def assert_same_integers(a: HardwareNet, b: HardwareNet):
    assert a.subnets.keys() == b.subnets.keys()
    for la, lb in zip(a.layers, b.layers):
        for f in fields(Layer):
            va, vb = getattr(la, f.name), getattr(lb, f.name)
            assert np.array_equal(va, vb), (la.name, f.name)
    for f in fields(HardwareNet):
        if f.name != "subnets":
            assert getattr(a, f.name) == getattr(b, f.name), f.name


def test_round_trip_keeps_every_integer(tmp_path):
    net = convert(random_model("spiking_seponet"), Affine(0.5, 2.0), 8)
    write_fixed(net, tmp_path / "fixed_w8.nc", config={"weight_bits": 8})
    back = read_fixed(tmp_path / "fixed_w8.nc")
    assert_same_integers(net, back)
    assert [l.name for l in back.layers][:3] == ["branch.hidden0", "branch.hidden1", "branch.readout"]
    for layer in back.layers:  # 8-bit weights survive Lava's clip and bit dropping unchanged
        assert np.array_equal(effective_weights(layer.weight, 8), layer.weight)
        assert np.max(np.abs(layer.weight)) == 254 or layer.weight_bits != 8


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8, 12, 16])
def test_every_width_converts_within_its_range(bits):
    net = convert(random_model("spiking_mlp"), Affine(0.0, 1.0), bits)
    validate(to_dataset(net), "converted")
    top = 2 ** (bits - 1) - 1
    for layer in net.layers:
        step = 2 ** max(0, 9 - bits)
        for weight in (layer.weight, layer.fine_weight):
            assert np.all(weight % step == 0) and np.max(np.abs(weight)) <= top * step
        # a fine Dense exactly where one 8-bit-or-narrower Dense meets graded input
        assert layer.has_fine_dense == (layer.graded_input and bits <= 8), layer.name


def first_layer_weights(layer, fine: bool) -> np.ndarray:
    """The float weights (current per unit of input) that the first layer's integers realise."""
    w = layer.weight * 2.0 ** layer.weight_exp
    if fine:
        w = w + layer.fine_weight * 2.0 ** layer.fine_weight_exp
    alpha_m = layer.dv / 4096
    return w * layer.state_scale * 2 ** 6 / (alpha_m * layer.input_scale)


@pytest.mark.parametrize("bits", [4, 8])
def test_fine_dense_carries_the_first_layers_rounding(bits):
    """With the fine Dense the graded layer's weights are 2^(bits-1) times finer than one
    Dense of `bits` bits can hold; without it the error is the coarse half step."""
    model = random_model("spiking_mlp")
    layer = convert(model, Affine(0.0, 1.0), bits).layers[0]
    weight = model.linears[0].weight.detach().numpy()
    coarse_step = np.max(np.abs(weight)) / (2 ** (bits - 1) - 1)
    coarse = np.max(np.abs(first_layer_weights(layer, fine=False) - weight))
    both = np.max(np.abs(first_layer_weights(layer, fine=True) - weight))
    assert 0.05 * coarse_step < coarse <= 0.5 * coarse_step * (1 + 1e-9)
    assert both <= 0.5 * coarse_step / 2 ** (bits - 1) * (1 + 1e-9)


def test_fine_dense_keeps_first_layer_spikes():
    """The emulator adds the fine Dense: without it 8-bit first-layer spikes drift from the float's."""
    model, inputs = random_model("spiking_mlp"), random_inputs("spiking_mlp")
    net = convert(model, Affine(0.0, 1.0), 8)
    reference = record_spikes(model, inputs)["hidden0"].numpy() > 0
    with_fine = np.mean(emulate(net, numpy_inputs(inputs), delay=0)[1]["hidden0"] == reference)
    net.layers[0].fine_weight[:] = 0
    net.layers[0].fine_always_on_weight[:] = 0
    without = np.mean(emulate(net, numpy_inputs(inputs), delay=0)[1]["hidden0"] == reference)
    assert with_fine > without and with_fine >= 0.999, (with_fine, without)


@pytest.fixture()
def fixed_file(tmp_path) -> Path:
    path = tmp_path / "fixed_w8.nc"
    write_fixed(convert(random_model("spiking_mlp"), Affine(0.0, 1.0), 8), path, config={})
    return path


@pytest.mark.parametrize("change, message", [
    (lambda ds: ds.drop_vars("hidden1.du"), "missing variable 'hidden1.du'"),
    (lambda ds: ds.assign({"hidden0.weight": ds["hidden0.weight"].where(False, 300)}),
     r"hidden0.weight has \d+ value\(s\) outside \[-256, 255\]"),
    (lambda ds: ds.assign({"readout.vth": ds["readout.vth"] * 0 - 1}), r"readout.vth has 1 value"),
    (lambda ds: ds.assign_attrs(current_overflow="saturate"), "'current_overflow'"),
])
def test_bad_files_fail_naming_the_problem(fixed_file, tmp_path, change, message):
    ds = change(io.read_dataset(fixed_file))
    io.write_dataset(ds, tmp_path / "bad.nc", stage="hardware", config={})
    with pytest.raises(io.DatasetError, match=message):
        read_fixed(tmp_path / "bad.nc")


def test_stages_convert_then_emulate(parabola, tmp_path):
    reference = io.read_dataset(parabola)
    problem = make_problem(reference, "spiking_mlp")
    torch.manual_seed(0)
    model = build_model("spiking_mlp", problem.model_shapes(), SMALL, None, spiking=True)
    model_ds = model_dataset(model, {**SMALL, "kind": "spiking_mlp"},
                             {"spiking": True, "surrogate": {"kind": "fast_sigmoid", "slope": 10.0}},
                             problem.model_shapes(), problem.inputs, problem.output)
    io.write_dataset(model_ds, tmp_path / "model.nc", stage="train", config={})
    pairs = [(tmp_path / f"fixed_w{b}.nc", tmp_path / f"emulated_w{b}.nc") for b in (2, 16)]
    for bits, (fixed, _) in zip((2, 16), pairs):
        convert_run(tmp_path / "model.nc", bits, fixed)
    emulate_run(tmp_path / "model.nc", pairs, parabola)
    w2, w16 = (io.read_dataset(out, stage="hardware") for _, out in pairs)
    assert w16["u_pred"].shape == (int((reference["split"] == 1).sum()),)
    assert np.isfinite(float(w16["rel_l2"])) and list(w16["layer"].values) == ["hidden0", "hidden1"]
    assert json.loads(w16.attrs["inputs_sha256"]).keys() == {str(tmp_path / "model.nc"), str(pairs[1][0]),
                                                             str(parabola)}
    # the stage's spike agreement: 16-bit weights spike as the float network, 2-bit ones do not
    assert np.all(w16["spike_agreement"] >= 0.99) and w16.attrs["spike_agreement_all"] >= 0.99
    assert w2.attrs["spike_agreement_all"] < w16.attrs["spike_agreement_all"] - 0.01
