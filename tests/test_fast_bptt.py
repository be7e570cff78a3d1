"""BPTT by one adjoint per layer (estimator backprop) equals BPTT through Norse's modules."""

from pathlib import Path

import pytest
import torch
import yaml

from fwdsnn.grad.bptt import AdjointBackprop
from fwdsnn.registry import estimator_class
from fwdsnn.snn.adjoint import adjoint_layers
from fwdsnn.snn.models import build_model
from fwdsnn.snn.spike import make_surrogate

REPO = Path(__file__).parents[1]
METHODS = {name: method for path in ("config.yaml", "workflow/configs/paper.yaml")
           for name, method in yaml.safe_load((REPO / path).read_text())["methods"].items()}
# every surrogate a back-propagating method of the study or of the paper overlay uses
SURROGATES = {m["surrogate"]["kind"]: m["surrogate"] for m in METHODS.values()
              if m["estimator"] == "backprop" and m.get("spiking", True)}
SHAPES = {"spiking_mlp": {"in_features": 2, "out_features": 3},
          "spiking_deeponet": {"n_sensors": 6, "coord_dim": 2},
          "spiking_seponet": {"n_sensors": 6, "n_axes": 2}}
# v_leak and v_reset off zero so that every term of the step is exercised
NEURON = {"v_leak": 0.05, "v_reset": 0.1}


def uniform(*shape):
    return 2.0 * torch.rand(*shape, dtype=torch.float64) - 1.0


def batch(kind):
    inputs = {"spiking_mlp": (uniform(5, 2),),
              "spiking_deeponet": (uniform(3, 6), uniform(4, 2)),
              "spiking_seponet": (uniform(3, 6), [uniform(4, 1), uniform(5, 1)])}[kind]
    targets = {"spiking_mlp": (5, 3), "spiking_deeponet": (3, 4), "spiking_seponet": (3, 4, 5)}
    return inputs, uniform(*targets[kind])


def gradients(estimator: str, kind: str, decode: str, surrogate: dict):
    """Loss and gradients of one step from the same seeds (weights, batch, surrogate noise)."""
    torch.manual_seed(1)  # a seed at which no layer of the small models is silent
    spike = make_surrogate(surrogate, torch.Generator().manual_seed(1))
    cfg = {"width": 8, "depth": 2, "steps": 12, "gain": 5.0, "decode": decode, "window": 5,
           "neuron": NEURON, "latent": 5, "rank": 4}
    model = build_model(kind, SHAPES[kind], cfg, spike, True).double()
    inputs, target = batch(kind)
    estimate = estimator_class(estimator)({"estimator": estimator}, torch.Generator()).estimate(
        model, inputs, target)
    return estimate.loss, {name: p.grad for name, p in model.named_parameters()}


@pytest.mark.parametrize("surrogate", list(SURROGATES))
@pytest.mark.parametrize("decode", ["last", "mean"])
@pytest.mark.parametrize("kind", list(SHAPES))
def test_adjoint_gradients_equal_norse_bptt(kind, decode, surrogate):
    loss, grads = gradients("backprop", kind, decode, SURROGATES[surrogate])
    reference_loss, reference = gradients("backprop-norse", kind, decode, SURROGATES[surrogate])
    assert loss == pytest.approx(reference_loss, rel=1e-12)
    assert grads.keys() == reference.keys()
    assert all(g.abs().max() > 0 for g in reference.values())  # every layer passes a gradient
    for name, g in grads.items():
        torch.testing.assert_close(g, reference[name], rtol=0, atol=1e-10, msg=name)


def test_adjoint_steps_are_deterministic():
    first = gradients("backprop", "spiking_seponet", "mean", SURROGATES["stein"])
    second = gradients("backprop", "spiking_seponet", "mean", SURROGATES["stein"])
    assert first[0] == second[0]
    assert all(torch.equal(g, second[1][name]) for name, g in first[1].items())


def test_layers_are_restored_and_backprop_is_the_adjoint():
    model = build_model("spiking_mlp", SHAPES["spiking_mlp"],
                        {"width": 4, "depth": 2, "steps": 3, "gain": 5.0, "decode": "last",
                         "window": 1, "neuron": {}}, make_surrogate(SURROGATES["fast_sigmoid"]),
                        True)
    with adjoint_layers(model):
        assert "forward" in vars(model.lifs[0]) and "forward" in vars(model.li)
    assert not any("forward" in vars(m) for m in model.modules())
    assert estimator_class("backprop") is AdjointBackprop
