"""The model protocol is the only thing the passes know of a model: a kind defined here alone
(a DeepONet with two branch networks whose outputs multiply) trains by BPTT, forward gradient
and weight perturbation, converts, emulates, exports to NIR and counts its energy, with no
edit to fwdsnn; its tangents are exact forward-mode AD and its WP rows are the model's
outputs with the perturbed parameters loaded."""

import ast
import importlib
import inspect
import math
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from torch import nn
from torch.func import functional_call, jvp

import fwdsnn
from fwdsnn import io
from fwdsnn.config import target_params
from fwdsnn.data import Affine, make_problem
from fwdsnn.grad import mse
from fwdsnn.grad.perturbation import perturbed_outputs
from fwdsnn.grad.tangents import propagate
from fwdsnn.hardware.convert import convert
from fwdsnn.hardware.emulator import emulate
from fwdsnn.hardware.energy import operation_counts
from fwdsnn.hardware.format import read_fixed, write_fixed
from fwdsnn.hardware.nir_export import model_graph
from fwdsnn.reference import write_reference
from fwdsnn.registry import estimator_class, family_module
from fwdsnn.snn.lif import bare_spikes
from fwdsnn.snn.models import CompositeModel, Feed, SpikingMLP, build_model, model_class
from fwdsnn.snn.record import record_spikes
from fwdsnn.snn.spike import make_surrogate
from nir_reader import simulate

MLP = {"width": 16, "depth": 2, "steps": 16, "gain": 9.0, "decode": "mean", "window": 8,
       "neuron": {}}


class TwoBranchONet(CompositeModel):
    """u(a)(y) = sum_k left_k(a) right_k(a) trunk_k(y) + b0: two branches on the sensors."""

    kind = "test_two_branch_onet"
    layout = "deeponet"
    combination = "u(a)(y) = sum_k left[k] * right[k] * trunk[k] + b0"

    def __init__(self, n_sensors: int, coord_dim: int, latent: int, **mlp):
        super().__init__()
        self.left = SpikingMLP(n_sensors, latent, **mlp)
        self.right = SpikingMLP(n_sensors, latent, **mlp)
        self.trunk = SpikingMLP(coord_dim, latent, **mlp)
        self.b0 = nn.Parameter(torch.tensor(0.1))

    @classmethod
    def from_config(cls, shapes, cfg, mlp):
        return cls(shapes["n_sensors"], shapes["coord_dim"], cfg["latent"], **mlp)

    def subnets(self):
        return {"left": self.left, "right": self.right, "trunk": self.trunk}

    @classmethod
    def feed(cls, name):
        return Feed(1) if name == "trunk" else Feed(0, sensors=True)

    @staticmethod
    def combine(outputs, scalars):
        branch = outputs["left"] * outputs["right"]
        return branch @ outputs["trunk"].transpose(-1, -2) + scalars["b0"]

    def combination_macs(self, grid_shape):
        return 2 * self.left.readout.out_features * math.prod(grid_shape)


def model(seed: int = 0, spiking: bool = True) -> TwoBranchONet:
    torch.manual_seed(seed)
    surrogate = make_surrogate({"kind": "fast_sigmoid", "slope": 10.0})
    return build_model("test_two_branch_onet", {"n_sensors": 6, "coord_dim": 2},
                       {**MLP, "latent": 5}, surrogate, spiking).double()


