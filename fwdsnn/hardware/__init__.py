"""Taking trained networks to neuromorphic hardware: fixed-point format, emulator, NIR, energy."""
