"""Spiking networks of the study (and their tanh ANN twins) as plain `nn.Module`s, and the
model protocol every pass goes through.

Plain modules so that any gradient method can swap parameters with
`torch.func.functional_call` and differentiate with `torch.func.jvp` / `vmap`, or by BPTT.
Every spiking forward logs spike counts per hidden layer: deep layers fall silent without a
hidden-weight gain, and a silent layer passes no gradient.

The protocol (`SpikingModel`): a model is named sub-networks (SpikingMLP chains, Linear ->
LIF ... -> LI readout), each fed from one of the forward's inputs (`feed`), and a
combination of their decoded outputs (`combine`). Gradient passes, spike recording, hardware
conversion, emulation, NIR export and energy counts walk sub-networks and call `combine`, so
a new model kind is one class here (or anywhere: subclasses register their `kind`), with no
edit to those modules.
"""

import math
from typing import NamedTuple

import torch
from torch import Tensor, nn

from fwdsnn.snn.lif import LIFLayer, LILayer
from fwdsnn.snn.neuron import DECODES, decode
from fwdsnn.snn.norse_api import LIFParameters, LIParameters

# Norse's LIF, except dt = 2^-10 s (not 1 ms): then dt tau_inv is a multiple of 1/4096 for every
# integer tau_inv, so Loihi's 12-bit decays realise the trained network exactly (hardware/convert).
NEURON_DEFAULTS = {"tau_syn_inv": 200.0, "tau_mem_inv": 100.0, "v_th": 1.0, "v_leak": 0.0,
                   "v_reset": 0.0, "dt": 2.0 ** -10}
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


class Feed(NamedTuple):
    """Where a sub-network's input comes from: `argument` of `model(*inputs)`, `item` of it
    when that argument is a list (one tensor per grid axis), and whether it holds the sampled
    input function (standardised sensor values) rather than coordinates."""

    argument: int
    item: int | None = None
    sensors: bool = False


MODEL_KINDS: dict[str, type] = {}


def model_class(kind: str) -> type:
    """The SpikingModel class registered under `kind` (what model.nc and fixed_w*.nc name)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind '{kind}' (one of {sorted(MODEL_KINDS)})")
    return MODEL_KINDS[kind]


def layer_name(subnet: str, layer: str) -> str:
    """A layer's name in spike logs and hardware files: 'hidden0', 'branch.hidden0', ..."""
    return f"{subnet}.{layer}" if subnet else layer


