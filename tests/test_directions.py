"""Directions: a block of one element is drawn +-1 whatever `distribution` says (a Gaussian v
gives (g v) v = v^2 g, variance 2 g^2; +-1 gives g), larger blocks keep their distribution,
draws replay by seed, and the estimators stay unbiased on a tiny DeepONet."""

import pytest
import torch

from fwdsnn.grad.activity import ActivityPerturbation
from fwdsnn.grad.forward import ForwardGradient
from fwdsnn.grad.layers import parameter_layers
from fwdsnn.grad.perturbation import WeightPerturbation
from fwdsnn.snn.spike import make_surrogate
from test_forward_gradient import bptt_gradient, cosine, flat, relative
from test_models import SURROGATES, inputs, small

ESTIMATORS = [ForwardGradient, WeightPerturbation, ActivityPerturbation]


def method(**changes) -> dict:
    return {"scope": "layer", "directions": 1, "distribution": "gaussian", "epsilon": 0.05,
            **changes}


def deeponet(seed: int = 0):
    """A tiny float64 spiking DeepONet (b0 is its one-element layer), inputs and a target."""
    torch.manual_seed(seed)
    model = small("spiking_deeponet", make_surrogate(SURROGATES[0])).double()
    args = inputs("spiking_deeponet")
    with torch.no_grad():
        target = torch.randn_like(model(*args))
    return model, args, target


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("distribution", ["gaussian", "rademacher"])
def test_a_one_element_block_is_drawn_as_signs(cls, distribution):
    estimator = cls(method(directions=64, distribution=distribution),
                    torch.Generator().manual_seed(0))
    params = {"b0": torch.zeros((), dtype=torch.float64), "w": torch.zeros(3, 4),
              "b": torch.zeros(1), "c": torch.zeros(1)}
    scalar = estimator.draw_block(params, ["b0"])["b0"]
    assert scalar.shape == (64,) and scalar.dtype == torch.float64
    assert set(scalar.unique().tolist()) == {-1.0, 1.0}
    # a one-element parameter inside a larger block, and a block of two scalars, keep theirs
    larger, pair = estimator.draw_block(params, ["w", "b"]), estimator.draw_block(params, ["b", "c"])
    assert larger["w"].shape == (64, 3, 4) and larger["b"].shape == pair["c"].shape == (64, 1)
    for v in (*larger.values(), *pair.values()):
        values = set(v.unique().tolist())
        assert values == {-1.0, 1.0} if distribution == "rademacher" else len(values) == v.numel()


@pytest.mark.parametrize("seed", range(3))
def test_b0_gets_its_exact_gradient_from_one_direction(seed):
    """In layer scope b0 is a block of one element: (g v) v with v = +-1 is g, for the forward
    gradient and for weight perturbation (the loss is quadratic in b0, so its central difference
    is exact at any ε; b0 is added after every spike, so bare and surrogate spikes agree)."""
    model, args, target = deeponet(seed)
    exact = bptt_gradient(model, args, target)["b0"]
    assert exact.abs() > 0
    for cls in (ForwardGradient, WeightPerturbation):
        cls(method(), torch.Generator().manual_seed(seed)).estimate(model, args, target)
        assert relative(model.b0.grad, exact) < 1e-10, cls.__name__
    # a global direction spans every parameter: b0's share of it is Gaussian, not exact
    ForwardGradient(method(scope="global"), torch.Generator().manual_seed(seed)).estimate(
        model, args, target)
    assert relative(model.b0.grad, exact) > 1e-3


@pytest.mark.parametrize("cls", [ForwardGradient, WeightPerturbation])
def test_same_seed_same_estimate(cls):
    model, args, target = deeponet()
    grads = []
    for seed in (4, 4, 5):
        cls(method(directions=2), torch.Generator().manual_seed(seed)).estimate(model, args, target)
        grads.append(flat(p.grad for p in model.parameters()))
    assert torch.equal(grads[0], grads[1]) and not torch.equal(grads[0], grads[2])


def test_mean_of_many_directions_converges_to_bptt_on_a_deeponet():
    """Layer scope, Gaussian directions, K = 8000 per layer (d <= 73 per layer): each layer's
    error is ~sqrt(d/K) = 0.1 of its gradient, cosine ~0.995; b0 exact at any K."""
    model, args, target = deeponet(seed=1)
    exact = bptt_gradient(model, args, target)
    ForwardGradient(method(directions=8000), torch.Generator().manual_seed(2)).estimate(
        model, args, target)
    for layer, names in parameter_layers(model).items():
        estimated, reference = flat(model.get_parameter(n).grad for n in names), flat(exact[n] for n in names)
        assert reference.norm() > 0, layer
        assert cosine(estimated, reference) > 0.98, layer
        assert (estimated @ reference / (reference @ reference)).item() == pytest.approx(1.0, abs=0.1), layer
    assert relative(model.b0.grad, exact["b0"]) < 1e-10
