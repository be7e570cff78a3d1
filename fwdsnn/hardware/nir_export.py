"""Trained spiking networks as NIR graphs (nir 1.0.8), built node by node from model.nc.

`norse.torch.to_nir` is not used: it leaves `LIF`/`LI` unmapped, writes files `nir.read`
cannot load, and stores tau = dt/tau_inv. Here every neuron parameter is a per-neuron array.

Mapping of Norse's Euler step (dt, alpha_s = dt/tau_syn, alpha_m = dt/tau_mem) to NIR:

| Norse (fwdsnn)                        | NIR                     | value                        | units |
|---------------------------------------|-------------------------|------------------------------|-------|
| `nn.Linear` weight (out, in), bias    | `Affine` weight, bias   | as trained                   | 1     |
| `LIFLayer` (hidden layer)             | `CubaLIF`               |                              |       |
| `LIFParameters.tau_syn_inv`           | `tau_syn`               | 1 / tau_syn_inv              | s     |
| `LIFParameters.tau_mem_inv`           | `tau_mem`               | 1 / tau_mem_inv              | s     |
| input current enters v with gain 1    | `r`                     | 1                            | 1     |
| input added to i once per step        | `w_in`                  | tau_syn / dt                 | 1     |
| `v_leak`, `v_th`, `v_reset`           | `v_leak`, `v_threshold`, `v_reset` | as configured     | 1     |
| `LILayer` (readout)                   | `CubaLI`                | same tau_syn, tau_mem, r, w_in, v_leak | |

Why r = 1 and w_in = tau_syn/dt: every edge carries one value S_k per step of dt (a sample
held over the step, the convention of the discrete-time importers). Forward Euler of NIR's
tau_syn dI/dt = -I + w_in S, tau_mem dv/dt = (v_leak - v) + r I, with v using the freshly
updated I, is then exactly Norse's step: I_k = (1 - alpha_s) I_(k-1) + S_k (Norse's
i + x, its stored i being (1 - alpha_s) times it) and v_k = v_(k-1) + alpha_m((v_leak -
v_(k-1)) + I_k). Spikes: z = v > v_threshold (strict), then v = v_reset (reset to a value, as
NIR's CubaLIF says). Read with unit-area Dirac spikes instead, the same dynamics need w_in =
tau_syn (in seconds): the two readings differ by the factor dt, which NIR does not store.

What NIR cannot express, kept in the graph metadata (and honoured by the tests' NIR reader,
`tests/nir_reader.py`): dt and the
number of steps; the encoding (the Input value passes the first Affine and is held as a
constant current for all steps); the initial state (v = v_leak, I = 0); the decode (the LI
voltage averaged over the last `window` steps, or taken at the last one); the input and
output normalisation; and, for operator networks, the combination of the sub-networks'
outputs, which takes products (NIR has no product node). An operator network is therefore
one top-level graph whose sub-networks are NIRGraph nodes, each with its own Input and
Output, and whose metadata states the combination formula and b0.
"""

import json
from pathlib import Path

import nir
import numpy as np
import torch

from fwdsnn import io
from fwdsnn.artifacts import MODEL, NIR_STAGE
from fwdsnn.hardware.trained import load_trained
from fwdsnn.snn.lif import LIFLayer, LILayer
from fwdsnn.snn.models import SpikingMLP, SpikingModel
from fwdsnn.status import COMPLETED

FORMAT = "fwdsnn-nir 1"
NOT_EXPRESSIBLE = (
    "NIR cannot express, so this metadata states: dt and steps (w_in = tau_syn/dt bakes dt into "
    "the synaptic gain; each edge carries one value per step); the encoding (the Input value "
    "passes the first Affine and is held as a constant current for every step); the initial "
    "state v = v_leak, I = 0; the update order (input enters I before the membrane update of "
    "the same step); the decode of the readout voltage; the input/output normalisation; and "
    "for operators the product combination of the sub-network outputs plus b0.")


def _per_neuron(value: torch.Tensor, n: int) -> np.ndarray:
    """A (possibly scalar) neuron constant as an (n,) float64 array: NIR wants arrays."""
    return np.broadcast_to(value.detach().cpu().double().numpy(), (n,)).copy()


def neuron_node(layer: LIFLayer | LILayer, n: int) -> nir.CubaLIF | nir.CubaLI:
    """CubaLIF for a hidden LIF layer, CubaLI for the LI readout (mapping in the module doc)."""
    p, dt = layer.p, float(layer.dt)
    tau_syn = 1.0 / _per_neuron(p.tau_syn_inv, n)
    common = dict(tau_syn=tau_syn, tau_mem=1.0 / _per_neuron(p.tau_mem_inv, n), r=np.ones(n),
                  v_leak=_per_neuron(p.v_leak, n), w_in=tau_syn / dt)
    if isinstance(layer, LIFLayer):
        return nir.CubaLIF(**common, v_threshold=_per_neuron(p.v_th, n),
                           v_reset=_per_neuron(p.v_reset, n))
    return nir.CubaLI(**common)


