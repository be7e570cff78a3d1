"""Models: shapes, spike logging, forward mode == reverse mode, and a smoke fit by BPTT."""

import pytest
import torch
from torch.func import functional_call, jvp, vmap

from fwdsnn.snn.models import SpikingMLP, build_model
from fwdsnn.snn.spike import make_surrogate

SURROGATES = [{"kind": "fast_sigmoid", "slope": 10.0}, {"kind": "gaussian", "sigma": 0.3},
              {"kind": "stein", "sigma": 0.3, "samples": 8}]
SMALL = {"width": 8, "depth": 2, "steps": 12, "gain": 5.0, "decode": "mean", "window": 4,
         "neuron": {}, "latent": 5, "rank": 4}


def uniform(*shape, dtype=torch.float64):
    return 2.0 * torch.rand(*shape, dtype=dtype) - 1.0


def small(kind, surrogate, spiking=True, **changes):
    shapes = {"spiking_mlp": {"in_features": 2, "out_features": 3},
              "spiking_deeponet": {"n_sensors": 6, "coord_dim": 2},
              "spiking_seponet": {"n_sensors": 6, "n_axes": 2}}[kind]
    return build_model(kind, shapes, {**SMALL, **changes}, surrogate, spiking)


def inputs(kind, dtype=torch.float64):
    return {"spiking_mlp": (uniform(5, 2, dtype=dtype),),
            "spiking_deeponet": (uniform(3, 6, dtype=dtype), uniform(4, 2, dtype=dtype)),
            "spiking_seponet": (uniform(3, 6, dtype=dtype),
                                [uniform(4, 1, dtype=dtype), uniform(5, 1, dtype=dtype)])}[kind]


OUT_SHAPES = {"spiking_mlp": (5, 3), "spiking_deeponet": (3, 4), "spiking_seponet": (3, 4, 5)}


@pytest.mark.parametrize("kind", list(OUT_SHAPES))
def test_shapes_spiking_and_ann(kind):
    torch.manual_seed(0)
    surrogate = make_surrogate(SURROGATES[0])
    outputs = {}
    for spiking, decode in [(True, "mean"), (True, "last"), (False, "mean")]:
        model = small(kind, surrogate, spiking, decode=decode)
        outputs[spiking, decode] = model(*inputs(kind, torch.float32))
        assert outputs[spiking, decode].shape == OUT_SHAPES[kind]
        assert outputs[spiking, decode].dtype == torch.float32
        shapes = {name: p.shape for name, p in model.named_parameters()}
        if spiking:
            spiking_shapes = shapes
        assert shapes == spiking_shapes  # the ANN is the same Linear layers
    assert not torch.equal(outputs[True, "mean"], outputs[True, "last"])


def test_spike_logging_names_and_shapes():
    torch.manual_seed(0)
    surrogate = make_surrogate(SURROGATES[0])
    mlp = small("spiking_mlp", surrogate)
    mlp(*inputs("spiking_mlp", torch.float32))
    assert list(mlp.last_spike_counts) == ["hidden0", "hidden1"] and mlp.neurons["hidden0"] == 8
    assert mlp.last_spike_counts["hidden0"].shape == (5,)
    seponet = small("spiking_seponet", surrogate)
    seponet(*inputs("spiking_seponet", torch.float32))
    assert {name: c.shape for name, c in seponet.last_spike_counts.items()} == {
        "branch.hidden0": (3,), "branch.hidden1": (3,), "trunk0.hidden0": (4,),
        "trunk0.hidden1": (4,), "trunk1.hidden0": (5,), "trunk1.hidden1": (5,)}
    deeponet = small("spiking_deeponet", surrogate)
    deeponet(*inputs("spiking_deeponet", torch.float32))
    assert set(deeponet.spike_rates()) == {"branch.hidden0", "branch.hidden1",
                                           "trunk.hidden0", "trunk.hidden1"}
    ann = small("spiking_mlp", surrogate, spiking=False)
    ann(*inputs("spiking_mlp", torch.float32))
    assert ann.spike_rates() == {} and ann.neurons == {}


def test_gain_keeps_deep_layers_spiking():
    torch.manual_seed(0)
    x = uniform(200, 3, dtype=torch.float32)
    rates = {}
    for gain in (5.0, 1.0):
        model = SpikingMLP(3, 1, 64, 3, 32, {}, make_surrogate(SURROGATES[0]), gain=gain)
        model(x)
        rates[gain] = model.spike_rates()
    assert all(0.01 < r < 0.9 for r in rates[5.0].values()), rates
    assert rates[1.0]["hidden2"] < 0.2 * rates[5.0]["hidden2"], rates


