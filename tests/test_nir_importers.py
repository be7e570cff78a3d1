"""NIR read back by independent frameworks: what norse's and snntorch's importers make of
fwdsnn's model.nir, pinned so that a change of either importer (or of the export) shows.

norse.torch.from_nir reproduces the hidden layers bit for bit when it is given the graph's dt
and the neurons have v_leak = 0 and v_reset = 0 (fwdsnn's defaults); it drops the CubaLI
readout, ignores v_reset and treats v_leak as the synaptic current's rest value. snntorch's
import_from_nir reads none of our graphs (README, "NIR read back by other frameworks")."""

import warnings

import nir
import numpy as np
import pytest
import torch
from norse.torch import from_nir
from snntorch.import_nir import import_from_nir

from fwdsnn.hardware.nir_export import export_nir
from fwdsnn.snn.lif import bare_spikes
from test_models import inputs
from test_nir_export import write_model

STEPS = 32


def exported(tmp_path, neuron: dict):
    model = write_model("spiking_mlp", tmp_path / "model.nc", neuron=neuron, steps=STEPS, window=8)
    export_nir(tmp_path / "model.nc", tmp_path / "model.nir")
    return model, nir.read(tmp_path / "model.nir")


@torch.no_grad()
def readout_currents(model, x) -> torch.Tensor:
    """(steps, B, out): what fwdsnn's readout Linear feeds its LI at every step."""
    with bare_spikes(model):
        h = model.linears[0](x).expand(model.steps, len(x), -1)
        for k, (layer, lif) in enumerate(zip(model.linears, model.lifs)):
            h, _ = lif(layer(h) if k else h)
        assert h.sum() > 0, "silent network: the comparison would prove nothing"
        return model.readout(h)


@torch.no_grad()
def norse_run(graph, x, **options) -> tuple[torch.nn.Module, torch.Tensor]:
    """The imported module stepped `steps` times on the held input, outputs stacked."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # nirtorch.load is deprecated
        module = from_nir(graph, **options)
    state, outputs = None, []
    for _ in range(graph.metadata["steps"]):
        out, state = module(x, state)
        outputs.append(out)
    return module, torch.stack(outputs)


def li_decode(node: nir.CubaLI, currents: np.ndarray, dt: float, window: int) -> np.ndarray:
    """The CubaLI readout and decode that NIR's metadata describes, for a reader to add."""
    i, v, voltages = np.zeros(currents.shape[1:]), node.v_leak + np.zeros(currents.shape[1:]), []
    for s in currents:
        i = i + dt / node.tau_syn * (node.w_in * s - i)
        v = v + dt / node.tau_mem * ((node.v_leak - v) + node.r * i)
        voltages.append(v)
    return np.mean(voltages[-window:], axis=0)


@pytest.mark.parametrize("neuron", [{}, {"tau_syn_inv": 256.0, "tau_mem_inv": 64.0, "v_th": 0.8}],
                         ids=["defaults", "other taus and threshold"])
def test_norse_reproduces_the_hidden_layers_exactly_but_drops_the_readout(tmp_path, neuron):
    model, graph = exported(tmp_path, neuron)
    x = inputs("spiking_mlp", dtype=torch.float32)[0]
    module, got = norse_run(graph, x, dt=graph.metadata["dt"])
    torch.testing.assert_close(got, readout_currents(model, x), rtol=0, atol=0)
    assert "li" not in dict(module.named_children())  # CubaLI has no norse module: dropped
    # with the readout added back as the metadata says, the network's output is reproduced
    decoded = li_decode(graph.nodes["li"], got.double().numpy(), graph.metadata["dt"],
                        graph.metadata["window"])
    with torch.no_grad():
        np.testing.assert_allclose(decoded, model(x).numpy(), rtol=0, atol=1e-5)


def test_norse_assumes_its_own_dt_when_not_given_one(tmp_path):
    model, graph = exported(tmp_path, {})
    x = inputs("spiking_mlp", dtype=torch.float32)[0]
    _, default = norse_run(graph, x)  # norse's 1 ms, not the graph's 2^-10 s
    _, given = norse_run(graph, x, dt=graph.metadata["dt"])
    assert (default - given).abs().max() > 0.1


def test_norse_resets_to_zero_whatever_v_reset_says(tmp_path):
    model, graph = exported(tmp_path, {"v_reset": -0.1})
    np.testing.assert_array_equal(graph.nodes["lif0"].v_reset, np.full(8, np.float32(-0.1)))
    x = inputs("spiking_mlp", dtype=torch.float32)[0]
    _, got = norse_run(graph, x, dt=graph.metadata["dt"])
    assert (got - readout_currents(model, x)).abs().max() > 0.1
    with torch.no_grad():
        for lif in model.lifs:  # the same weights with v_reset = 0: what norse computed
            lif.p = lif.p._replace(v_reset=torch.as_tensor(0.0))
    torch.testing.assert_close(got, readout_currents(model, x), rtol=0, atol=0)


def test_norse_lets_the_synaptic_current_relax_to_v_leak(tmp_path):
    model, graph = exported(tmp_path, {"v_leak": 0.05})
    x = inputs("spiking_mlp", dtype=torch.float32)[0]
    module, got = norse_run(graph, x, dt=graph.metadata["dt"])
    synapse = module.lif0.synapse.p
    np.testing.assert_array_equal(synapse.v_leak.numpy(), np.full(8, np.float32(0.05)))
    assert (got - readout_currents(model, x)).abs().max() > 0.1


def test_snntorch_reads_none_of_our_graphs(tmp_path):
    _, graph = exported(tmp_path, {})
    with pytest.raises(ValueError, match="Unknown node type .*CubaLI"):
        import_from_nir(graph)
    # without the readout, its CubaLIF wants r = tau_mem/dt at its own dt = 1e-4 s
    nodes = {name: node for name, node in graph.nodes.items() if name != "li"}
    edges = [edge for edge in graph.edges if "li" not in edge] + [("readout", "output")]
    with pytest.raises(AssertionError, match="r not supported in CubaLIF"):
        import_from_nir(nir.NIRGraph(nodes=nodes, edges=edges, metadata=graph.metadata))
