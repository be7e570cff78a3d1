"""Spiking networks of the study (and their tanh ANN twins) as plain `nn.Module`s.

Plain modules so that any gradient method can swap parameters with
`torch.func.functional_call` and differentiate with `torch.func.jvp` / `vmap`, or by BPTT.
Every spiking forward logs spike counts per hidden layer: deep layers fall silent without a
hidden-weight gain, and a silent layer passes no gradient.
"""

import torch
from norse.torch.functional.leaky_integrator import LIParameters
from norse.torch.functional.lif import LIFParameters
from torch import Tensor, nn

from fwdsnn.snn.lif import LIFLayer, LILayer
from fwdsnn.snn.neuron import DECODES, decode

# Norse's LIF, except dt = 2^-10 s (not 1 ms): then dt tau_inv is a multiple of 1/4096 for every
# integer tau_inv, so Loihi's 12-bit decays realise the trained network exactly (hardware/convert).
NEURON_DEFAULTS = {"tau_syn_inv": 200.0, "tau_mem_inv": 100.0, "v_th": 1.0, "v_leak": 0.0,
                   "v_reset": 0.0, "dt": 2.0 ** -10}
KINDS = ("spiking_mlp", "spiking_deeponet", "spiking_seponet")
MLP_KEYS = ("width", "depth", "steps", "neuron", "gain", "decode", "window")  # model config


