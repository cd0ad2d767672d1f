"""Recipe files: one TOML file per setting (`recipes/`), read, checked field by field, changed by
``--set key=value`` overrides, and resolved to what a run needs: the model config, the
`TrainConfig`, the data and augmentation settings, and the test protocol.

A recipe has seven tables; `SCHEMA` lists every field with its type, default and bounds:

    [recipe]   name, description, and what the paper states for the setting, if anything
    [model]    preset (the backbone), weights, frames, schedule, temporal module, classes,
               drop_path, grad_checkpoint
    [data]     list files, root, class names, the list separator, sizes, workers, --skip-bad,
               the decoder and its threads per clip (0: FFmpeg's choice), or a synthetic task
    [augment]  inti.data.augment.VideoAugment: crop, scale, ratio, flip, auto_augment, erase
    [optim]    epochs, warmup, global batch, the lr rule (blr per 256 clips), AdamW, the toolkit
    [test]     views T x S, crop and resize, batch
    [run]      the GPUs the recipe was written for (for the per-GPU estimates) and the device

``base = "other.toml"`` at the top of a file reads that file first (relative to this one) and
lays this file's tables over it, key by key. An unknown table or key, a value of the wrong
type or out of bounds is refused with the file and the key. TOML has no null: empty strings
and zeros mean "none" where a field says so.

The learning-rate rule [ours: VideoMAE's and ST-Adapter's linear scaling]: the peak lr is
``blr * batch_size / 256``, with `batch_size` the global batch (all GPUs and accumulation
steps), unless ``optim.lr`` is set above 0, which is then the lr itself (ST-Adapter's --lr).
Epochs become optimizer steps with the training set's size: ``steps = round(epochs *
(clips // batch_size))``, the warmup likewise; ``optim.steps`` above 0 replaces the count and
keeps the warmup's share.

    >>> parse_set("frames=16"), parse_set("optim.lr=3e-4"), parse_set("schedule=8,20")
    (('model', 'frames', 16), ('optim', 'lr', 0.0003), ('model', 'schedule', [8, 20]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

TYPES = {"str": str, "int": int, "float": float, "bool": bool, "ints": list, "floats": list}


@dataclass(frozen=True)
class Field:
    kind: str
    default: object
    lo: float | None = None
    hi: float | None = None
    choices: tuple = ()
    length: int | None = None  # lists: the exact length (None: any)


def F(kind, default, lo=None, hi=None, choices=(), length=None) -> Field:
    return Field(kind, default, lo, hi, tuple(choices), length)


TEMPORALS = ("none", "st_adapter", "st_adapter_12x384", "st_adapter_24x384", "aim")
SCHEMA: dict[str, dict[str, Field]] = {
    "recipe": {"name": F("str", ""), "description": F("str", ""),
               "paper_top1": F("float", 0.0, 0, 100),  # the paper's top-1 for this setting; 0: not stated
               "paper_reduction": F("float", 0.0, 0, 1)},  # the paper's GFLOPs reduction; 0: not stated
    "model": {"preset": F("str", "vit_b16"), "weights": F("str", ""), "init": F("str", "pretrained", choices=("pretrained", "fresh")),
              "frames": F("int", 8, 1, 1024), "schedule": F("ints", [3], 1, 1024),
              "temporal": F("str", "none", choices=TEMPORALS), "num_classes": F("int", 400, 2, 100_000),
              "drop_path": F("float", 0.0, 0, 0.99), "grad_checkpoint": F("bool", False)},
    "data": {"dataset": F("str", ""), "train_list": F("str", ""), "val_list": F("str", ""), "root": F("str", ""),
             "classes": F("str", ""), "separator": F("str", " "), "train_clips": F("int", 0, 0, 10**9),
             "resize": F("int", 0, 0, 4096), "workers": F("int", 8, 0, 256), "skip_bad": F("bool", True),
             "decoder": F("str", "pyav", choices=("pyav", "torchcodec")), "decode_threads": F("int", 1, 0, 64),
             "synthetic": F("str", "", choices=("", "informative", "motion")),
             "synthetic_train": F("int", 256, 1, 10**6), "synthetic_val": F("int", 128, 1, 10**6)},
    "augment": {"crop": F("str", "random", choices=("random", "resized")), "scale": F("floats", [0.08, 1.0], 0, 1, length=2),
                "ratio": F("floats", [0.75, 1.3333], 0, 100, length=2), "flip": F("bool", True),
                "auto_augment": F("str", "none"), "erase": F("float", 0.0, 0, 1)},
    "optim": {"epochs": F("float", 30.0, 0, 10_000), "warmup_epochs": F("float", 5.0, 0, 10_000), "steps": F("int", 0, 0, 10**9),
              "batch_size": F("int", 64, 1, 1_000_000), "accum": F("int", 1, 1, 4096),
              "blr": F("float", 1e-3, 0, 10), "lr": F("float", 0.0, 0, 10), "min_lr": F("float", 1e-6, 0, 10),
              "weight_decay": F("float", 0.05, 0, 10), "betas": F("floats", [0.9, 0.999], 0, 0.999999, length=2),
              "layer_decay": F("float", 1.0, 0, 1), "clip_grad": F("float", 0.0, 0, 1e6),
              "label_smoothing": F("float", 0.0, 0, 1), "mixup": F("float", 0.0, 0, 100), "cutmix": F("float", 0.0, 0, 100),
              "mix_prob": F("float", 1.0, 0, 1), "mix_switch_prob": F("float", 0.5, 0, 1), "ema_decay": F("float", 0.0, 0, 0.999999),
              "freeze_backbone": F("bool", False), "lr_backbone": F("float", 1.0, 0, 1000), "lr_theta": F("float", 1.0, 0, 1000),
              "lr_head": F("float", 1.0, 0, 1000), "lr_temporal": F("float", 1.0, 0, 1000), "bf16": F("bool", True),
              "seed": F("int", 0, 0, 2**31 - 1), "eval_every_epochs": F("float", 1.0, 0, 10_000),
              "log_every": F("int", 50, 1, 10**9), "keep": F("int", 2, 1, 1000)},
    "test": {"views": F("ints", [1, 1], 1, 64, length=2), "crop": F("int", 0, 0, 4096), "resize": F("int", 0, 0, 4096),
             "batch_size": F("int", 8, 1, 100_000)},
    "run": {"gpus": F("int", 8, 1, 100_000), "device": F("str", "cuda", choices=("cuda", "cpu"))},
}
TOP_LEVEL = ("base",)
MAX_BASES = 8


class RecipeError(ValueError):
    """A recipe that cannot be read or resolved; the message names the file and the key."""


def _tomllib():
    import sys

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10: the `train` extra brings tomli
        try:
            import tomli as tomllib
        except ImportError:
            raise ImportError("reading recipes on Python 3.10 needs tomli: pip install 'inti[train]'") from None
    return tomllib


def _toml(path: Path) -> dict:
    from ..io.files import check_regular_file

    tomllib = _tomllib()

    check_regular_file(path, "recipe")
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise RecipeError(f"recipe {str(path)!r} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise RecipeError(f"recipe {str(path)!r} is not valid TOML: {e}") from None


def check_value(section: str, key: str, value, where: str):
    """`value` as the field's type (an int is accepted for a float), within its bounds; a
    RecipeError naming `where` and the key otherwise."""
    f = SCHEMA[section][key]
    name = f"{where}: [{section}] {key}"
    want = {"str": "a string", "int": "an integer", "float": "a number", "bool": "true or false",
            "ints": "a list of integers", "floats": "a list of numbers"}[f.kind]

    def bad(detail=""):
        return RecipeError(f"{name} must be {want}{detail}, got {value!r}")

    def number(v, integer):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            raise bad()
        if isinstance(v, float) and not math.isfinite(v):
            raise bad(" (finite)")
        if (f.lo is not None and v < f.lo) or (f.hi is not None and v > f.hi):
            raise bad(f" in [{f.lo:g}, {f.hi:g}]")
        return v if integer else float(v)

    if f.kind == "str":
        if not isinstance(value, str):
            raise bad()
        if f.choices and value not in f.choices:
            raise RecipeError(f"{name} must be one of {list(f.choices)}, got {value!r}")
        return value
    if f.kind == "bool":
        if not isinstance(value, bool):
            raise bad()
        return value
    if f.kind in ("int", "float"):
        return number(value, f.kind == "int")
    if not isinstance(value, list) or (f.length is not None and len(value) != f.length):
        raise bad(f" of length {f.length}" if f.length else "")
    return [number(v, f.kind == "ints") for v in value]


@dataclass
class Recipe:
    """A read recipe: `values[section][key]`, every field present; `sources[section.key]` says
    which file (or --set) gave it, "default" for the schema's default."""

    path: Path
    values: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)

    def get(self, section: str, key: str):
        return self.values[section][key]


