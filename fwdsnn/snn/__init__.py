"""Spiking networks on Norse with a spike that supports reverse mode, forward mode and vmap."""

from fwdsnn.snn.lif import LIFLayer, LILayer
from fwdsnn.snn.neuron import lif_step
from fwdsnn.snn.models import (SpikingDeepONet, SpikingMLP, SpikingSepONet, build_model,
                               neuron_parameters)
from fwdsnn.snn.spike import FastSigmoid, Gaussian, Stein, heaviside, make_surrogate, spike

__all__ = ["FastSigmoid", "Gaussian", "LIFLayer", "LILayer", "SpikingDeepONet", "SpikingMLP",
           "SpikingSepONet", "Stein", "build_model", "heaviside", "lif_step", "make_surrogate",
           "neuron_parameters", "spike"]
