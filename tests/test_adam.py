"""fwdsnn.adam.Adam is torch.optim.Adam's update, bit for bit."""

import pytest
import torch

from fwdsnn.adam import Adam


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_weights_are_bit_identical_to_torch_adam(dtype):
    """Same gradients, same learning-rate schedule, one parameter without a gradient at first:
    both optimisers must leave identical bits in every parameter and moment."""
    generator = torch.Generator().manual_seed(0)
    shapes = [(5, 3), (5,), ()]
    ours = [torch.randn(s, generator=generator, dtype=dtype) for s in shapes]
    theirs = [p.clone() for p in ours]
    adam, reference = Adam(ours, lr=1e-2), torch.optim.Adam(theirs, lr=1e-2)
    for step in range(40):
        lr = 1e-2 * 0.9 ** step
        adam.lr = lr
        for group in reference.param_groups:
            group["lr"] = lr
        for index, (a, b) in enumerate(zip(ours, theirs)):
            grad = None if index == 2 and step < 5 else torch.randn(a.shape, generator=generator,
                                                                    dtype=dtype)
            a.grad, b.grad = grad, None if grad is None else grad.clone()
        adam.step()
        reference.step()
    for index, (a, b) in enumerate(zip(ours, theirs)):
        assert torch.equal(a, b), f"parameter {index} differs"
        state = reference.state[b]
        for key in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(adam.moments[index][key], state[key]), (index, key)


def test_a_parameter_without_gradient_is_left_alone():
    param = torch.ones(3)
    adam = Adam([param], lr=0.1)
    adam.step()
    assert torch.equal(param, torch.ones(3)) and adam.moments == [None]
