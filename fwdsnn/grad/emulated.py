"""Weight perturbation in the loop: every loss evaluation runs the integer emulator. `InLoop`
(the method key `hardware`) also converts the model for node perturbation in the loop
(`node_loop`).

The float master weights stay the trained parameters. At each step every parameter set the
estimator asks for (θ, then θ ± εv per direction) is mapped to fixed point by the hardware
converter's own mapping (`fwdsnn.hardware.convert.convert`: per set, its own state scales,
exponents and rounding), and all sets run through one batched pass of the emulator
(`emulate_rows`); the losses are those of the emulated decoded outputs, combined by the
model's own `combine`. The central slopes then update the float master weights, so what is
trained is the loss of the chip's integers, not of the float network.

ε is counted in quantisation steps: a weight of layer l moves by ε q_l v, with q_l =
max|W_l| / (2^(bits-1) - 1) at the current weights, the mantissa step the converter gives the
layer's largest weight (a fine Dense makes the first layer's resolution finer still). Model
scalars outside every layer (a DeepONet's b0, kept in float by the format) take the smallest
q_l. With ε >= 1 a direction entry of size one moves its weight by a whole step at least, so
the perturbation cannot round away; smaller ε is refused.
"""

import torch
from torch import Tensor, nn

from fwdsnn.data import Affine
from fwdsnn.grad.base import mse
from fwdsnn.grad.layers import parameter_layers
from fwdsnn.grad.rows import Blocks, block_rows
from fwdsnn.hardware.convert import INPUT_BITS, convert
from fwdsnn.hardware.emulator import emulate_rows
from fwdsnn.hardware.format import HardwareNet, WEIGHT_BITS
from fwdsnn.parameters import holding

KEYS = ("bits", "input_bits", "synaptic_delay")
NORMALISED = Affine(0.0, 1.0)  # losses are taken on the model's normalised outputs


class InLoop:
    """The `hardware` method key of weight and node perturbation: bits (required), input_bits
    (default the converter's), synaptic_delay (default 0, Norse's timing)."""

    def __init__(self, settings: dict):
        if not isinstance(settings, dict):
            raise ValueError(f"method.hardware must be a mapping of {KEYS}, got {settings!r}")
        unknown = sorted(set(settings) - set(KEYS))
        if unknown:
            raise ValueError(f"method.hardware: unknown key(s) {unknown} (known: {list(KEYS)})")
        if "bits" not in settings:
            raise ValueError("method.hardware.bits is required (the weight bits of the emulated chip)")
        self.bits = settings["bits"]
        self.input_bits = settings.get("input_bits", INPUT_BITS)
        self.synaptic_delay = settings.get("synaptic_delay", 0)
        if self.bits not in WEIGHT_BITS:
            raise ValueError(f"method.hardware.bits {self.bits!r} not one of {WEIGHT_BITS}")
        if not (isinstance(self.input_bits, int) and 2 <= self.input_bits <= 24):
            raise ValueError(f"method.hardware.input_bits {self.input_bits!r} must be an integer in [2, 24]")
        if self.synaptic_delay not in (0, 1):
            raise ValueError(f"method.hardware.synaptic_delay {self.synaptic_delay!r} must be 0 or 1")

    def steps(self, model: nn.Module) -> dict[str, float]:
        """Quantisation step q of each parameter's layer (module docstring), by parameter name."""
        params = dict(model.named_parameters())
        top = 2 ** (self.bits - 1) - 1
        layer_step = {}
        for owner, names in parameter_layers(model).items():
            weight = params.get(f"{owner}.weight")
            if weight is not None:
                layer_step[owner] = float(weight.detach().abs().max()) / top
                if layer_step[owner] == 0:
                    raise ValueError(f"layer {owner!r} has all-zero weights: no quantisation step "
                                     "to perturb it by (method.hardware)")
        finest = min(layer_step.values())
        return {name: layer_step.get(owner, finest)
                for owner, names in parameter_layers(model).items() for name in names}

    def nets(self, model: nn.Module, offsets: Blocks) -> list[HardwareNet]:
        """θ's network, then one per offset row (θ + offset), each converted on its own."""
        nets = [self.convert(model)]
        params = dict(model.named_parameters())
        for block, n in zip(offsets, block_rows(model, offsets)):
            for row in range(n):
                with holding(params, {name: params[name] + rows[row] for name, rows in block.items()}):
                    nets.append(self.convert(model))
        return nets

    def convert(self, model: nn.Module) -> HardwareNet:
        """The model at this chip's settings, by the hardware converter's own mapping."""
        return convert(model, NORMALISED, self.bits, self.input_bits, self.synaptic_delay)

    @staticmethod
    def check_cpu(model: nn.Module) -> None:
        if any(p.device.type != "cpu" for p in model.parameters()):
            raise ValueError("method.hardware: the emulator runs on the CPU; train with device cpu")

    @torch.no_grad()
    def losses(self, model: nn.Module, inputs: tuple, target: Tensor, offsets: Blocks) -> Tensor:
        """Losses (1 + N,) of the emulated outputs: θ's, then one per offset row (the signature
        of `perturbation.perturbed_losses`), all sets in one batched emulator pass."""
        self.check_cpu(model)
        outputs, _ = emulate_rows(self.nets(model, offsets), inputs)
        return mse(outputs, target.to(outputs.dtype)).to(target.dtype)
