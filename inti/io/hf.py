"""The Hugging Face ``transformers`` layout of CLIP's image tower (layout ``"hf"``), both ways.

transformers' CLIP vision towers (``CLIPVisionModel``, ``CLIPVisionModelWithProjection`` and the
``vision_model.`` part of ``CLIPModel``) hold the image ViT of spec/00-method.md §2 under these
names. Files on the Hub carry the ``vision_model.`` prefix; transformers 5's own
``CLIPVisionModel.state_dict()`` does not, and both are read. The projection sits beside the
tower, never under the prefix.

| ours (spec/00-method.md §3.5) | hf, under ``vision_model.`` |
|---|---|
| ``patch_embed.weight`` | ``embeddings.patch_embedding.weight`` |
| ``cls_token`` | ``embeddings.class_embedding`` |
| ``pos_embed`` (N, C) | ``embeddings.position_embedding.weight`` (an nn.Embedding: the same array) |
| ``ln_pre.*``, ``ln_post.*`` | ``pre_layrnorm.*`` (sic), ``post_layernorm.*`` |
| ``blocks.{i}.norm1.*``, ``.norm2.*`` | ``encoder.layers.{i}.layer_norm1.*``, ``.layer_norm2.*`` |
| ``blocks.{i}.attn.qkv.weight`` (3C, C), ``.bias`` | ``encoder.layers.{i}.self_attn.{q,k,v}_proj.weight``, ``.bias``: stacked |
| ``blocks.{i}.attn.proj.*`` | ``encoder.layers.{i}.self_attn.out_proj.*`` |
| ``blocks.{i}.mlp.fc1.*``, ``.fc2.*`` | ``encoder.layers.{i}.mlp.fc1.*``, ``.fc2.*`` |
| ``proj.weight`` (E, C) | ``visual_projection.weight`` (E, C), no prefix |

The one change beyond names: our fused ``qkv`` is HF's q, k and v projections stacked in that
order. Inside each, HF's heads are contiguous (it views (n, C) as (n, heads, C/heads)), as ours
are. A whole CLIPModel's text tower, ``text_projection`` and ``logit_scale`` are no part of the
image model and are left out, and so is ``embeddings.position_ids``, a constant buffer
(arange(N)) that older files hold.

What the shapes cannot tell comes from the model's ``config.json`` (`read_config`): the heads
(``num_attention_heads``), the activation (``hidden_act``) and the LayerNorm eps
(``layer_norm_eps``); a field it leaves out has transformers' ``CLIPVisionConfig`` default
(`HF_DEFAULTS`), as transformers itself reads it. Without a config, a state dict gets the
same defaults, and ``width // 64`` heads [ours, as CLIP's build_model].

NumPy and the standard library only; `inti.io.layouts` calls these functions for the "hf" layout,
and reading the weights file is `inti.io.checkpoints.load_checkpoint`'s job (passed in).
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re

import numpy as np

from ref.config import ModelConfig
from ref.params import key_report, param_shapes

from .files import check_regular_file

PREFIX = "vision_model."
PROJECTION = "visual_projection.weight"
WEIGHTS_FILES = ("model.safetensors", "pytorch_model.bin")  # in the order a folder is searched
CONFIG_FILE = "config.json"
CONFIG_MAX_BYTES = 1 << 20  # a CLIP config.json is a few kB [ours: a bound before reading]
CONFIG_INT_MAX = 1 << 20  # [ours] no ViT has a width, depth, grid or patch beyond this
# transformers' CLIPVisionConfig defaults, which a config.json written with use_diff may leave out
HF_DEFAULTS = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
               "num_channels": 3, "image_size": 224, "patch_size": 32, "hidden_act": "quick_gelu",
               "layer_norm_eps": 1e-5}
ACTIVATIONS = {"quick_gelu": "quick_gelu", "gelu": "gelu"}  # hidden_act -> ours (ACT2FN["gelu"] is exact erf)
DEFAULT_ACTIVATION, DEFAULT_LN_EPS = "quick_gelu", 1e-5
SHAPE_FIELDS = ("patch_size", "width", "depth", "mlp_ratio", "embed_dim", "num_classes", "ln_pre", "patch_bias")
# Keys of a whole CLIPModel (or an old file's buffer) that are not the image model: dropped.
_OTHER = re.compile(r"^(text_model\.|text_projection\.|logit_scale$)")
_BUFFERS = ("embeddings.position_ids",)

POSITIONS = "embeddings.position_embedding.weight"  # its dtype is the checkpoint's
_TOP = {
    "patch_embed.weight": "embeddings.patch_embedding.weight",
    "cls_token": "embeddings.class_embedding",
    "pos_embed": POSITIONS,
    "ln_pre.weight": "pre_layrnorm.weight", "ln_pre.bias": "pre_layrnorm.bias",
    "ln_post.weight": "post_layernorm.weight", "ln_post.bias": "post_layernorm.bias",
    "proj.weight": PROJECTION,
}
_BLOCK = {  # inside one block: ours -> theirs
    "norm1.weight": "layer_norm1.weight", "norm1.bias": "layer_norm1.bias",
    "attn.proj.weight": "self_attn.out_proj.weight", "attn.proj.bias": "self_attn.out_proj.bias",
    "norm2.weight": "layer_norm2.weight", "norm2.bias": "layer_norm2.bias",
    "mlp.fc1.weight": "mlp.fc1.weight", "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight", "mlp.fc2.bias": "mlp.fc2.bias",
}
QKV = ("q_proj", "k_proj", "v_proj")  # stacked in this order into our qkv
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)$")
_PATTERN = re.compile(
    r"^(?:vision_model\.)?(?:embeddings\.(?:patch_embedding\.weight|class_embedding|position_embedding\.weight)"
    r"|(?:pre_layrnorm|post_layernorm)\.(?:weight|bias)"
    r"|encoder\.layers\.\d+\.(?:self_attn\.(?:q_proj|k_proj|v_proj|out_proj)|layer_norm1|layer_norm2|mlp\.fc1|mlp\.fc2)"
    r"\.(?:weight|bias))$"
    r"|^visual_projection\.weight$"
)


# ---- key maps -------------------------------------------------------------------------------


def hf_keys(key: str) -> tuple[str, ...]:
    """The tower's key(s) for our key, without the prefix: one, or three for a block's qkv.

    hf_keys("blocks.2.attn.qkv.bias") -> ("encoder.layers.2.self_attn.q_proj.bias", ... k_proj, v_proj).
    θ (``merges.*``) and the temporal modules have no counterpart: KeyError."""
    match = _BLOCK_KEY.match(key)
    if match:
        i, rest = match[1], match[2]
        if rest in ("attn.qkv.weight", "attn.qkv.bias"):
            return tuple(f"encoder.layers.{i}.self_attn.{p}.{rest.rsplit('.', 1)[1]}" for p in QKV)
        if rest in _BLOCK:
            return (f"encoder.layers.{i}.{_BLOCK[rest]}",)
    elif key in _TOP:
        return (_TOP[key],)
    raise KeyError(f"{key!r} has no counterpart in the hf layout of CLIP's image tower")


def _prefixed(key: str, prefix: str) -> str:
    return key if key == PROJECTION else prefix + key


def key_map(cfg: ModelConfig, prefix: str = "") -> dict[str, tuple[str, ...]]:
    """Our key -> the hf key(s), for every backbone parameter of `cfg`, tower keys under `prefix`."""
    check_exportable(cfg)
    return {k: tuple(_prefixed(h, prefix) for h in hf_keys(k)) for k in _backbone_keys(cfg)}


def external_shapes(cfg: ModelConfig, prefix: str = "") -> dict[str, tuple[int, ...]]:
    """The hf key -> the shape it must have, for the image ViT that `cfg` describes."""
    shapes = param_shapes(cfg)
    out = {}
    for ours, theirs in key_map(cfg, prefix).items():
        shape = shapes[ours]
        for key in theirs:  # a qkv splits into three (C, C) or (C,)
            out[key] = (shape[0] // len(theirs), *shape[1:])
    return out


def _backbone_keys(cfg: ModelConfig) -> list[str]:
    return [k for k in param_shapes(cfg) if not k.startswith("merges.") and "temporal" not in k]


# ---- reading a state dict ------------------------------------------------------------------


def count_keys(state_dict) -> int:
    """How many keys fit the hf layout (with or without ``vision_model.``): the detection score."""
    return sum(bool(_PATTERN.match(k)) for k in state_dict)


def select_tower(state_dict: dict) -> dict:
    """The image tower's entries without the ``vision_model.`` prefix, with ``visual_projection``;
    a CLIPModel's text tower, ``text_projection``, ``logit_scale`` and the constant
    ``position_ids`` buffer are left out. Other keys stay, for `infer_config` to name."""
    prefixed = any(k.startswith(PREFIX) for k in state_dict)
    out = {}
    for key, value in state_dict.items():
        if _OTHER.match(key):
            continue
        if prefixed and key.startswith(PREFIX):
            key = key[len(PREFIX):]
        if key in _BUFFERS:
            continue
        out[key] = value
    return out


def infer_config(state_dict: dict, default_heads, **overrides) -> ModelConfig:
    """The ModelConfig of the tower in `state_dict` (`select_tower`'s output), from its shapes.

    Shapes give patch_size and width, image_size (N = grid^2 + 1 positions), depth, mlp_ratio
    and embed_dim (``visual_projection``, or None); ln_pre is always there, there is no patch bias
    and no head. heads, activation and ln_eps come from `overrides` (a config.json's, through
    `read_config`) or the defaults; `default_heads(width)` gives the heads otherwise. Every key
    must fit and every expected key must be there: one ValueError names what does not."""
    unknown = sorted(set(overrides) - set(ModelConfig.__dataclass_fields__))
    if unknown:
        raise TypeError(f"unknown ModelConfig field(s) {unknown}; known: {sorted(ModelConfig.__dataclass_fields__)}")
    if "schedule" in overrides or "image_size" in overrides:
        raise TypeError("pass schedule= and image_size= as their own arguments, not as config overrides")
    needed = [_TOP[k] for k in ("patch_embed.weight", "pos_embed")] + ["encoder.layers.0.mlp.fc1.weight"]
    missing = [k for k in needed if k not in state_dict]
    if missing:
        raise ValueError(f"the state dict looks like the hf layout but lacks the keys that fix its shape: "
                         f"{', '.join(missing)}")
    patch = np.shape(state_dict[needed[0]])
    pos = np.shape(state_dict[needed[1]])
    if len(patch) != 4 or patch[1] != 3 or patch[2] != patch[3]:
        raise ValueError(f"{needed[0]} must have shape (C, 3, P, P), got {patch}")
    width, patch_size = int(patch[0]), int(patch[2])
    grid = math.isqrt(max(pos[0] - 1, 0)) if len(pos) == 2 else 0
    if grid < 1 or grid * grid + 1 != pos[0]:
        raise ValueError(f"{needed[1]} must hold a class-token row and a square grid, (h*h + 1, C), got {pos}")
    depth = 1 + max(int(m[1]) for m in map(re.compile(r"^encoder\.layers\.(\d+)\.").match, state_dict) if m)
    inferred = dict(
        image_size=grid * patch_size, patch_size=patch_size, width=width, depth=depth,
        mlp_ratio=np.shape(state_dict[needed[2]])[0] / width,
        embed_dim=int(np.shape(state_dict[PROJECTION])[0]) if PROJECTION in state_dict else None,
        num_classes=0, ln_pre=True, patch_bias=False,
    )
    for field in SHAPE_FIELDS:
        if field in overrides and overrides[field] != inferred[field]:
            raise ValueError(f"{field}={overrides[field]!r} contradicts the checkpoint, whose shapes give "
                             f"{field}={inferred[field]!r}")
    heads = overrides.get("heads", default_heads(width))
    if width % heads:
        raise ValueError(f"cannot split width {width} into {heads} heads; the shapes do not record heads, pass heads=")
    cfg = ModelConfig(**(inferred | {"heads": heads, "activation": DEFAULT_ACTIVATION, "ln_eps": DEFAULT_LN_EPS} | overrides))
    problems = key_report({k: np.shape(v) for k, v in state_dict.items()}, external_shapes(cfg), limit=12)
    if problems:
        raise ValueError(f"the state dict does not fit the hf layout of a CLIP vision tower with width {cfg.width}, "
                         f"depth {cfg.depth}, patch {cfg.patch_size}: " + " | ".join(problems))
    return cfg


def to_ours(state_dict: dict, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """The backbone's parameters under our keys (spec/00-method.md §3.5 order): renames, and q, k, v stacked."""
    out = {}
    for ours, theirs in key_map(cfg).items():
        parts = [np.asarray(state_dict[k]) for k in theirs]
        out[ours] = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)
    return out


