"""From a resolved recipe to the pieces of a run: the datasets (with the recipe's augmentation),
the model (pretrained weights or a preset, with the toolkit switched on), and the run folder's
copy of the recipe. `inti train --config` and `inti eval --config` are these calls in order.
"""

from __future__ import annotations

from pathlib import Path

from .recipe import RecipeError, Resolved, resolved_toml

RECIPE_FILE = "recipe.toml"


def recipe_datasets(r: Resolved, train: bool = True, views: tuple[int, int] = (1, 1)):
    """(training dataset or None, validation or test dataset). The training set carries the
    recipe's augmentation (inti.data.augment); the other is evaluated with `views`, the
    resolved crop and short side."""
    from ..data.augment import AugmentedSynthetic, AugmentedVideoList
    from ..data.datasets import SyntheticVideos, VideoListDataset

    d, seed = r.data, r.train.seed
    frames, size = r.recipe.values["model"]["frames"], r.model.image_size
    common = dict(frames=frames, size=size, seed=seed)
    test_resize = r.test["resize"] if views != (1, 1) or not train else d["resize"]
    if d["synthetic"]:
        tr = AugmentedSynthetic(d["synthetic"], d["synthetic_train"], train=True, split_seed=seed * 2 + 1,
                                resize=d["resize"], augment=r.augment, **common) if train else None
        va = SyntheticVideos(d["synthetic"], d["synthetic_val"], train=False, split_seed=seed * 2 + 2, views=views,
                             resize=test_resize, **common)
        return tr, va
    missing = [f"data.{k}" for k in (("train_list",) if train else ()) + ("val_list", "root") if not d[k]]
    if missing:
        raise RecipeError(f"{r.recipe.path}: the run needs {', '.join(missing)}: pass --set KEY=VALUE "
                          "(or data.synthetic=informative for a synthetic task)")
    lists = dict(root=d["root"], classes=d["classes"] or None, skip_bad=d["skip_bad"], decoder=d["decoder"],
                 decode_threads=d["decode_threads"] or None, separator=d["separator"].strip() or None, **common)
    tr = AugmentedVideoList(d["train_list"], train=True, resize=d["resize"], augment=r.augment,
                            num_classes=r.model.num_classes, **lists) if train else None
    va = VideoListDataset(d["val_list"], train=False, views=views, resize=test_resize,
                          num_classes=r.model.num_classes, **lists)
    for ds in (tr, va):
        if ds is not None and ds.num_classes != r.model.num_classes:
            raise RecipeError(f"{r.recipe.path}: [model] num_classes = {r.model.num_classes}, but the class file "
                              f"{d['classes']} names {ds.num_classes}")
    return tr, va


def model(r: Resolved):
    """(InTIModel in float32, its config, where its weights came from): the recipe's weights
    (a CLIP/timm/open_clip checkpoint, an inti parameter file or a training checkpoint) fitted
    to the recipe's classes, schedule and module, or the preset with fresh weights."""
    from ref.checks import check_frames
    from ref.config import with_temporal

    from .models import build

    m = r.recipe.values["model"]
    if m["init"] == "pretrained" and not m["weights"]:
        raise RecipeError(f"{r.recipe.path}: this recipe starts from pretrained weights: pass --set weights=FILE "
                          "(CLIP's ViT file, say), or --set init=fresh for random ones")

    def make_cfg(source):
        cfg = source.replace(num_classes=r.model.num_classes, schedule=r.model.schedule)
        if m["temporal"] != "none":
            cfg = with_temporal(cfg, m["temporal"], frames=m["frames"])
        check_frames(m["frames"], cfg)
        return cfg

    weights = m["weights"] if m["init"] == "pretrained" else None
    try:
        net, cfg, source = build(make_cfg, r.train.seed, weights, base=r.model)
    except ValueError as e:
        raise RecipeError(f"{r.recipe.path}: the model does not build: {e}") from None
    if cfg.image_size != r.test["crop"]:
        raise RecipeError(f"{r.recipe.path}: the weights are for {cfg.image_size} px frames, the recipe's crop is "
                          f"{r.test['crop']} px")
    return net, cfg, source  # fit switches the model-side toolkit on from r.train


def write_recipe(recipe, out) -> Path:
    """The resolved recipe as ``OUT/recipe.toml`` (atomic): the run folder can rerun itself."""
    from ..io.atomic import write_text

    path = Path(out) / RECIPE_FILE
    write_text(path, resolved_toml(recipe))
    return path


def train_clip_count(recipe) -> int | None:
    """The training list's clip count, when the recipe names a list (None otherwise)."""
    from .recipe import count_clips

    d = recipe.values["data"]
    return None if d["synthetic"] or not d["train_list"] else count_clips(d["train_list"], d["separator"])


def data_config(r: Resolved) -> dict:
    """What a resumed run must share with the run it continues, beside the TrainConfig: the
    recipe's model, data, augmentation and test tables (the loader's worker count aside)."""
    v = r.recipe.values
    return {"model": v["model"], "data": {k: x for k, x in v["data"].items() if k != "workers"},
            "augment": v["augment"], "test": v["test"]}


def run(r: Resolved, out, *, world=None, resume: bool = False, stop_after: int | None = None, progress=None,
        say=print) -> list[dict]:
    """Train a resolved recipe into the run folder `out` (which must be ready for it): the
    resolved recipe is written there first, then `fit` runs. Returns the history."""
    import torch

    from .distributed import World
    from .loop import fit

    world = world or World()
    torch.manual_seed(r.train.seed)
    train_data, val_data = recipe_datasets(r, train=True)
    net, cfg, source = model(r)
    if world.main:
        Path(out).mkdir(parents=True, exist_ok=True)
        if not resume:
            write_recipe(r.recipe, out)
    say(f"inti train: {r.recipe.values['recipe']['name'] or r.recipe.path}: {cfg.width}-wide, {cfg.depth}-block ViT at "
        f"{cfg.image_size} px, schedule {cfg.schedule}, {cfg.num_classes} classes, {len(train_data)} training clips of "
        f"{r.recipe.values['model']['frames']} frames; weights: {source}")
    return fit(net, train_data, val_data, r.train, out=out, world=world, workers=r.data["workers"], resume=resume,
               stop_after=stop_after, data_config=data_config(r), progress=progress, say=say)
