"""fwdsnn: spiking neural networks for scientific ML, trained without back-propagation."""

__version__ = "0.1.0"
