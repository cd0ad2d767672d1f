"""inti: the tools around the method, above `ref` (the NumPy spec) and `torch_impl` (its mirror).

    inti.io.params       parameter files (.npz, .safetensors) with their config
    inti.io.checkpoints  reading other libraries' checkpoint files
    inti.io.layouts      timm, OpenAI CLIP, open_clip and Hugging Face key layouts <-> InTI parameter dicts
    inti.io.hf           the Hugging Face CLIP layout: q, k, v stacked, config.json, model folders
    inti.io.pretrained   from_timm, from_clip, from_hf, from_checkpoint: pretrained ViTs as InTI models
    inti.models          create_model, list_models: InTI models by name (also inti.create_model)
    inti.patch           InTI in place on a timm, open_clip or Hugging Face model
    inti.io.clips        the bundled sample clips, decoding with PyAV
    inti.tolerances      the one tolerance table and trace comparison
    inti.parity          ref against torch, trace entry by trace entry
    inti.figures         the demo's figures
    inti.labels          how configs, schedules and MAC units are written
    inti.cli             the `inti` command, one module per subcommand

Imports point down only: ref <- torch_impl <- inti <- benchmarks/ and the tests. Importing
`inti` itself loads nothing; each module imports what it needs, and ``inti.create_model`` and
``inti.list_models`` load `inti.models` on first use.
"""

__version__ = "0.1.0"
__all__ = ["create_model", "list_models"]


def __getattr__(name: str):
    if name in __all__:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'inti' has no attribute {name!r}")
