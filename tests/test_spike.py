"""The spike Function: Norse's forward, one derivative shared by reverse and forward mode."""

import pytest
import torch
from norse.torch.functional.heaviside import heaviside as norse_heaviside
from torch.func import jvp, vmap

from fwdsnn.snn.spike import FastSigmoid, Gaussian, Stein, make_surrogate, spike

U = torch.tensor([-2.0, -0.3, -1e-30, -0.0, 0.0, 1e-30, 0.3, 2.0], dtype=torch.float64)


def test_forward_is_norse_heaviside():
    for dtype in (torch.float32, torch.float64):
        u = U.to(dtype)
        assert torch.equal(spike(u, FastSigmoid(10.0)), norse_heaviside(u))
        assert torch.equal(spike(u, None), norse_heaviside(u))


def test_surrogate_formulas():
    assert torch.allclose(FastSigmoid(10.0).derivative(U), 1.0 / (10.0 * U.abs() + 1.0) ** 2)
    normal = torch.distributions.Normal(0.0, torch.tensor(0.3, dtype=torch.float64))
    assert torch.allclose(Gaussian(0.3).derivative(U), normal.log_prob(U).exp(), rtol=1e-12)


def test_make_surrogate():
    gen = torch.Generator()
    assert isinstance(make_surrogate({"kind": "fast_sigmoid", "slope": 10}), FastSigmoid)
    assert make_surrogate({"kind": "gaussian", "sigma": 0.3, "slope": 1}).sigma == 0.3
    stein = make_surrogate({"kind": "stein", "sigma": 0.3, "samples": 16}, gen)
    assert (stein.samples, stein.generator) == (16, gen)
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        make_surrogate({"kind": "stein", "sigma": 0.3, "samples": 16})
    with pytest.raises(ValueError, match="'erf'"):
        make_surrogate({"kind": "erf"})


@pytest.mark.parametrize("surrogate", [FastSigmoid(10.0), Gaussian(0.3)])
def test_backward_and_jvp_use_the_surrogate(surrogate):
    u = U.clone().requires_grad_()
    weights = torch.linspace(0.5, 2.0, len(U), dtype=U.dtype)
    (grad,) = torch.autograd.grad((spike(u, surrogate) * weights).sum(), u)
    assert torch.allclose(grad, weights * surrogate.derivative(U), rtol=1e-14)
    _, tangent = jvp(lambda v: spike(v, surrogate), (U,), (weights,))
    assert torch.allclose(tangent, grad, rtol=1e-14)


def test_stein_jvp_equals_backward_with_the_same_noise():
    gen = torch.Generator()
    stein = Stein(0.3, 4, gen)
    u = U.clone().requires_grad_()
    gen.manual_seed(5)
    (grad,) = torch.autograd.grad(spike(u, stein).sum(), u)
    gen.manual_seed(5)
    _, tangent = jvp(lambda v: spike(v, stein), (U,), (torch.ones_like(U),))
    assert torch.equal(tangent, grad)
    assert grad.abs().sum() > 0


def test_stein_is_unbiased_and_converges_like_one_over_sqrt_m():
    """Mean -> phi(u/sigma)/sigma; RMS error of one estimate halves when M quadruples."""
    sigma = 0.3
    gen = torch.Generator().manual_seed(0)
    u = torch.linspace(-1.0, 1.0, 101, dtype=torch.float64).repeat(200)
    exact = Gaussian(sigma).derivative(u)
    rms = {m: (Stein(sigma, m, gen).derivative(u) - exact).square().mean().sqrt().item()
           for m in (4, 16, 64)}
    assert 1.7 < rms[4] / rms[16] < 2.3 and 1.7 < rms[16] / rms[64] < 2.3
    mean = Stein(sigma, 64, gen).derivative(u).view(200, 101).mean(0)
    assert (mean - exact[:101]).abs().max() < 0.05 * exact.max()


def test_vmap_over_tangents():
    """vmap(jvp) over K tangents = K separate jvps, also for Stein (noise shared: 'same')."""
    gen = torch.Generator()
    tangents = torch.randn(3, len(U), dtype=U.dtype)
    for surrogate in (FastSigmoid(10.0), Stein(0.3, 8, gen)):
        def f(t):
            return jvp(lambda v: spike(v * 2.0, surrogate), (U,), (t,))[1]
        gen.manual_seed(1)
        batched = vmap(f, randomness="same")(tangents)
        separate = []
        for t in tangents:
            gen.manual_seed(1)
            separate.append(f(t))
        assert torch.allclose(batched, torch.stack(separate), rtol=1e-14)
    near = torch.full((64,), 0.01, dtype=torch.float64)
    per_copy = vmap(lambda t: jvp(lambda v: spike(v, Stein(0.3, 2, gen)), (near,), (t,))[1],
                    randomness="different")(torch.ones(2, 64, dtype=torch.float64))
    assert not torch.equal(per_copy[0], per_copy[1])

