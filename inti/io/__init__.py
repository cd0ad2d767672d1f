"""Bytes in and out: weights files (one front door, `inti.io.weights.load`, and one module per
format), layouts, pretrained models, clips, output folders and safe writes (the map is in
`inti`'s docstring).

Import the module you need (`from inti.io.weights import load`); this package imports none of
them, so that reading a parameter file never loads torch or PyAV.
"""