def check_exportable(cfg: ModelConfig) -> None:
    """Raise ValueError naming what keeps `cfg`'s image ViT out of the hf layout (CLIPVisionModel's
    architecture). The eps and the activation go into config.json, not the weights: any of ours fits."""
    problems = []
    if cfg.patch_bias:
        problems.append("CLIPVisionModel's patch embedding has no bias, but patch_bias=True")
    if not cfg.ln_pre:
        problems.append("CLIPVisionModel always has pre_layrnorm, but ln_pre=False")
    if cfg.num_classes:
        problems.append(f"a CLIP vision tower has no classifier head, but num_classes={cfg.num_classes}")
    if problems:
        raise ValueError("cannot export to the hf layout: " + "; ".join(problems))


def from_ours(params: dict, cfg: ModelConfig, prefix: str = "") -> dict[str, np.ndarray]:
    """Our backbone parameters -> the hf state dict, tower keys under `prefix` (``"vision_model."``
    for CLIPVisionModelWithProjection, CLIPModel and the Hub's files); qkv split into q, k, v."""
    out = {}
    for ours, theirs in key_map(cfg, prefix).items():
        value = np.asarray(params[ours])
        parts = np.split(value, len(theirs), axis=0) if len(theirs) > 1 else [value]
        out |= {k: np.ascontiguousarray(p) for k, p in zip(theirs, parts)}
    return out


