"""Taking trained networks to neuromorphic hardware: the fixed-point file format (`format`),
the conversion of trained networks into it (`convert`), the integer emulator (`emulator`), NIR
export (`nir_export`) and work and energy accounting (`energy`)."""