class SpikingModel(_SpikeLog, nn.Module):
    """The model protocol (module docstring). Subclasses set `kind` (registered by it),
    `combination` (the formula, for NIR metadata) and `layout`, and define `subnets`, `feed`
    and `combine`; the tangent and row forms of `combine` follow from it by `torch.func`."""

    kind: str = ""
    combination: str = ""
    layout: str = ""  # the problem layout its forward's inputs follow (fwdsnn.data)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("kind"):
            MODEL_KINDS[cls.kind] = cls

    def subnets(self) -> dict[str, "SpikingMLP"]:
        """Sub-networks by name ('' for a model that is a single chain), in evaluation order."""
        raise NotImplementedError

    @classmethod
    def feed(cls, name: str) -> Feed:
        """Where sub-network `name` takes its input from."""
        raise NotImplementedError

    @staticmethod
    def combine(outputs: dict[str, Tensor], scalars: dict[str, Tensor]) -> Tensor:
        """The model's output from its sub-networks' decoded outputs and its own parameters."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, shapes: dict, cfg: dict, mlp: dict) -> "SpikingModel":
        """The model of a config (`build_model`): data shapes, model config, and the
        SpikingMLP keyword arguments of its sub-networks taken from that config."""
        raise NotImplementedError(f"{cls.__name__} has no config constructor")

    def combination_macs(self, grid_shape: tuple[int, ...]) -> int:
        """Multiply-accumulates of `combine` for one function on the grid (energy counts)."""
        return 0

    def scalars(self) -> dict[str, Tensor]:
        """The model's own parameters, outside every sub-network (a DeepONet's b0)."""
        return dict(self.named_parameters(recurse=False))

    @classmethod
    def subnet_inputs(cls, names, inputs: tuple) -> dict:
        """Each named sub-network's input picked from `inputs` (tensors or arrays) by `feed`."""
        picked = {}
        for name in names:
            feed = cls.feed(name)
            value = inputs[feed.argument]
            picked[name] = value if feed.item is None else value[feed.item]
        return picked

    def evaluations(self, grid_shape: tuple[int, ...]) -> dict[str, int]:
        """Evaluations of each sub-network per inference (one function on the whole grid): the
        sensors once, a list item once per point of its axis, coordinates once per point."""
        counts = {}
        for name in self.subnets():
            feed = self.feed(name)
            counts[name] = (1 if feed.sensors else math.prod(grid_shape) if feed.item is None
                            else grid_shape[feed.item])
        return counts

    def combine_tangent(self, outputs: dict[str, Tensor], tangents: dict[str, Tensor | None],
                        scalar_tangents: dict[str, Tensor | None]) -> Tensor | None:
        """Tangents (N, *output) of `combine` (the product rule, by `torch.func.jvp`) for N
        tangent rows of the outputs and scalars (None: zero); None when all are zero."""
        scalars = self.scalars()
        present = [t for t in (*tangents.values(), *scalar_tangents.values()) if t is not None]
        if not present:
            return None
        n = present[0].shape[0]

        def rows(values, row_values):
            return {k: row_values.get(k) if row_values.get(k) is not None
                    else torch.zeros_like(v).expand(n, *v.shape) for k, v in values.items()}

        def one(dout, dscalar):
            return torch.func.jvp(self.combine, (outputs, scalars), (dout, dscalar))[1]

        return torch.func.vmap(one)(rows(outputs, tangents), rows(scalars, scalar_tangents))

    @classmethod
    def combine_rows(cls, row_outputs: dict[str, Tensor], scalar_rows: dict[str, Tensor]
                     ) -> Tensor:
        """`combine` per row of batched parameter sets: outputs and scalars with a leading row
        dimension (R, ...) -> (R, *output). A class method: the emulator has the kind only."""
        return torch.func.vmap(cls.combine)(row_outputs, scalar_rows)


class SpikingMLP(SpikingModel):
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

    As a model kind it is its own single sub-network '' and its output is that chain's.
    """

    kind = "spiking_mlp"
    layout = "pointwise"

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

    @classmethod
    def from_config(cls, shapes, cfg, mlp):
        return cls(shapes["in_features"], shapes["out_features"], **mlp)

    def subnets(self) -> dict[str, "SpikingMLP"]:
        return {"": self}

    @classmethod
    def feed(cls, name: str) -> Feed:
        return Feed(0)

    @staticmethod
    def combine(outputs, scalars):
        return outputs[""]

    def _record(self, counts: dict[str, Tensor]):
        """Keep the counts unless they are functorch-wrapped (they would escape the transform)."""
        wrapped = any(torch._C._functorch.is_functorch_wrapped_tensor(c) for c in counts.values())
        self.last_spike_counts = {} if wrapped else counts


class CompositeModel(SpikingModel):
    """A model of several SpikingMLP sub-networks: its forward evaluates each on its feed and
    combines the outputs; spike logs carry the sub-network's name."""

    @property
    def steps(self) -> int:
        return next(iter(self.subnets().values())).steps

    @property
    def last_spike_counts(self) -> dict[str, Tensor]:
        return {layer_name(pre, name): counts for pre, net in self.subnets().items()
                for name, counts in net.last_spike_counts.items()}

    @property
    def neurons(self) -> dict[str, int]:
        return {layer_name(pre, name): n for pre, net in self.subnets().items()
                for name, n in net.neurons.items()}

    def forward(self, *inputs) -> Tensor:
        nets = self.subnets()
        feeds = self.subnet_inputs(nets, inputs)
        return self.combine({name: net(feeds[name]) for name, net in nets.items()}, self.scalars())


