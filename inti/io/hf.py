"""Hugging Face model folders and their ``config.json``: what the "hf" layout's shapes cannot tell.

The "hf" layout itself (transformers' CLIP towers: ``CLIPVisionModel``,
``CLIPVisionModelWithProjection``, a ``CLIPModel``'s ``vision_model``) is an entry of the key
maps, `inti.io.keymaps.TABLE`, read and written as every other layout is (`inti.io.layouts`).
What its tensors' shapes cannot tell, the heads, the activation and the LayerNorm eps, a model
folder holds in its ``config.json`` (``num_attention_heads``, ``hidden_act``,
``layer_norm_eps``); a field the config leaves out has transformers' ``CLIPVisionConfig``
default (`HF_DEFAULTS`), as transformers itself reads it. Without a config, a state dict gets
the layout's defaults (QuickGELU, eps 1e-5) and ``width // 64`` heads [ours, as CLIP's
build_model], which keyword overrides replace.

A folder, as ``save_pretrained`` writes it, holds ``model.safetensors`` (or
``pytorch_model.bin``) and ``config.json``. `read_folder` reads the weights through their format
module (`inti.io.state_dict_files.read_state_dict`, which checks every size before it allocates
and runs nothing), reads the config only after bounding its size (`CONFIG_MAX_BYTES`), and checks
that the config's sizes are the weights'. Sharded weights (``*.index.json``) are refused.
`inti.io.weights.load`, `inti.io.layouts.convert_state_dict` and `inti.io.pretrained` read
folders through it.
"""

from __future__ import annotations

import json
import numbers
import os

from .errors import WeightsError
from .files import check_regular_file
from .keymaps import FAMILIES, detect_layout, select_tower
from .layout_config import infer_config
from .state_dicts import select_visual

WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")  # in the order a folder is searched
SHARD_INDEXES = tuple(f"{name}.index.json" for name in WEIGHTS_FILES)
CONFIG_FILE = "config.json"
CONFIG_MAX_BYTES = 1 << 20  # a CLIP config.json is a few kB [ours: a bound before reading]
CONFIG_INT_MAX = 1 << 20  # [ours] no ViT has a width, depth, grid or patch beyond this
# transformers' CLIPVisionConfig defaults, which a config.json written with use_diff may leave out
HF_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
               "num_channels": 3, "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu",
               "layer_norm_eps": 1e-5}
ACTIVATIONS = {"quick_gelu": "quick_gelu", "gelu": "gelu"}  # hidden_act -> ours (ACT2FN["gelu"] is exact erf)
UNTOLD = ("heads", "activation", "ln_eps")  # what a config tells and the shapes cannot: ModelConfig overrides
SIZES = ("width", "patch_size", "image_size", "depth", "mlp_width")  # what both tell: they must agree