def data(seed: int = 1) -> tuple[tuple, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = 2.0 * (2 * torch.rand(12, 6, generator=g, dtype=torch.float64) - 1)
    coords = 2 * torch.rand(15, 2, generator=g, dtype=torch.float64) - 1
    target = torch.sin(a[:, :1] + coords[:, 0])
    return (a, coords), target


def test_kind_is_registered_by_its_class():
    assert model_class("test_two_branch_onet") is TwoBranchONet
    assert isinstance(model(), TwoBranchONet)  # build_model builds it from a config


def test_reads_the_problem_of_its_layout(tmp_path):
    params = target_params("heat1d", nx=11, nt=6, n_sensors=11, fine_points=65, modes=16,
                           n_train=4, n_test=2)
    reference = io.read_dataset(write_reference("heat", params, family_module("heat1d"), tmp_path / "heat.nc"))
    problem = make_problem(reference, "test_two_branch_onet").to(torch.device("cpu"), torch.float64)
    net = build_model("test_two_branch_onet", problem.model_shapes(), {**MLP, "latent": 5},
                      None, True).double()
    with torch.no_grad(), bare_spikes(net):
        assert net(*problem.model_inputs("train")).shape == problem.targets("train").shape


@pytest.mark.parametrize("spiking", [True, False])
def test_tangents_are_forward_mode_ad(spiking):
    net, (args, _) = model(spiking=spiking), data()
    params = {name: p.detach() for name, p in net.named_parameters()}
    g = torch.Generator().manual_seed(2)
    tangents = {name: torch.randn(3, *p.shape, generator=g, dtype=p.dtype) for name, p in params.items()}
    output, rows = propagate(net, args, tangents)
    for n in range(3):
        expected_out, expected = jvp(lambda p: functional_call(net, p, args), (params,),
                                     ({name: t[n] for name, t in tangents.items()},))
        torch.testing.assert_close(output, expected_out, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(rows[n], expected, rtol=1e-9, atol=1e-9)


def test_layer_blocks_join_at_their_own_layer():
    """Blocks of one layer each (rows join late) give the rows a dense pass gives."""
    net, (args, _) = model(), data()
    g = torch.Generator().manual_seed(3)
    blocks = [{f"{name}.readout.weight": torch.randn(2, *getattr(net, name).readout.weight.shape,
                                             generator=g, dtype=torch.float64)}
              for name in ("left", "trunk")] + [{"b0": torch.ones(2, dtype=torch.float64)}]
    _, batched = propagate(net, args, blocks)
    alone = torch.cat([propagate(net, args, block)[1] for block in blocks])
    torch.testing.assert_close(batched, alone, rtol=1e-12, atol=1e-12)


def test_perturbation_rows_are_the_model_with_those_parameters():
    net, (args, _) = model(), data()
    params = {name: p.detach() for name, p in net.named_parameters()}
    g = torch.Generator().manual_seed(4)
    offsets = [{"left.linears.1.weight": 0.3 * torch.randn(2, 16, 16, generator=g, dtype=torch.float64)},
               {"trunk.readout.bias": 0.3 * torch.randn(2, 5, generator=g, dtype=torch.float64),
                "b0": torch.tensor([0.5, -0.5], dtype=torch.float64)}]
    rows = perturbed_outputs(net, args, offsets)
    loaded = [params] + [{**params, **{name: params[name] + block[name][n] for name in block}}
                         for block in offsets for n in range(2)]
    with torch.no_grad(), bare_spikes(net):
        expected = torch.stack([functional_call(net, p, args) for p in loaded])
    torch.testing.assert_close(rows, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("method", [
    {"estimator": "backprop"},
    {"estimator": "forward", "scope": "layer", "directions": 4, "distribution": "gaussian"},
    {"estimator": "perturbation", "scope": "layer", "directions": 4, "distribution": "gaussian",
     "epsilon": 0.05}], ids=["bp", "rfg-layer", "wp-layer"])
def test_trains_with_every_estimator(method):
    net, (args, target) = model(), data()
    estimator = estimator_class(method["estimator"])(method, torch.Generator().manual_seed(5))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-3)
    with torch.no_grad():
        before = mse(net(*args), target).item()
    for _ in range(25):
        estimator.estimate(net, args, target)
        assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
        optimizer.step()
    with torch.no_grad():
        assert mse(net(*args), target).item() < before


def test_converts_and_emulates_like_the_float_network(tmp_path):
    net, (args, _) = model(), data()
    write_fixed(convert(net, Affine(0.0, 1.0), 16), tmp_path / "fixed_w16.nc", config={})
    fixed = read_fixed(tmp_path / "fixed_w16.nc")
    assert fixed.kind == "test_two_branch_onet" and set(fixed.subnets) == {"left", "right", "trunk"}
    output, spikes = emulate(fixed, tuple(x.numpy() for x in args), delay=0)
    reference = {name: s.numpy() > 0 for name, s in record_spikes(net, args).items()}
    assert set(spikes) == set(reference) == {f"{n}.hidden{k}" for n in ("left", "right", "trunk")
                                             for k in range(2)}
    same = sum(int(np.sum(spikes[k] == reference[k])) for k in spikes)
    assert same / sum(s.size for s in spikes.values()) >= 0.99
    with torch.no_grad():
        expected = net(*args).numpy()
    assert output.shape == expected.shape


def test_exports_to_nir(tmp_path):
    net, (args, _) = model(), data()
    inputs = {"a": Affine(0.0, 1.0), "x": Affine(0.0, 1.0), "t": Affine(0.0, 1.0)}
    graph = model_graph(net, inputs, Affine(0.0, 1.0))
    nir.write(tmp_path / "model.nir", graph)
    back = nir.read(tmp_path / "model.nir")
    assert back.metadata["kind"] == "test_two_branch_onet"
    assert back.metadata["b0"] == pytest.approx(0.1)
    feeds = net.subnet_inputs(net.subnets(), args)
    for name, sub in net.subnets().items():
        with torch.no_grad():
            expected = sub(feeds[name]).numpy()
        np.testing.assert_allclose(simulate(back.nodes[name], feeds[name].numpy()), expected,
                                   rtol=1e-9, atol=1e-9)


def test_counts_its_energy():
    net = model()
    counts = {f"{n}.hidden{k}": 3.0 for n in ("left", "right", "trunk") for k in range(2)}
    ds = operation_counts(net, counts, (4, 5))
    np.testing.assert_array_equal(ds["evaluations"], [1] * 6 + [20] * 3)
    assert int(ds["combination_mac"]) == 2 * 5 * 20
    assert float(ds["energy_ratio"]) > 0


def test_registry_model_kinds_match_their_classes():
    """The torch-free table config checks read (layout, output-size key) says what the class
    does: its kind, its layout, and the model setting from_config sizes the outputs with."""
    from fwdsnn.registry import MODEL_KINDS
    from fwdsnn.snn.models import model_class
    for kind, entry in MODEL_KINDS.items():
        module, attr = entry["class"].split(":")
        cls = getattr(importlib.import_module(module), attr)
        assert cls is model_class(kind) and cls.kind == kind and cls.layout == entry["layout"]
        source = inspect.getsource(cls.from_config)
        assert (entry["outputs"] is None) == ("cfg[" not in source), kind
        if entry["outputs"]:
            assert f'cfg["{entry["outputs"]}"]' in source, kind


def _dispatch_literals(tree: ast.AST) -> list[str]:
    """String constants compared with (==, in, a set of them) or used as dict keys."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            parts = [node.left, *node.comparators]
        elif isinstance(node, ast.Dict):
            parts = [key for key in node.keys if key is not None]
        else:
            continue
        for part in parts:
            for leaf in ast.walk(part):
                if isinstance(leaf, ast.Constant) and isinstance(leaf.value, str):
                    found.append(leaf.value)
    return found


def test_no_model_kind_dispatch_outside_the_models_package():
    """No module but the model classes and the registry compares a model kind name or keys a
    table by one: a new kind is one class (plus its registry entry for the config)."""
    from fwdsnn.registry import MODEL_KINDS
    package = Path(fwdsnn.__file__).parent
    allowed = {package / "snn" / "models.py", package / "registry.py"}
    offenders = {}
    for path in package.rglob("*.py"):
        if path in allowed:
            continue
        kinds = set(_dispatch_literals(ast.parse(path.read_text()))) & set(MODEL_KINDS)
        if kinds:
            offenders[str(path.relative_to(package))] = sorted(kinds)
    assert not offenders, offenders
    assert set(_dispatch_literals(ast.parse('k in {"spiking_mlp"} or {"spiking_seponet": 1}'))) \
        == {"spiking_mlp", "spiking_seponet"}  # the check sees both forms