def _layers(path: Path, seen: tuple = ()) -> list[tuple[Path, dict]]:
    """[(file, its tables)], the deepest base first."""
    path = Path(path)
    if len(seen) > MAX_BASES:
        raise RecipeError(f"recipe {str(path)!r}: more than {MAX_BASES} levels of base files")
    if path.resolve() in seen:
        raise RecipeError(f"recipe {str(path)!r}: its base files form a cycle")
    doc = _toml(path)
    base = doc.pop("base", None)
    layers = []
    if base is not None:
        if not isinstance(base, str) or not base:
            raise RecipeError(f"{path}: base must be the name of another recipe file, got {base!r}")
        layers = _layers(path.parent / base, seen + (path.resolve(),))
    return layers + [(path, doc)]


def read_recipe(path, sets=()) -> Recipe:
    """Read a recipe file (and its bases) and apply ``key=value`` overrides, checking every
    table, key, type and bound."""
    recipe = Recipe(Path(path))
    for section, fields in SCHEMA.items():
        recipe.values[section] = {k: (list(f.default) if isinstance(f.default, list) else f.default) for k, f in fields.items()}
        recipe.sources.update({f"{section}.{k}": "default" for k in fields})
    for file, doc in _layers(path):
        for section, table in doc.items():
            if section not in SCHEMA:
                raise RecipeError(f"{file}: unknown table [{section}]; a recipe has {', '.join(f'[{s}]' for s in SCHEMA)}")
            if not isinstance(table, dict):
                raise RecipeError(f"{file}: {section} must be a table ([{section}]), got {table!r}")
            for key, value in table.items():
                if key not in SCHEMA[section]:
                    raise RecipeError(f"{file}: unknown key {key!r} in [{section}]; it has {', '.join(SCHEMA[section])}")
                recipe.values[section][key] = check_value(section, key, value, str(file))
                recipe.sources[f"{section}.{key}"] = str(file)
    for text in sets:
        section, key, value = parse_set(text)
        recipe.values[section][key] = value
        recipe.sources[f"{section}.{key}"] = f"--set {text}"
    return recipe