def _field(doc: dict, name: str, where: str):
    value = doc.get(name, HF_DEFAULTS[name])
    if name == "hidden_act":
        if not isinstance(value, str) or value not in ACTIVATIONS:
            raise ValueError(f"{where}: hidden_act {value!r} is not supported; InTI has exact GELU ('gelu') and "
                             "QuickGELU ('quick_gelu')")
        return ACTIVATIONS[value]
    if name == "layer_norm_eps":
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value <= 0.1:
            raise ValueError(f"{where}: layer_norm_eps must be a number in (0, 0.1], got {value!r}")
        return float(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= CONFIG_INT_MAX:
        raise ValueError(f"{where}: {name} must be an integer in 1..{CONFIG_INT_MAX}, got {value!r}")
    return value


def hints_from_config(doc: dict, where: str = "the config") -> dict:
    """A transformers CLIP config (a CLIPConfig's ``vision_config``, or a CLIPVisionConfig) as
    {"heads", "activation", "ln_eps", "patch_size", "image_size", "width", "depth", "mlp_width"};
    fields it leaves out take transformers' defaults, `HF_DEFAULTS`."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where} must hold a JSON object, got {type(doc).__name__}")
    model_type = doc.get("model_type")
    if model_type not in (None, "clip", "clip_vision_model"):
        raise ValueError(f"{where} describes a {model_type!r} model; the hf layout reads CLIP vision towers "
                         "(model_type 'clip' or 'clip_vision_model')")
    if "vision_config" in doc or model_type == "clip":
        doc = doc.get("vision_config") or {}
        if not isinstance(doc, dict):
            raise ValueError(f"{where}: vision_config must be a JSON object, got {type(doc).__name__}")
    f = {name: _field(doc, name, where) for name in HF_DEFAULTS}
    if f["num_channels"] != 3:
        raise ValueError(f"{where}: num_channels must be 3 (RGB frames), got {f['num_channels']}")
    return {"heads": f["num_attention_heads"], "activation": f["hidden_act"], "ln_eps": f["layer_norm_eps"],
            "patch_size": f["patch_size"], "image_size": f["image_size"], "width": f["hidden_size"],
            "depth": f["num_hidden_layers"], "mlp_width": f["intermediate_size"]}


def read_config(path) -> dict:
    """`hints_from_config` of a config.json, read only after its size is checked (CONFIG_MAX_BYTES)."""
    path = os.fspath(path)
    check_regular_file(path, "config.json", WeightsError)
    size = os.stat(path).st_size
    if size > CONFIG_MAX_BYTES:
        raise WeightsError(f"{path!r} is {size} bytes; a transformers config.json is a few kB "
                           f"(at most {CONFIG_MAX_BYTES} read)")
    with open(path, "rb") as f:
        raw = f.read(CONFIG_MAX_BYTES + 1)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise WeightsError(f"{path!r} is not a JSON config: {e}") from None
    return hints_from_config(doc, repr(path))


def folder_files(folder) -> tuple[str, str | None]:
    """(the weights file, config.json or None) of a Hugging Face model folder; a `WeightsError`
    for a directory that holds no weights file."""
    folder = os.fspath(folder)
    for name in WEIGHTS_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            config = os.path.join(folder, CONFIG_FILE)
            return os.path.join(folder, name), (config if os.path.lexists(config) else None)
    sharded = [n for n in SHARD_INDEXES if os.path.lexists(os.path.join(folder, n))]
    hint = (f"; it holds {sharded[0]}: sharded weights are not read, merge the shards into one model.safetensors"
            if sharded else "")
    raise WeightsError(f"{folder!r} is not a regular file: it is a directory, and not a Hugging Face model folder "
                       f"(it holds no {' or '.join(WEIGHTS_FILES)}{hint})")


def read_folder(folder) -> tuple[dict, dict]:
    """(state dict, overrides) of a Hugging Face model folder: its weights file's flat state dict
    (CPU tensors), and, when a config.json is there, its heads, activation and ln_eps as
    ModelConfig overrides, after checking that the config's sizes are the weights'."""
    from .state_dict_files import read_state_dict  # torch's formats need torch: imported only for a folder

    weights, config = folder_files(folder)
    state_dict = read_state_dict(weights)
    if config is None:
        return state_dict, {}
    hints = read_config(config)
    told = {k: hints[k] for k in UNTOLD}
    tower = select_visual(state_dict)[0]
    family = detect_layout(tower)
    if family != "hf":
        raise WeightsError(f"{config!r} describes a transformers CLIP model, but the keys of {weights!r} are in the "
                           f"{family} layout ({FAMILIES[family].description})")
    cfg = infer_config(select_tower(tower, FAMILIES[family]), "hf", **told)  # names what does not fit
    found = {"width": cfg.width, "patch_size": cfg.patch_size, "image_size": cfg.image_size, "depth": cfg.depth,
             "mlp_width": cfg.mlp_width}
    wrong = [f"{k} {hints[k]} (weights: {found[k]})" for k in SIZES if hints[k] != found[k]]
    if wrong:
        raise WeightsError(f"{config!r} does not describe the weights in {weights!r}: " + ", ".join(wrong))
    return state_dict, told
