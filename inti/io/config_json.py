"""The model config as JSON: the one text form of a `ref.ModelConfig` that the project writes.

Parameter files (`inti.io.params`), training checkpoints (`inti.io.train_checkpoint`) and the
ONNX sidecar (`inti.export`) all store it:
``{"format": "inti-params", "version": 1, "config": {field: value, ...}}`` with every
`ModelConfig` field, under the safetensors metadata key ``"inti"`` (`METADATA_KEY`) or the npz
entry ``__inti__`` (`NPZ_ENTRY`). Fields missing from a stored config take the dataclass defaults; unknown
fields are refused; the config is validated when it is built.

    >>> from ref import preset
    >>> config_from_json(config_to_json(preset("nano"))) == preset("nano")
    True
"""

from __future__ import annotations

import dataclasses
import json

from ref.config import ModelConfig

FORMAT = "inti-params"
VERSION = 1
METADATA_KEY = "inti"  # the safetensors metadata key holding the config JSON
NPZ_ENTRY = "__inti__"  # the npz entry holding it, a 0-d string array


def config_to_json(cfg: ModelConfig) -> str:
    """The config, with the format name and version, as one JSON string."""
    if not isinstance(cfg, ModelConfig):
        raise TypeError(f"cfg must be a ref.ModelConfig, got {type(cfg).__name__}")
    fields = dataclasses.asdict(cfg)  # tuples stay tuples, which json writes as lists
    return json.dumps({"format": FORMAT, "version": VERSION, "config": fields}, sort_keys=True)


def config_from_json(text: str, where: str = "the JSON") -> ModelConfig:
    """Parse `config_to_json`'s output back into a validated `ModelConfig`; ValueError naming
    `where` (the file) for anything else."""
    try:
        doc = json.loads(text)
    except (json.JSONDecodeError, TypeError) as e:
        raise ValueError(f"{where}: the stored config is not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"{where} is not an inti parameter file: its stored config has no format {FORMAT!r}")
    if doc.get("version") != VERSION:
        raise ValueError(
            f"{where}: parameter file format version {doc.get('version')!r} is not supported "
            f"(this inti reads version {VERSION})"
        )
    fields = doc.get("config")
    if not isinstance(fields, dict):
        raise ValueError(f"{where}: the stored config must be a JSON object, got {type(fields).__name__}")
    known = {f.name for f in dataclasses.fields(ModelConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"{where}: the stored config has unknown field(s): {', '.join(unknown)}")
    try:
        return ModelConfig(**fields)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{where}: the stored config is invalid: {e}") from None
