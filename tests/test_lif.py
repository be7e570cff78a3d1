"""fwdsnn's LIF/LI layers are Norse's dynamics: same numbers forward, same BPTT gradients."""

import norse.torch as norse
import torch
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFParameters
from torch.func import jvp

from fwdsnn.snn.lif import LIFLayer, LILayer
from fwdsnn.snn.spike import FastSigmoid

P = LIFParameters(tau_syn_inv=torch.as_tensor(250.0), tau_mem_inv=torch.as_tensor(120.0),
                  v_leak=torch.as_tensor(0.1), v_th=torch.as_tensor(0.9),
                  v_reset=torch.as_tensor(-0.2))


def currents(dtype=torch.float32, steps=40):
    gen = torch.Generator().manual_seed(0)
    return (0.4 + 0.5 * torch.randn(steps, 5, 7, generator=gen)).to(dtype)


def test_lif_forward_and_state_bit_identical_to_norse():
    x = currents()
    z, state = LIFLayer(P, FastSigmoid(10.0), dt=1e-3)(x)
    z_ref, state_ref = norse.LIF(P, dt=1e-3)(x)
    assert 0.05 < z.mean() < 0.5  # spikes (and resets) happen
    assert torch.equal(z, z_ref)
    assert torch.equal(state.v, state_ref.v) and torch.equal(state.i, state_ref.i)


def test_li_forward_bit_identical_to_norse():
    x = currents()
    assert torch.equal(LILayer(LIParameters())(x)[0], norse.LI(LIParameters())(x)[0])


def test_bptt_gradients_equal_norse_superspike():
    """FastSigmoid(slope=1) is Norse's `super` derivative 1/(|u|+1)^2."""
    torch.manual_seed(0)
    w_in = torch.randn(7, 3, dtype=torch.float64)
    w_out = torch.randn(2, 7, dtype=torch.float64)
    x = 0.4 + torch.rand(30, 4, 3, dtype=torch.float64)

    def grads(lif):
        params = [w_in.clone().requires_grad_(), w_out.clone().requires_grad_()]
        z, _ = lif(x @ params[0].T)
        v, _ = norse.LI()(z @ params[1].T)
        return torch.autograd.grad(v.square().sum(), params)

    ours = grads(LIFLayer(LIFParameters(), FastSigmoid(1.0)))
    theirs = grads(norse.LIF(LIFParameters(method="super")))
    assert ours[0].abs().sum() > 0
    for g, g_ref in zip(ours, theirs):
        assert torch.allclose(g, g_ref, rtol=1e-12, atol=0)


def test_state_follows_input_dtype_and_needs_no_autograd():
    layer = LIFLayer(P, FastSigmoid(10.0))
    with torch.no_grad():
        z, state = layer(currents(torch.float64))
    assert z.dtype == state.v.dtype == torch.float64 and not state.v.requires_grad
    layer.double()
    assert all(t.dtype == torch.float64 for t in layer.p if isinstance(t, torch.Tensor))


def test_jvp_through_layers_equals_reverse_mode():
    x = currents(torch.float64, steps=20)
    tangent = torch.randn_like(x)
    lif, li = LIFLayer(P, FastSigmoid(10.0)), LILayer(LIParameters())

    def f(inp):
        return li(lif(inp)[0] * 3.0)[0]

    _, forward = jvp(f, (x,), (tangent,))
    x_req = x.clone().requires_grad_()
    cotangent = torch.randn_like(forward)
    (grad,) = torch.autograd.grad((f(x_req) * cotangent).sum(), x_req)
    assert forward.abs().sum() > 0
    assert torch.allclose((forward * cotangent).sum(), (grad * tangent).sum(), rtol=1e-12)