def find_key(name: str) -> tuple[str, str]:
    """'section.key' or a bare key that exactly one table holds -> (section, key)."""
    if "." in name:
        section, key = name.split(".", 1)
        if section not in SCHEMA or key not in SCHEMA[section]:
            raise RecipeError(f"--set {name}: no such field; fields are section.key, such as optim.lr or model.frames")
        return section, key
    owners = [s for s, fields in SCHEMA.items() if name in fields]
    if not owners:
        raise RecipeError(f"--set {name}: no such field in any table ({', '.join(SCHEMA)})")
    if len(owners) > 1:
        raise RecipeError(f"--set {name}: ambiguous, in {', '.join(owners)}; write {owners[0]}.{name} or {owners[1]}.{name}")
    return owners[0], name


def parse_set(text: str) -> tuple[str, str, object]:
    """``key=value`` -> (section, key, value): the value read as a TOML value (``3e-4``,
    ``true``, ``[8, 20]``, ``"x"``), or as a bare string for a string field (``preset=nano``);
    a list field also takes ``8,20``."""
    tomllib = _tomllib()

    if not isinstance(text, str) or "=" not in text:
        raise RecipeError(f"--set takes key=value, such as optim.lr=3e-4 or frames=16, got {text!r}")
    name, raw = (s.strip() for s in text.split("=", 1))
    section, key = find_key(name)
    kind = SCHEMA[section][key].kind
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if kind == "str":
            value = raw
        elif kind in ("ints", "floats") and raw:
            try:
                value = tomllib.loads(f"v = [{raw}]")["v"]
            except tomllib.TOMLDecodeError:
                value = raw
        else:
            value = raw
    if kind == "str" and not isinstance(value, str):
        value = raw
    if kind in ("ints", "floats") and not isinstance(value, list) and SCHEMA[section][key].length != 2:
        value = [value]
    return section, key, check_value(section, key, value, f"--set {text}")


