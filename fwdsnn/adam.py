"""Adam, as `torch.optim.Adam` computes it by default on the CPU (the single-tensor update).

Written out because constructing any `torch.optim` optimiser imports `torch._dynamo` (its
methods are wrapped in `torch._disable_dynamo`), which costs every training job seconds of
start-up for code it never runs. The update is torch's operation for operation, so the weights
are bit-identical to `torch.optim.Adam(params, lr)` (tests/test_adam.py checks it).
"""

from collections.abc import Iterable

import torch
from torch import Tensor


class Adam:
    """Adam without weight decay or amsgrad. `moments[i]` is None until parameter i first has
    a gradient, then {"step", "exp_avg", "exp_avg_sq"} as in torch's optimiser state."""

    def __init__(self, params: Iterable[Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8):
        self.params = list(params)
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.moments: list[dict[str, Tensor] | None] = [None] * len(self.params)

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter that has a gradient."""
        beta1, beta2 = self.beta1, self.beta2
        for index, param in enumerate(self.params):
            if param.grad is None:
                continue
            if self.moments[index] is None:
                self.moments[index] = {"step": torch.tensor(0.0),
                                       "exp_avg": torch.zeros_like(param),
                                       "exp_avg_sq": torch.zeros_like(param)}
            state = self.moments[index]
            grad, exp_avg, exp_avg_sq = param.grad, state["exp_avg"], state["exp_avg_sq"]
            state["step"] += 1
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step = state["step"].item()
            step_size = self.lr / (1 - beta1 ** step)
            denom = (exp_avg_sq.sqrt() / (1 - beta2 ** step) ** 0.5).add_(self.eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)
