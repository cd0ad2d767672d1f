"""inti: the tools around the method, above `ref` (the NumPy spec) and `torch_impl` (its mirror).

    inti.io               bytes in and out; one module per file format, one front door for weights:
      weights               load(path): any weights file -> params, config, and what kind it was
      kinds                 what kind of weights file a path holds, from its bytes
      errors                WeightsError and its kinds: CorruptFileError, UnsafeFileError, WrongKindError
      params                inti parameter files (.npz, .safetensors) with their config
      config_json           the model config as JSON, as every inti file stores it
      train_checkpoint      the training checkpoint's file format (the trainer and the loader call it)
      state_dict_files      other libraries' weights files (.safetensors, .npz, .pt, .pth, .bin)
      torchscript           TorchScript archives, read without running them
      state_dicts           state-dict helpers: unwrapping, the visual tower, the stored dtype
      keymaps               the layouts' key maps, one entry per layout (timm, OpenAI CLIP, open_clip, Hugging Face)
      layout_config         a pretrained ViT's config, read off its shapes
      pos_embed             position embeddings resampled for another image size
      layouts               convert_state_dict and to_layout: their state dicts <-> InTI parameters
      hf                    the Hugging Face CLIP layout's config.json and model folders
      pretrained            from_timm, from_clip, from_hf, from_weights, export_state_dict: torch models
      clips                 the bundled sample clips, decoding with PyAV
      outdir                the one output-folder policy (new or empty; --force replaces own files)
      atomic, files         safe writes; what a path is before it is opened
      optional              optional dependencies, each naming the extra that brings it
    inti.models           create_model, list_models: InTI models by name (also inti.create_model)
    inti.patch            InTI in place on a timm, open_clip or Hugging Face model, with undo
    inti.assets           the shipped trained InTI and its sample clips
    inti.data             datasets, list files, sampling, transforms, synthetic tasks
    inti.train            the training engine: loop, recipe, optimizer, checkpoints, DDP, models
    inti.export           ONNX export with a JSON sidecar
    inti.parity           ref against torch, trace entry by trace entry
    inti.walltime         the demo's wall times: warmed up, median of repeats, bounded threads
    inti.tolerances       the one tolerance table and trace comparison
    inti.figures          the demo's figures
    inti.labels           how configs, schedules and MAC units are written
    inti.experiments      experiment drivers (the evidence experiment)
    inti.cli              the `inti` command: one module per subcommand, plus common and report

Imports point down only: ref <- torch_impl <- inti <- benchmarks/ and the tests, and no module
imports another that imports it back. Importing `inti` itself loads nothing; each module
imports what it needs, and ``inti.create_model`` and ``inti.list_models`` load `inti.models`
on first use.
"""

__version__ = "0.1.0"
__all__ = ["create_model", "list_models"]


def __getattr__(name: str):
    if name in __all__:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'inti' has no attribute {name!r}")
