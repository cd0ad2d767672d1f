"""inti: the tools around the method, above `ref` (the NumPy spec) and `torch_impl` (its mirror).

    inti.io.params       parameter files (.npz, .safetensors) with their config
    inti.io.checkpoints  reading other libraries' checkpoint files
    inti.io.layouts      timm, OpenAI CLIP and open_clip key layouts <-> InTI parameter dicts
    inti.io.pretrained   from_timm, from_clip, from_checkpoint: pretrained ViTs as InTI models
    inti.io.clips        the bundled sample clips, decoding with PyAV
    inti.tolerances      the one tolerance table and trace comparison
    inti.parity          ref against torch, trace entry by trace entry
    inti.figures         the demo's figures
    inti.labels          how configs, schedules and MAC units are written
    inti.cli             the `inti` command, one module per subcommand

Imports point down only: ref <- torch_impl <- inti <- benchmarks/ and the tests. Importing
`inti` itself loads nothing; each module imports what it needs.
"""

__version__ = "0.1.0"
