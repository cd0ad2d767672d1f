"""Bytes in and out: parameter files, checkpoint files and layouts, pretrained models, clips.

Import the module you need (`from inti.io.params import load_params`); this package imports
none of them, so that reading a parameter file never loads torch or PyAV.
"""