# ---- config.json and folders ---------------------------------------------------------------


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
    check_regular_file(path, "config.json")
    size = os.stat(path).st_size
    if size > CONFIG_MAX_BYTES:
        raise ValueError(f"{path!r} is {size} bytes; a transformers config.json is a few kB (at most {CONFIG_MAX_BYTES} read)")
    with open(path, "rb") as f:
        raw = f.read(CONFIG_MAX_BYTES + 1)
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path!r} is not a JSON config: {e}") from None
    return hints_from_config(doc, repr(path))


def folder_files(folder) -> tuple[str, str | None]:
    """(the weights file, config.json or None) of a Hugging Face model folder."""
    folder = os.fspath(folder)
    for name in WEIGHTS_FILES:
        if os.path.isfile(os.path.join(folder, name)):
            config = os.path.join(folder, CONFIG_FILE)
            return os.path.join(folder, name), (config if os.path.exists(config) else None)
    sharded = [n for n in os.listdir(folder) if n.endswith(".index.json")]
    hint = (f" (it holds {sharded[0]}: sharded weights are not read; merge the shards into one model.safetensors)"
            if sharded else "")
    raise FileNotFoundError(f"{folder!r} holds no {' or '.join(WEIGHTS_FILES)}{hint}")


def read_folder(folder, load) -> tuple[dict, dict]:
    """(state dict, overrides) of a Hugging Face model folder: `load(path)` reads its weights
    file; its config.json, when there, gives heads, activation and ln_eps, and its sizes must
    agree with the weights' shapes."""
    weights, config = folder_files(folder)
    state_dict = load(weights)
    if config is None:
        return state_dict, {}
    hints = read_config(config)
    tower = select_tower(state_dict)
    shapes = {k: np.shape(tower[k]) for k in (_TOP["patch_embed.weight"], _TOP["pos_embed"], "encoder.layers.0.mlp.fc1.weight")
              if k in tower}
    if len(shapes) == 3:  # otherwise infer_config names the missing keys
        (width, _, patch, _), (n, _), (mlp, _) = shapes.values()
        depth = 1 + max(int(m[1]) for m in map(re.compile(r"^encoder\.layers\.(\d+)\.").match, tower) if m)
        found = {"width": width, "patch_size": patch, "image_size": patch * math.isqrt(max(n - 1, 0)), "depth": depth,
                 "mlp_width": mlp}
        wrong = [f"{k} {hints[k]} (weights: {v})" for k, v in found.items() if hints[k] != v]
        if wrong:
            raise ValueError(f"{config!r} does not describe the weights in {weights!r}: " + ", ".join(wrong))
    return state_dict, {k: hints[k] for k in ("heads", "activation", "ln_eps")}