def jvp_vs_grad(model, args, surrogate_cfg):
    """Relative error between torch.func.jvp and the BPTT gradient dotted with the tangent."""
    gen = torch.Generator()
    for module in model.modules():
        if hasattr(module, "surrogate"):
            module.surrogate = make_surrogate(surrogate_cfg, gen)
    params = {name: p.detach() for name, p in model.named_parameters()}
    tangents = {name: torch.randn_like(p) for name, p in params.items()}
    target = torch.randn_like(model(*args))

    def loss(p):
        return (functional_call(model, p, args) - target).square().mean()

    gen.manual_seed(7)
    _, forward = jvp(loss, (params,), (tangents,))
    gen.manual_seed(7)
    grads = torch.autograd.grad(loss(dict(model.named_parameters())), list(model.parameters()))
    assert any(g.abs().sum() > 0 for name, g in zip(params, grads) if "linears.0." in name)
    backward = sum((g * t).sum() for g, t in zip(grads, tangents.values()))
    return ((forward - backward).abs() / backward.abs()).item()


@pytest.mark.parametrize("cfg", SURROGATES, ids=lambda c: c["kind"])
def test_jvp_equals_bptt_mlp(cfg):
    torch.manual_seed(1)
    model = small("spiking_mlp", None).double()
    assert jvp_vs_grad(model, inputs("spiking_mlp"), cfg) < 1e-10


@pytest.mark.parametrize("kind", ["spiking_deeponet", "spiking_seponet"])
@pytest.mark.parametrize("cfg", [SURROGATES[0], SURROGATES[2]], ids=lambda c: c["kind"])
def test_jvp_equals_bptt_operators(kind, cfg):
    torch.manual_seed(2)
    model = small(kind, None).double()
    assert jvp_vs_grad(model, inputs(kind), cfg) < 1e-10


def test_vmap_of_jvp_over_tangents():
    """K directional derivatives in one vmapped jvp equal K separate ones (Stein noise 'same')."""
    torch.manual_seed(3)
    gen = torch.Generator()
    model = small("spiking_mlp", make_surrogate(SURROGATES[2], gen)).double()
    (x,) = inputs("spiking_mlp")
    params = {name: p.detach() for name, p in model.named_parameters()}
    tangents = {name: torch.randn(3, *p.shape, dtype=p.dtype) for name, p in params.items()}

    def directional(t):
        return jvp(lambda p: functional_call(model, p, (x,)).sum(), (params,), (t,))[1]

    gen.manual_seed(4)
    batched = vmap(directional, randomness="same")(tangents)
    separate = []
    for k in range(3):
        gen.manual_seed(4)
        separate.append(directional({name: t[k] for name, t in tangents.items()}))
    assert torch.allclose(batched, torch.stack(separate), rtol=1e-12)
    assert model.last_spike_counts == {}  # counts are not kept from inside transforms


def test_float64_and_no_grad():
    model = small("spiking_seponet", make_surrogate(SURROGATES[0])).double()
    with torch.no_grad():
        out = model(*inputs("spiking_seponet"))
    assert out.dtype == torch.float64 and not out.requires_grad


def test_config_errors_name_the_culprit():
    surrogate = make_surrogate(SURROGATES[0])
    with pytest.raises(ValueError, match="'spiking_cnn'"):
        build_model("spiking_cnn", {}, {}, surrogate, True)
    with pytest.raises(ValueError, match="tau"):
        small("spiking_mlp", surrogate, neuron={"tau": 1.0})
    with pytest.raises(ValueError, match="'first'"):
        small("spiking_mlp", surrogate, decode="first")


def test_smoke_fit_parabola_by_bptt():
    torch.manual_seed(0)
    x = torch.linspace(-1.0, 1.0, 64)[:, None]
    y = x.square()
    model = SpikingMLP(1, 1, 32, 2, 16, {}, make_surrogate(SURROGATES[0]))
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-2)
    for _ in range(150):
        optimiser.zero_grad()
        (model(x) - y).square().mean().backward()
        optimiser.step()
    with torch.no_grad():
        assert (model(x) - y).norm() / y.norm() < 0.10