# ---- resolution ---------------------------------------------------------------------------------


@dataclass
class Resolved:
    """What a run needs, resolved from a recipe: the model config, the training config, the
    data and augmentation settings, the test protocol, and notes on how each was derived."""

    recipe: Recipe
    model: object  # ref.ModelConfig
    train: object  # inti.train.TrainConfig
    augment: object  # inti.data.augment.VideoAugment
    data: dict
    test: dict
    train_clips: int
    steps_per_epoch: int
    notes: list


def count_clips(list_file, separator: str | None = None) -> int:
    from ..data.lists import read_list

    return len(read_list(list_file, separator=None if separator in ("", " ") else separator))


def model_config(recipe: Recipe, where: str):
    """The run's model config: the preset with the recipe's classes, schedule and module."""
    from ref.checks import check_frames

    from ..registry import MODELS, list_models, named_config

    m = recipe.values["model"]
    if m["preset"] not in MODELS:  # the registry that --preset and inti.create_model read
        raise RecipeError(f"{where}: [model] preset must be one of {list_models()}, got {m['preset']!r}")
    try:
        cfg = named_config(m["preset"], num_classes=m["num_classes"], schedule=tuple(m["schedule"]),
                           temporal=None if m["temporal"] == "none" else m["temporal"], frames=m["frames"])
        check_frames(m["frames"], cfg)
    except ValueError as e:
        raise RecipeError(f"{where}: [model] does not resolve: {e}") from None
    return cfg


