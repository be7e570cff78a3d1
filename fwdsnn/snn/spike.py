"""The spike nonlinearity H(v - v_th) with surrogate derivatives for reverse AND forward mode.

Norse's surrogate Functions define only `backward`, so `torch.func.jvp` fails on them. The
spike here is one `torch.autograd.Function` with `backward`, `jvp` and a generated vmap rule.
The surrogate derivative is computed once per call from the detached primal and handed to the
Function as a non-differentiable input: backward and jvp then use the *same* value, so
forward-mode and reverse-mode agree exactly (jvp == grad . v), even for the random Stein
estimate.
"""

import math

import torch
from torch import Tensor


def heaviside(u: Tensor) -> Tensor:
    """H(u) = 1 where u > 0 else 0, in u's dtype: the same op as Norse's `heaviside`."""
    return torch.gt(u, 0.0).to(u.dtype)


class FastSigmoid:
    """SuperSpike's fast sigmoid derivative 1/(slope|u| + 1)^2 (Norse `super` is slope 1)."""

    random = False  # the same derivative for the same u (BPTT may evaluate it in one call)

    def __init__(self, slope: float):
        self.slope = slope

    def derivative(self, u: Tensor) -> Tensor:
        return u.abs().mul_(self.slope).add_(1.0).pow_(-2)  # one new tensor, in place after


class Gaussian:
    """Derivative of the Gaussian-smoothed step, phi(u/sigma)/sigma: the mean Stein targets."""

    random = False

    def __init__(self, sigma: float):
        self.sigma = sigma

    def derivative(self, u: Tensor) -> Tensor:
        z = u / self.sigma
        return torch.exp(-0.5 * z * z) / (self.sigma * math.sqrt(2.0 * math.pi))


class Stein:
    """Monte-Carlo Gaussian smoothing from threshold evaluations only (no analytic surrogate).

    Antithetic estimate (1/M) sum_m [H(u + sigma xi_m) - H(u - sigma xi_m)] xi_m / (2 sigma),
    xi ~ N(0, 1) from this object's own generator, so runs are reproducible and two passes
    re-seeded alike draw the same noise. Unbiased for phi(u/sigma)/sigma.
    """

    random = True  # each call draws: callers replaying a pass must call step by step, in order

    def __init__(self, sigma: float, samples: int, generator: torch.Generator):
        self.sigma = sigma
        self.samples = samples
        self.generator = generator

    def derivative(self, u: Tensor) -> Tensor:
        xi = torch.randn((self.samples, *u.shape), generator=self.generator,
                         dtype=u.dtype, device=u.device)
        step = self.sigma * xi
        return ((heaviside(u + step) - heaviside(u - step)) * xi).mean(0) / (2.0 * self.sigma)


def make_surrogate(cfg: dict, generator: torch.Generator | None = None):
    """Surrogate from a config dict ({"kind": ..., plus its own keys}; other keys ignored)."""
    kind = cfg["kind"]
    if kind == "fast_sigmoid":
        return FastSigmoid(cfg["slope"])
    if kind == "gaussian":
        return Gaussian(cfg["sigma"])
    if kind == "stein":
        if generator is None:
            raise ValueError("surrogate 'stein' needs a torch.Generator for its noise")
        return Stein(cfg["sigma"], cfg["samples"], generator)
    raise ValueError(f"unknown surrogate kind '{kind}' (fast_sigmoid, gaussian, stein)")


class _Spike(torch.autograd.Function):
    """H(u) whose derivative w.r.t. u is the precomputed `derivative` tensor in both modes."""

    generate_vmap_rule = True

    @staticmethod
    def forward(u: Tensor, derivative: Tensor) -> Tensor:
        return heaviside(u)

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, derivative = inputs
        ctx.save_for_backward(derivative)
        ctx.save_for_forward(derivative)

    @staticmethod
    def backward(ctx, grad_output: Tensor):
        (derivative,) = ctx.saved_tensors
        return grad_output * derivative, None

    @staticmethod
    def jvp(ctx, u_tangent: Tensor, derivative_tangent):
        (derivative,) = ctx.saved_tensors
        return u_tangent * derivative


def spike(u: Tensor, surrogate) -> Tensor:
    """Spikes H(u), u = v - v_th; d/du is `surrogate.derivative(u)`, drawn once per call.
    `surrogate=None` is the bare step (no derivative): derivative-free passes skip its cost."""
    if surrogate is None:
        return heaviside(u)
    return _Spike.apply(u, surrogate.derivative(u.detach()))
