"""Weight perturbation (WP): gradient estimates from loss values alone, through the true spike.

For random directions v_k the directional derivative is taken as a central difference,
d_k = [L(θ + εv_k) − L(θ − εv_k)] / (2ε), and g = (1/K) Σ_k d_k v_k. No derivative of the
spike is used (the LIF layers run bare, see `bare_spikes`), so what WP follows is the loss
smoothed over the scale ε: ε must be large enough to flip spikes (~1e-2–1e-1); at tiny ε a
hidden layer's estimate is zero unless a spike happens to flip, and then it is huge.

All perturbed parameter sets of a group are evaluated in one pass: `torch.func.vmap` over the
stacked sets with `torch.func.functional_call` (a Linear layer becomes a batched matmul).
Parameters outside the group stay unbatched, so vmap computes what depends on them alone (the
layers before a perturbed one, the other sub-network of an operator) once for all sets.
"""

import torch
from torch import Tensor
from torch.func import functional_call, vmap

from fwdsnn.grad.base import Estimate, mse
from fwdsnn.grad.directions import DirectionalEstimator
from fwdsnn.snn.lif import bare_spikes


def perturbed_losses(model: torch.nn.Module, inputs: tuple, target: Tensor,
                     offsets: dict[str, Tensor]) -> Tensor:
    """Loss at θ + offsets[s] for every set s, shape (S,), in one vmapped pass through the
    bare spike. `offsets` maps parameter names to (S, *shape); the others keep their values."""
    params = dict(model.named_parameters())
    with torch.no_grad(), bare_spikes(model):
        sets = {name: params[name] + offset for name, offset in offsets.items()}
        return vmap(lambda batched: mse(functional_call(model, batched, inputs), target))(sets)


def central_slopes(model: torch.nn.Module, inputs: tuple, target: Tensor,
                   directions: dict[str, Tensor], epsilon: float,
                   with_center: bool = False) -> tuple[Tensor, Tensor | None]:
    """Central differences d_k, shape (K,), along `directions` (name -> (K, *shape), zero in
    the parameters not named), plus the unperturbed loss if asked (one more set in the pass)."""
    offsets = {name: epsilon * torch.cat([v, -v]) for name, v in directions.items()}
    if with_center:
        offsets = {name: torch.cat([offset, torch.zeros_like(offset[:1])])
                   for name, offset in offsets.items()}
    losses = perturbed_losses(model, inputs, target, offsets)
    k = next(iter(directions.values())).shape[0]
    return (losses[:k] - losses[k:2 * k]) / (2.0 * epsilon), losses[2 * k] if with_center else None


class WeightPerturbation(DirectionalEstimator):
    """WP with K antithetic direction pairs: over all trainable parameters at once (scope
    "global") or per layer of `parameter_layers`, each zero outside its layer ("layer").

    `forward_passes` counts the parameter sets evaluated, one forward pass each: 2K per group
    plus the unperturbed set whose loss is reported (2K + 1 global, 2KL + 1 over L layers).
    In layer scope the layers before the perturbed one run once per group, not once per set,
    so wall time grows more slowly than this count.
    """

    def __init__(self, method: dict, generator: torch.Generator):
        super().__init__(method, generator)
        self.epsilon = float(method["epsilon"])

    def estimate(self, model: torch.nn.Module, inputs: tuple, target: Tensor) -> Estimate:
        groups = self.groups(model)
        params = dict(model.named_parameters())
        model.zero_grad(set_to_none=True)
        for index, names in enumerate(groups):
            directions = {name: self.draw(params[name]) for name in names}
            # The unperturbed set rides with the last group (in layer scope the output layer,
            # whose inputs are computed once for all its sets anyway).
            slopes, loss = central_slopes(model, inputs, target, directions, self.epsilon,
                                          with_center=index == len(groups) - 1)
            for name, v in directions.items():
                params[name].grad = torch.tensordot(slopes, v, dims=1) / self.directions
        return Estimate(loss=loss.item(), forward_passes=2 * self.directions * len(groups) + 1)
