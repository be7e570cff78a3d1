"""NIR export: the file reads back with nir.read, carries Norse's parameters in NIR's units, and
a simulator that knows only the file reproduces the network's output."""

import nir
import numpy as np
import pytest
import torch

from fwdsnn import io
from fwdsnn.data import Affine
from fwdsnn.hardware.nir_export import export_nir
from fwdsnn.snn.lif import bare_spikes
from fwdsnn.snn.models import build_model
from fwdsnn.snn.spike import make_surrogate
from fwdsnn.weights import model_dataset
from nir_reader import simulate
from test_models import SMALL, SURROGATES, inputs

# off the defaults, so a swapped or inverted constant shows
NEURON = {"tau_syn_inv": 250.0, "tau_mem_inv": 80.0, "v_th": 0.8, "v_leak": 0.05,
          "v_reset": -0.1, "dt": 2e-3}
SHAPES = {"spiking_mlp": {"in_features": 2, "out_features": 3},
          "spiking_deeponet": {"n_sensors": 6, "coord_dim": 2},
          "spiking_seponet": {"n_sensors": 6, "n_axes": 2}}
QUANTITIES = {"spiking_mlp": ["x", "y"], "spiking_deeponet": ["x", "t", "a"],
              "spiking_seponet": ["x", "t", "a"]}
SUBNETS = {"spiking_mlp": [""], "spiking_deeponet": ["branch", "trunk"],
           "spiking_seponet": ["branch", "trunk0", "trunk1"]}
F32 = np.float32  # the network's constants are float32 tensors; the export keeps their values
CHAIN = ["input", "linear0", "lif0", "linear1", "lif1", "readout", "li", "output"]
TYPES = [nir.Input, nir.Affine, nir.CubaLIF, nir.Affine, nir.CubaLIF, nir.Affine, nir.CubaLI, nir.Output]


def write_model(kind, path, spiking=True, **changes) -> torch.nn.Module:
    """A small random network of `kind` written as a training run's model.nc."""
    torch.manual_seed(0)
    cfg = {**SMALL, "neuron": NEURON, **changes, "kind": kind}
    method = {"spiking": spiking, "surrogate": SURROGATES[0]}
    model = build_model(kind, SHAPES[kind], cfg, make_surrogate(SURROGATES[0]), spiking)
    if hasattr(model, "b0"):
        with torch.no_grad():
            model.b0.fill_(0.3)
    scalers = {name: Affine(0.1, 2.0) for name in QUANTITIES[kind]}
    ds = model_dataset(model, cfg, method, SHAPES[kind], scalers, Affine(0.5, 3.0))
    io.write_dataset(ds, path, stage="train", config={}, seed=0)
    return model


def subnets(model) -> dict:
    return model.subnets()


def exported(kind, tmp_path, **changes):
    model = write_model(kind, tmp_path / "model.nc", **changes)
    export_nir(tmp_path / "model.nc", tmp_path / "model.nir")
    return model, nir.read(tmp_path / "model.nir")


@pytest.mark.parametrize("kind", list(SHAPES))
def test_export_reads_back_with_norse_parameters_in_nir_units(kind, tmp_path):
    model, graph = exported(kind, tmp_path)
    names = SUBNETS[kind]
    if kind != "spiking_mlp":
        assert set(graph.edges) == {e for n in names for e in [(f"{n}_input", n), (n, f"{n}_output")]}
        assert graph.metadata["b0"] == pytest.approx(0.3) and "combination" in graph.metadata
    assert graph.metadata["kind"] == kind and graph.metadata["stage"] == "nir"
    for name in names:
        sub, net = graph.nodes[name] if name else graph, subnets(model)[name]
        assert {n: type(node) for n, node in sub.nodes.items()} == dict(zip(CHAIN, TYPES))
        assert sub.edges == list(zip(CHAIN[:-1], CHAIN[1:]))
        assert (sub.metadata["dt"], sub.metadata["steps"], sub.metadata["window"]) == (2e-3, 12, 4)
        for node, linear in zip(["linear0", "linear1", "readout"], [*net.linears, net.readout]):
            np.testing.assert_array_equal(sub.nodes[node].weight, linear.weight.detach().numpy())
            np.testing.assert_array_equal(sub.nodes[node].bias, linear.bias.detach().numpy())
        for node, n in [("lif0", 8), ("lif1", 8), ("li", net.readout.out_features)]:
            p = sub.nodes[node]
            np.testing.assert_allclose(p.tau_syn, np.full(n, 1 / 250.0), rtol=1e-15)  # seconds
            np.testing.assert_allclose(p.tau_mem, np.full(n, 1 / 80.0), rtol=1e-15)
            np.testing.assert_allclose(p.w_in, np.full(n, (1 / 250.0) / 2e-3), rtol=1e-15)
            np.testing.assert_array_equal(p.r, np.ones(n))
            np.testing.assert_array_equal(p.v_leak, np.full(n, F32(0.05)))
        np.testing.assert_array_equal(sub.nodes["lif1"].v_threshold, np.full(8, F32(0.8)))
        np.testing.assert_array_equal(sub.nodes["lif1"].v_reset, np.full(8, F32(-0.1)))


@pytest.mark.parametrize("kind,decode", [("spiking_mlp", "mean"), ("spiking_mlp", "last"),
                                         ("spiking_deeponet", "mean"), ("spiking_seponet", "mean")])
def test_simulating_the_file_alone_reproduces_the_network(kind, decode, tmp_path):
    model, graph = exported(kind, tmp_path, decode=decode, steps=24, window=8)
    model = model.double()
    args = inputs(kind)
    with torch.no_grad(), bare_spikes(model):
        expected = model(*args).numpy()
    assert all(counts.sum() > 0 for counts in model.last_spike_counts.values())
    if kind == "spiking_mlp":
        got = simulate(graph, args[0].numpy())
    else:
        trunk_inputs = args[1] if isinstance(args[1], list) else [args[1]]
        branch = simulate(graph.nodes["branch"], args[0].numpy())
        trunks = [simulate(graph.nodes[name], x.numpy()) for name, x in zip(SUBNETS[kind][1:], trunk_inputs)]
        grid = "ijk"[:len(trunks)]
        got = np.einsum(f"fr,{','.join(c + 'r' for c in grid)}->f{grid}", branch, *trunks)
        got = got.reshape(expected.shape) + graph.metadata["b0"]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_the_ann_twin_is_refused(tmp_path):
    write_model("spiking_mlp", tmp_path / "model.nc", spiking=False)
    with pytest.raises(ValueError, match="tanh"):
        export_nir(tmp_path / "model.nc", tmp_path / "model.nir")