def resolve(recipe: Recipe, train_clips: int | None = None) -> Resolved:
    """Resolve a read recipe. train_clips: the size of the training set (the list's count);
    None takes the synthetic count, else the recipe's nominal `data.train_clips`."""
    from ..data.augment import VideoAugment
    from .config import TrainConfig

    where, v, notes = str(recipe.path), recipe.values, []
    cfg = model_config(recipe, where)
    a = v["augment"]
    try:
        augment = VideoAugment(crop=a["crop"], scale=tuple(a["scale"]), ratio=tuple(a["ratio"]), flip=a["flip"],
                               auto_augment=a["auto_augment"], erase=a["erase"])
    except ValueError as e:
        raise RecipeError(f"{where}: [augment] {e}") from None
    o, d, t = v["optim"], v["data"], v["test"]
    if train_clips is None:
        train_clips = d["synthetic_train"] if d["synthetic"] else d["train_clips"]
        notes.append(f"training clips: {train_clips} ({'synthetic' if d['synthetic'] else 'data.train_clips, nominal'})")
    if train_clips < o["batch_size"]:
        raise RecipeError(f"{where}: the training set has {train_clips} clips, fewer than one global batch of "
                          f"[optim] batch_size = {o['batch_size']}" + ("" if train_clips else "; set data.train_clips or give the lists"))
    per_epoch = train_clips // o["batch_size"]
    if o["steps"]:
        steps = o["steps"]
        warmup = round(steps * o["warmup_epochs"] / o["epochs"]) if o["epochs"] else 0
        notes.append(f"steps: {steps} (optim.steps), warmup {warmup}, the recipe's share of {o['warmup_epochs']:g}/{o['epochs']:g} epochs")
    else:
        steps, warmup = max(round(o["epochs"] * per_epoch), 1), round(o["warmup_epochs"] * per_epoch)
        notes.append(f"steps: {steps} = {o['epochs']:g} epochs x {per_epoch} steps of {o['batch_size']} clips; warmup {warmup}")
    warmup = min(warmup, steps - 1)
    lr = o["lr"] if o["lr"] > 0 else o["blr"] * o["batch_size"] / 256
    notes.append(f"lr: {lr:.4g} " + ("(optim.lr, absolute)" if o["lr"] > 0 else
                                    f"= blr {o['blr']:g} x batch {o['batch_size']} / 256 (linear scaling rule)"))
    if o["batch_size"] % (o["accum"] * v["run"]["gpus"]):
        notes.append(f"note: batch {o['batch_size']} is not a multiple of accum x gpus = {o['accum'] * v['run']['gpus']}; "
                     "a launch on that many GPUs will refuse it")
    try:
        train = TrainConfig(
            steps=steps, batch_size=o["batch_size"], accum=o["accum"], lr=lr, min_lr=min(o["min_lr"], lr),
            warmup_steps=warmup, weight_decay=o["weight_decay"], betas=tuple(o["betas"]),
            clip_grad=o["clip_grad"] or None, label_smoothing=o["label_smoothing"], bf16=o["bf16"],
            freeze_backbone=o["freeze_backbone"], lr_backbone=o["lr_backbone"], lr_theta=o["lr_theta"],
            lr_head=o["lr_head"], lr_temporal=o["lr_temporal"], seed=o["seed"],
            eval_every=max(1, round(o["eval_every_epochs"] * per_epoch)) if o["eval_every_epochs"] else 0,
            log_every=o["log_every"], keep=o["keep"], layer_decay=o["layer_decay"] or 1.0,
            drop_path=v["model"]["drop_path"], mixup=o["mixup"], cutmix=o["cutmix"], mix_prob=o["mix_prob"],
            mix_switch_prob=o["mix_switch_prob"], ema_decay=o["ema_decay"], grad_checkpoint=v["model"]["grad_checkpoint"])
    except ValueError as e:
        raise RecipeError(f"{where}: [optim] {e}") from None
    crop = t["crop"] or cfg.image_size
    if crop != cfg.image_size:
        raise RecipeError(f"{where}: [test] crop = {crop} differs from the model's {cfg.image_size} px; the model reads "
                          f"{cfg.image_size} px frames (0 takes the model's size)")
    resize = d["resize"] or cfg.image_size
    test = {"views": tuple(t["views"]), "crop": crop, "resize": t["resize"] or crop, "batch_size": t["batch_size"]}
    for name, value in (("data.resize", resize), ("test.resize", test["resize"])):
        if value < crop:
            raise RecipeError(f"{where}: {name} = {value} is below the crop, {crop} px")
    data = dict(d, resize=resize, separator=d["separator"] or " ")
    return Resolved(recipe, cfg, train, augment, data, test, train_clips, per_epoch, notes)


def resolved_toml(recipe: Recipe) -> str:
    """The recipe with every field written out (the file a run keeps as ``recipe.toml``): a
    run started from it with no --set is the same run. A header names the sources."""
    try:
        import tomli_w
    except ImportError:
        raise ImportError("writing a resolved recipe needs tomli-w: pip install 'inti[train]'") from None
    changed = sorted({s for s in recipe.sources.values() if s != "default"})
    head = [f"# resolved recipe: every field, from {str(recipe.path)!r}", "# sources (defaults aside):"]
    head += [f"#   {s}" for s in changed]
    return "\n".join(head) + "\n\n" + tomli_w.dumps(recipe.values)