def _affine(linear: torch.nn.Linear) -> nir.Affine:
    return nir.Affine(weight=linear.weight.detach().cpu().numpy(),
                      bias=linear.bias.detach().cpu().numpy())


def mlp_graph(net: SpikingMLP) -> nir.NIRGraph:
    """input -> linear0 -> lif0 -> ... -> readout -> li -> output, timing in the metadata."""
    if not net.spiking:
        raise ValueError("NIR has no tanh node: only spiking networks are exported")
    nodes = {"input": nir.Input(np.array([net.linears[0].in_features]))}
    for k, (linear, lif) in enumerate(zip(net.linears, net.lifs)):
        nodes[f"linear{k}"] = _affine(linear)
        nodes[f"lif{k}"] = neuron_node(lif, linear.out_features)
    nodes["readout"] = _affine(net.readout)
    nodes["li"] = neuron_node(net.li, net.readout.out_features)
    nodes["output"] = nir.Output(np.array([net.readout.out_features]))
    names = list(nodes)
    metadata = {"dt": float(net.li.dt), "steps": int(net.steps), "decode": net.decode,
                "window": int(net.window if net.decode == "mean" else 1),
                "decode_rule": "output = mean of the CubaLI voltage over the last `window` steps",
                "encoding": "constant: the Input value is held for all steps",
                "initial_state": "v = v_leak, I = 0"}
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])), metadata=metadata)


def model_graph(model: SpikingModel, inputs: dict, output) -> nir.NIRGraph:
    """The whole network as one graph; sub-networks of operators are NIRGraph nodes.

    `inputs` / `output`: the normalisation (`fwdsnn.data.Affine`) of each input quantity and
    of u, as load_model returns them; the graph computes in normalised units."""
    norm = {name: [a.offset, a.scale] for name, a in {**inputs, "u": output}.items()}
    metadata = {"format": FORMAT, "not_expressible": NOT_EXPRESSIBLE,
                "normalisation_json": json.dumps(norm),
                "normalisation": "normalised = (value - offset) / scale; u = scale * output + offset"}
    subnets = model.subnets()
    if list(subnets) == [""]:  # a single chain: the graph itself
        graph = mlp_graph(subnets[""])
        graph.metadata.update(metadata, kind=model.kind, inputs=" ".join(inputs))
        return graph
    coords = [name for name in inputs if name != "a"]
    feeds = {}
    for name in subnets:
        feed = model.feed(name)
        feeds[name] = "a" if feed.sensors else " ".join(coords) if feed.item is None else coords[feed.item]
    nodes, edges = {}, []
    for name, net in subnets.items():
        nodes[f"{name}_input"] = nir.Input(np.array([net.linears[0].in_features]))
        nodes[name] = mlp_graph(net)
        nodes[name].metadata["role"] = name
        nodes[f"{name}_output"] = nir.Output(np.array([net.readout.out_features]))
        edges += [(f"{name}_input", name), (name, f"{name}_output")]
    scalars = model.scalars()
    metadata.update(kind=model.kind, combination=model.combination,
                    **{name: value.item() for name, value in scalars.items()},
                    feeds_json=json.dumps(feeds))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def export_nir(model_path, out_path) -> Path:
    """The stage: model.nc -> model.nir, with fwdsnn's provenance in the top-level metadata."""
    model_path, out_path = Path(model_path), Path(out_path)
    source = io.read_dataset(model_path, stage=MODEL.stage)
    model, inputs, output = load_trained(model_path)
    graph = model_graph(model, inputs, output)
    graph.metadata["status"] = COMPLETED
    return _write(graph, source, model_path, out_path)


def write_placeholder(model_path, out_path, status: str) -> Path:
    """The model.nir of a run with nothing to export (its training did not complete): a graph
    without nodes whose metadata gives `status` and the provenance, not a network."""
    source = io.read_dataset(model_path, stage=MODEL.stage)
    graph = nir.NIRGraph(nodes={}, edges=[], metadata={"format": FORMAT, "status": status})
    return _write(graph, source, Path(model_path), Path(out_path))


def _write(graph: nir.NIRGraph, source, model_path: Path, out_path: Path) -> Path:
    """Provenance of model.nc's run into the top-level metadata, then an atomic write."""
    config = {"model": json.loads(source.attrs["model_json"]),
              "method": json.loads(source.attrs["method_json"])}
    graph.metadata.update(io.provenance(NIR_STAGE, config, int(source.attrs.get("seed", -1)),
                                        inputs=[model_path]))
    with io.atomic_path(out_path) as tmp:
        nir.write(tmp, graph)
    return out_path
