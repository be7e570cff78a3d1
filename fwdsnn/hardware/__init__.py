"""Neuromorphic-hardware side of the study: the fixed-point file format (`format`), the
conversion of trained networks into it (`convert`) and the integer emulator (`emulator`)."""