class SpikingDeepONet(CompositeModel):
    """u(a)(y) = sum_k b_k(a) t_k(y) + b0, evaluated aligned: a (F, n_sensors), coords
    (P, coord_dim) -> (F, P), branch once per function and trunk once per point.
    `mlp_args` / `mlp_kwargs`: SpikingMLP's arguments after out_features (width, depth, ...)."""

    kind = "spiking_deeponet"
    layout = "deeponet"
    combination = ("u(a)(y) = sum_k branch_output[k] * trunk_output[k] + b0 at every query point y; "
                   "the trunk input is the point's normalised coordinates in the order feeds_json lists")

    def __init__(self, n_sensors: int, coord_dim: int, latent: int, *mlp_args, **mlp_kwargs):
        super().__init__()
        self.branch = SpikingMLP(n_sensors, latent, *mlp_args, **mlp_kwargs)
        self.trunk = SpikingMLP(coord_dim, latent, *mlp_args, **mlp_kwargs)
        self.b0 = nn.Parameter(torch.zeros(()))

    @classmethod
    def from_config(cls, shapes, cfg, mlp):
        return cls(shapes["n_sensors"], shapes["coord_dim"], cfg["latent"], **mlp)

    def subnets(self):
        return {"branch": self.branch, "trunk": self.trunk}

    @classmethod
    def feed(cls, name: str) -> Feed:
        return Feed(0, sensors=True) if name == "branch" else Feed(1)

    @staticmethod
    def combine(outputs, scalars):
        return outputs["branch"] @ outputs["trunk"].transpose(-1, -2) + scalars["b0"]

    def combination_macs(self, grid_shape):
        return self.branch.readout.out_features * math.prod(grid_shape)


class SpikingSepONet(CompositeModel):
    """u(a)(x_1..x_k) = sum_r b_r(a) prod_i t^i_r(x_i) + b0 with one scalar-input trunk per
    axis, evaluated on the grid by outer products: a (F, n_sensors), axes [(n_i, 1)] ->
    (F, n_1, ..., n_k). `mlp_args` / `mlp_kwargs` as for SpikingDeepONet."""

    kind = "spiking_seponet"
    layout = "seponet"
    combination = ("u(a)(x_0, .., x_n) = sum_r branch_output[r] * prod_i trunk{i}_output[r](x_i) + b0 "
                   "on the grid (outer product); trunk i takes the normalised coordinate feeds_json names")

    def __init__(self, n_sensors: int, n_axes: int, rank: int, *mlp_args, **mlp_kwargs):
        super().__init__()
        self.branch = SpikingMLP(n_sensors, rank, *mlp_args, **mlp_kwargs)
        self.trunks = nn.ModuleList(SpikingMLP(1, rank, *mlp_args, **mlp_kwargs)
                                    for _ in range(n_axes))
        self.b0 = nn.Parameter(torch.zeros(()))

    @classmethod
    def from_config(cls, shapes, cfg, mlp):
        return cls(shapes["n_sensors"], shapes["n_axes"], cfg["rank"], **mlp)

    def subnets(self):
        return {"branch": self.branch, **{f"trunk{i}": t for i, t in enumerate(self.trunks)}}

    @classmethod
    def feed(cls, name: str) -> Feed:
        return Feed(0, sensors=True) if name == "branch" else Feed(1, int(name[len("trunk"):]))

    @classmethod
    def subnet_inputs(cls, names, inputs):
        axes = len([name for name in names if name != "branch"])
        if len(inputs[1]) != axes:
            raise ValueError(f"{len(inputs[1])} axes given, the model has {axes}")
        return super().subnet_inputs(names, inputs)

    @staticmethod
    def combine(outputs, scalars):
        trunks = [outputs[f"trunk{i}"] for i in range(len(outputs) - 1)]
        grid = "ijklmnopq"[:len(trunks)]
        equation = "fr," + ",".join(f"{c}r" for c in grid) + "->f" + grid
        return torch.einsum(equation, outputs["branch"], *trunks) + scalars["b0"]

    def combination_macs(self, grid_shape):
        rank = self.branch.readout.out_features
        return rank * sum(math.prod(grid_shape[:j + 1]) for j in range(len(grid_shape)))


def build_model(kind: str, shapes: dict, cfg: dict, surrogate, spiking: bool) -> nn.Module:
    """Model from its config dict (width, depth, steps, gain, decode, window, neuron, and
    latent / rank) and data shapes: {in_features, out_features} for spiking_mlp,
    {n_sensors, coord_dim} for spiking_deeponet, {n_sensors, n_axes} for spiking_seponet."""
    cls = model_class(kind)
    mlp = {key: cfg[key] for key in MLP_KEYS}
    mlp.update(surrogate=surrogate, spiking=spiking)
    return cls.from_config(shapes, cfg, mlp)