def neuron_parameters(neuron: dict) -> tuple[LIFParameters, LIParameters, float]:
    """Norse parameters (LIF hidden layers, LI readout) and dt from a `neuron` config dict."""
    unknown = sorted(set(neuron) - set(NEURON_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown neuron keys {unknown} (known: {sorted(NEURON_DEFAULTS)})")
    values = {**NEURON_DEFAULTS, **neuron}
    n = {key: torch.as_tensor(float(value)) for key, value in values.items() if key != "dt"}
    lif = LIFParameters(tau_syn_inv=n["tau_syn_inv"], tau_mem_inv=n["tau_mem_inv"],
                        v_leak=n["v_leak"], v_th=n["v_th"], v_reset=n["v_reset"])
    li = LIParameters(tau_syn_inv=n["tau_syn_inv"], tau_mem_inv=n["tau_mem_inv"],
                      v_leak=n["v_leak"])
    return lif, li, float(values["dt"])


class _SpikeLog:
    """`spike_rates()` from a module's `last_spike_counts`, `neurons` and `steps`."""

    def spike_rates(self) -> dict[str, float]:
        """Mean spikes per neuron per time step, per hidden layer, in the last forward."""
        return {name: counts.double().mean().item() / (self.neurons[name] * self.steps)
                for name, counts in self.last_spike_counts.items()}


class SpikingMLP(_SpikeLog, nn.Module):
    """x (B, in) -> y (B, out): `depth` Linear+LIF layers, then Linear -> LI readout.

    Encoding: x passes the first Linear once; that current drives the first LIF layer at each
    of the `steps` time steps. Decoding: LI voltage at the last step ("last") or its mean over
    the last `window` steps ("mean"). Init: first layer U(-3/sqrt(in), 3/sqrt(in)), bias
    U(-1, 1), so currents for x in [-1, 1] are of order 1 and cross the firing current
    (0.2 at the default constants) for part of the inputs; width->width weights get the
    default init times `gain` (without it deep layers fall silent). `spiking=False`: the same
    Linear layers with tanh and default init, no time (the ANN baseline).

    After each forward, `last_spike_counts[f"hidden{k}"]` holds spikes per batch element
    summed over steps and neurons, shape (B,) (empty for the ANN, and inside torch.func
    transforms, where the counts could not leave the transform).
    """

    def __init__(self, in_features: int, out_features: int, width: int, depth: int,
                 steps: int, neuron: dict, surrogate, spiking: bool = True, gain: float = 5.0,
                 decode: str = "mean", window: int = 8):
        super().__init__()
        if decode not in DECODES:
            raise ValueError(f"unknown decode '{decode}' (one of {DECODES})")
        if decode == "mean" and not 1 <= window <= steps:
            raise ValueError(f"decode window {window} must lie in [1, steps={steps}]")
        sizes = [in_features] + [width] * depth
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.readout = nn.Linear(width, out_features)
        self.spiking, self.steps, self.decode, self.window = spiking, steps, decode, window
        self.neurons = {f"hidden{k}": width for k in range(depth)} if spiking else {}
        self.last_spike_counts: dict[str, Tensor] = {}
        if spiking:
            lif, li, dt = neuron_parameters(neuron)
            self.lifs = nn.ModuleList(LIFLayer(lif, surrogate, dt) for _ in range(depth))
            self.li = LILayer(li, dt=dt)
            self._spiking_init(gain)

    @torch.no_grad()
    def _spiking_init(self, gain: float):
        first = self.linears[0]
        bound = 3.0 / first.in_features ** 0.5
        nn.init.uniform_(first.weight, -bound, bound)
        nn.init.uniform_(first.bias, -1.0, 1.0)
        for layer in self.linears[1:]:
            layer.weight.mul_(gain)

    def forward(self, x: Tensor) -> Tensor:
        if not self.spiking:
            for layer in self.linears:
                x = torch.tanh(layer(x))
            return self.readout(x)
        current = self.linears[0](x)
        h = current.expand(self.steps, *current.shape)
        counts = {}
        for k, (layer, lif) in enumerate(zip(self.linears, self.lifs)):
            h, _ = lif(layer(h) if k else h)
            counts[f"hidden{k}"] = h.detach().sum(dim=(0, -1))
        self._record(counts)
        v, _ = self.li(self.readout(h))
        return decode(v, self.decode, self.window)

    def _record(self, counts: dict[str, Tensor]):
        """Keep the counts unless they are functorch-wrapped (they would escape the transform)."""
        wrapped = any(torch._C._functorch.is_functorch_wrapped_tensor(c) for c in counts.values())
        self.last_spike_counts = {} if wrapped else counts


class _Operator(_SpikeLog, nn.Module):
    """Operator networks built from SpikingMLPs; spike logs carry the sub-network's name."""

    def _subnets(self) -> dict[str, SpikingMLP]:
        raise NotImplementedError

    @property
    def steps(self) -> int:
        return self.branch.steps

    @property
    def last_spike_counts(self) -> dict[str, Tensor]:
        return {f"{pre}.{name}": counts for pre, net in self._subnets().items()
                for name, counts in net.last_spike_counts.items()}

    @property
    def neurons(self) -> dict[str, int]:
        return {f"{pre}.{name}": n for pre, net in self._subnets().items()
                for name, n in net.neurons.items()}


class SpikingDeepONet(_Operator):
    """u(a)(y) = sum_k b_k(a) t_k(y) + b0, evaluated aligned: a (F, n_sensors), coords
    (P, coord_dim) -> (F, P), branch once per function and trunk once per point.
    `mlp_args` / `mlp_kwargs`: SpikingMLP's arguments after out_features (width, depth, ...)."""

    def __init__(self, n_sensors: int, coord_dim: int, latent: int, *mlp_args, **mlp_kwargs):
        super().__init__()
        self.branch = SpikingMLP(n_sensors, latent, *mlp_args, **mlp_kwargs)
        self.trunk = SpikingMLP(coord_dim, latent, *mlp_args, **mlp_kwargs)
        self.b0 = nn.Parameter(torch.zeros(()))

    def _subnets(self):
        return {"branch": self.branch, "trunk": self.trunk}

    def forward(self, a: Tensor, coords: Tensor) -> Tensor:
        return self.branch(a) @ self.trunk(coords).T + self.b0


class SpikingSepONet(_Operator):
    """u(a)(x_1..x_k) = sum_r b_r(a) prod_i t^i_r(x_i) + b0 with one scalar-input trunk per
    axis, evaluated on the grid by outer products: a (F, n_sensors), axes [(n_i, 1)] ->
    (F, n_1, ..., n_k). `mlp_args` / `mlp_kwargs` as for SpikingDeepONet."""

    def __init__(self, n_sensors: int, n_axes: int, rank: int, *mlp_args, **mlp_kwargs):
        super().__init__()
        self.branch = SpikingMLP(n_sensors, rank, *mlp_args, **mlp_kwargs)
        self.trunks = nn.ModuleList(SpikingMLP(1, rank, *mlp_args, **mlp_kwargs)
                                    for _ in range(n_axes))
        self.b0 = nn.Parameter(torch.zeros(()))

    def _subnets(self):
        return {"branch": self.branch, **{f"trunk{i}": t for i, t in enumerate(self.trunks)}}

    def forward(self, a: Tensor, axes: list[Tensor]) -> Tensor:
        if len(axes) != len(self.trunks):
            raise ValueError(f"{len(axes)} axes given, the model has {len(self.trunks)}")
        grid = "ijklmnopq"[:len(axes)]
        equation = "fr," + ",".join(f"{c}r" for c in grid) + "->f" + grid
        factors = [trunk(x) for trunk, x in zip(self.trunks, axes)]
        return torch.einsum(equation, self.branch(a), *factors) + self.b0


def build_model(kind: str, shapes: dict, cfg: dict, surrogate, spiking: bool) -> nn.Module:
    """Model from its config dict (width, depth, steps, gain, decode, window, neuron, and
    latent / rank) and data shapes: {in_features, out_features} for spiking_mlp,
    {n_sensors, coord_dim} for spiking_deeponet, {n_sensors, n_axes} for spiking_seponet."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind '{kind}' (one of {KINDS})")
    mlp = {key: cfg[key] for key in MLP_KEYS}
    mlp.update(surrogate=surrogate, spiking=spiking)
    if kind == "spiking_mlp":
        return SpikingMLP(shapes["in_features"], shapes["out_features"], **mlp)
    if kind == "spiking_deeponet":
        return SpikingDeepONet(shapes["n_sensors"], shapes["coord_dim"], cfg["latent"], **mlp)
    return SpikingSepONet(shapes["n_sensors"], shapes["n_axes"], cfg["rank"], **mlp)
