"""inti.train.recipe and the recipe files: every recipe resolves and dry-runs with no data and no
weights (the model on the meta device); its MACs per view are the cost model's for the setting
its name states, and where the paper states a reduction, the recipe meets it. Bad recipes and
bad overrides are refused with the file and the key."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import ref
from inti.train import dryrun
from inti.train.recipe import RecipeError, parse_set, read_recipe, resolve, resolved_toml

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
FILES = sorted(RECIPES.glob("*.toml"))
NAME = re.compile(r"^(?P<data>k400|ssv2|ucf101|hmdb51)_(?P<preset>vit_b16|vit_l14)_(?P<frames>\d+)f"
                  r"(?:_s(?P<schedule>[\d-]+))?(?:_(?P<module>st_adapter|aim))?$")
CLASSES = {"k400": 400, "ssv2": 174, "ucf101": 101, "hmdb51": 51}
DEFAULT_SCHEDULE = {"vit_b16": (3,), "vit_l14": (6,)}  # the presets' one merge, the paper's 37.5%


def expected_config(name: str):
    """The model a recipe's file name states, built here from ref alone (not from the recipe)."""
    m = NAME.match(name)
    assert m, f"recipe {name} does not follow the naming rule"
    schedule = tuple(int(s) for s in m["schedule"].split("-")) if m["schedule"] else DEFAULT_SCHEDULE[m["preset"]]
    cfg = ref.preset(m["preset"], num_classes=CLASSES[m["data"]], schedule=schedule)
    if m["module"]:
        module = {"st_adapter": "st_adapter_24x384" if m["data"] == "ssv2" else "st_adapter_12x384", "aim": "aim"}
        cfg = ref.config.with_temporal(cfg, module[m["module"]], frames=int(m["frames"]))
    return cfg, int(m["frames"])


def test_the_recipes_cover_the_settings():
    names = {f.stem for f in FILES}
    for needed in ("k400_vit_b16_8f", "k400_vit_b16_16f", "k400_vit_l14_8f", "k400_vit_l14_16f", "k400_vit_l14_8f_s8-20",
                   "k400_vit_l14_8f_s10-16", "k400_vit_b16_8f_st_adapter", "k400_vit_b16_8f_aim",
                   "k400_vit_l14_8f_st_adapter", "k400_vit_l14_16f_aim", "ssv2_vit_b16_8f_st_adapter",
                   "ucf101_vit_b16_8f", "hmdb51_vit_b16_8f"):
        assert needed in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_recipe_resolves_and_dry_runs(path):
    recipe = read_recipe(path)
    r = resolve(recipe)
    cfg, frames = expected_config(path.stem)
    assert r.model == cfg and recipe.get("model", "frames") == frames
    assert recipe.get("recipe", "name") == path.stem
    text = dryrun.report(r)  # builds the model on the meta device
    macs = ref.count_macs(cfg, frames)["total"]
    assert f"MACs per view: {macs / 1e9:,.2f} G" in text
    views = r.test["views"][0] * r.test["views"][1]
    assert f"MACs per clip: {macs * views / 1e9:,.2f} G" in text
    total, _ = dryrun.param_counts(r.model, r.train.freeze_backbone)
    assert total == sum(int(__import__("numpy").prod(s)) for s in ref.param_shapes(cfg).values())
    stated = recipe.get("recipe", "paper_reduction")
    if stated:  # the paper's GFLOPs claim for the setting: 37.5% [paper], or 37% with temporal modules [paper]
        naive = cfg.replace(schedule=())
        if cfg.temporal == "none":
            blocks = 1 - ref.count_macs(cfg, frames)["blocks"] / ref.count_macs(naive, frames)["blocks"]
            assert blocks == pytest.approx(0.375, abs=1e-12) and stated == 0.375
        else:
            total_red = 1 - macs / ref.count_macs(naive, frames)["total"]
            assert round(total_red, 2) == stated == 0.37


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_recipe_says_where_each_value_comes_from(path):
    """Every value line of a recipe file carries a [paper] or [ours] tag, except the names,
    the bookkeeping keys and the facts of a dataset."""
    untagged_ok = ("name", "description", "dataset", "base", "num_classes", "train_clips", "log_every", "batch_size",
                   "device", "paper_reduction = 0.0")
    for line in path.read_text().splitlines():
        if "=" not in line or line.lstrip().startswith("#"):
            continue
        if line.split("=")[0].strip() in untagged_ok or line.startswith(untagged_ok[-1]):
            continue
        assert "[paper]" in line or "[ours]" in line, f"{path.name}: no source on {line!r}"


def test_overrides_apply_with_their_source_and_the_lr_rule_scales_with_the_batch():
    base = resolve(read_recipe(RECIPES / "k400_vit_b16_8f.toml"))
    r = read_recipe(RECIPES / "k400_vit_b16_8f.toml", sets=["optim.batch_size=128", "frames=16", "schedule=1,2"])
    assert r.sources["optim.batch_size"] == "--set optim.batch_size=128" and r.get("model", "schedule") == [1, 2]
    resolved = resolve(r)
    assert resolved.train.lr == pytest.approx(2 * base.train.lr)  # linear in the global batch
    assert resolved.train.steps == round(30 * (240000 // 128))
    absolute = resolve(read_recipe(RECIPES / "k400_vit_b16_8f.toml", sets=["lr=1e-4"]))
    assert absolute.train.lr == 1e-4
    short = resolve(read_recipe(RECIPES / "k400_vit_b16_8f.toml", sets=["steps=60"]))
    assert short.train.steps == 60 and short.train.warmup_steps == 10  # the recipe's 5/30 share


def test_the_resolved_recipe_reruns_as_the_same_recipe(tmp_path):
    r = read_recipe(RECIPES / "k400_vit_l14_8f_s8-20.toml", sets=["weights=clip.pt", "seed=3"])
    (tmp_path / "recipe.toml").write_text(resolved_toml(r))
    again = read_recipe(tmp_path / "recipe.toml")
    assert again.values == r.values
    assert "--set weights=clip.pt" in (tmp_path / "recipe.toml").read_text()


def test_the_dry_run_checks_the_files_it_is_given(tmp_path):
    (tmp_path / "train.txt").write_text("a/x.mp4 0\na/y.mp4 1\n")
    r = resolve(read_recipe(RECIPES / "k400_vit_b16_8f.toml", sets=[f"train_list={tmp_path / 'train.txt'}",
                                                              f"root={tmp_path}", "weights=nowhere.pt"]))
    lines = dryrun.file_checks(r)
    assert any("train.txt (2 clips)" in line for line in lines)
    assert dryrun.problems(r) == ["model.weights: nowhere.pt (MISSING)"]


@pytest.mark.parametrize("text, fragment", [
    ("[model]\nframe = 8\n", "unknown key 'frame' in [model]"),
    ("[optim]\nbatch_size = 2000\n", "fewer than one global batch of [optim] batch_size = 2000"),
    ("[modle]\n", "unknown table [modle]"),
    ("[model]\nframes = 8.5\n", "[model] frames must be an integer"),
    ("[model]\nframes = true\n", "[model] frames must be an integer"),
    ("[optim]\nlayer_decay = 1.5\n", "[optim] layer_decay must be a number in [0, 1]"),
    ("[test]\nviews = [4]\n", "[test] views must be a list of integers of length 2"),
    ("[model]\ntemporal = \"tsm\"\n", "[model] temporal must be one of"),
    ("[model]\nschedule = [13]\n", "[model] does not resolve"),
    ("[augment]\nauto_augment = \"rand-7\"\n", "auto_augment must be"),
    ("[test]\ncrop = 256\n", "[test] crop = 256 differs from the model's 224 px"),
    ("[model]\nframes = [\n", "is not valid TOML"),
    ("base = \"loop.toml\"\n", "cycle"),
])
def test_bad_recipes_name_the_file_and_the_key(tmp_path, text, fragment):
    path = tmp_path / "loop.toml"
    path.write_text(text if text.startswith("base") else "[data]\ntrain_clips = 1000\n" + text)
    with pytest.raises(RecipeError) as e:
        resolve(read_recipe(path))
    assert fragment in str(e.value) and "loop.toml" in str(e.value)


@pytest.mark.parametrize("text, fragment", [
    ("batch_size=8", "ambiguous, in optim, test"), ("nothing=1", "no such field"), ("frames=x", "frames must be an integer"),
    ("optim.lr", "takes key=value"), ("model.nope=1", "no such field"), ("flip=1", "must be true or false"),
])
def test_bad_overrides_are_refused(text, fragment):
    with pytest.raises(RecipeError, match=re.escape(fragment)):
        parse_set(text)


def test_an_unreadable_recipe_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="recipe"):
        read_recipe(tmp_path / "missing.toml")
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe[model]")
    with pytest.raises(RecipeError, match="not UTF-8"):
        read_recipe(tmp_path / "binary.toml")


def scaled_down(path, tmp_path):
    """The recipe on the nano preset, fresh weights and a synthetic task: 2 real steps."""
    recipe = read_recipe(path)
    merges, temporal = len(recipe.get("model", "schedule")), recipe.get("model", "temporal")
    sets = [f"temporal={'st_adapter' if temporal.startswith('st_adapter') else temporal}",  # the module at nano's width
            "preset=nano", f"schedule={list(range(1, merges + 1))}", "init=fresh", "synthetic=informative",
            "synthetic_train=4", "synthetic_val=2", "optim.steps=2", "optim.batch_size=2", "test.batch_size=2",
            "frames=4", "num_classes=10", "test.crop=0", "test.resize=0", "data.resize=72", "gpus=1", "bf16=false", "workers=0"]
    return resolve(read_recipe(path, sets=sets))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_every_recipe_trains_two_steps_scaled_down(path, tmp_path):
    from inti.train import launch

    r = scaled_down(path, tmp_path)
    history = launch.run(r, tmp_path / "run", stop_after=2, say=lambda *a: None)  # no curves figure: seconds
    losses = [h["loss"] for h in history if "loss" in h]
    assert [h["step"] for h in history if "loss" in h] == [2] and all(np.isfinite(losses))
    assert (tmp_path / "run" / "last.safetensors").exists()
    kept = read_recipe(tmp_path / "run" / "recipe.toml")  # the run folder holds its resolved recipe
    assert kept.values == r.recipe.values


# ---- the commands -----------------------------------------------------------------------------------

@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_inti_train_dry_runs_every_recipe(path, capsys):
    from inti.cli import main

    assert main(["train", "--config", str(path), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    cfg, frames = expected_config(path.stem)
    assert f"MACs per view: {ref.count_macs(cfg, frames)['total'] / 1e9:,.2f} G" in printed
    assert "parameters:" in printed and "estimated memory" in printed and "[optim]" in printed


def test_inti_train_config_then_inti_eval_config(tmp_path, capsys):
    from inti.cli import main

    path = RECIPES / "k400_vit_b16_8f_aim.toml"
    sets = [x for s in scaled_down(path, tmp_path).recipe.sources.items() if s[1].startswith("--set")
            for x in ("--set", s[1][len("--set "):])]
    out = tmp_path / "run"
    assert main(["train", "--config", str(path), *sets, "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    assert read_recipe(out / "recipe.toml").get("model", "temporal") == "aim"
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "last.safetensors"), "--config", str(out / "recipe.toml"),
                 "--set", "test.views=[2,1]"]) == 0
    printed = capsys.readouterr().out
    assert "views 2x1" in printed and "macs_per_clip" in printed
    assert main(["train", "--config", str(path), "--lr", "0.1", "--dry-run"]) == 2
    assert "with --config the recipe sets --lr" in capsys.readouterr().err
    assert main(["train", "--set", "frames=16", "--synthetic", "informative", "--out", str(tmp_path / "x")]) == 2
    assert main(["eval", "--checkpoint", str(out / "last.safetensors"), "--config", str(RECIPES / "k400_vit_b16_8f.toml")]) == 2
    assert "is not the recipe's" in capsys.readouterr().err


def test_a_recipe_reads_pyslowfast_lists_of_real_videos(tmp_path):
    """Videos on disk and comma-separated lists (PySlowFast's separator), through the recipe's
    datasets: the list's own count sets the steps, and a clip decodes and augments."""
    from inti.data.synthetic import write_task
    from inti.train import launch

    lists = write_task(tmp_path / "task", "informative", {"train": 6, "val": 2}, frames=4, size=32)
    for split, path in lists.items():
        rows = [line.replace(" ", ",") for line in path.read_text().splitlines()]
        (tmp_path / f"{split}.csv").write_text("\n".join(rows) + "\n")
    sets = ["preset=nano", "schedule=[1]", "init=fresh", "frames=4", "num_classes=10", "test.crop=0", "test.resize=0",
            "data.resize=72", "optim.batch_size=2", f"train_list={tmp_path / 'train.csv'}",
            f"val_list={tmp_path / 'val.csv'}", f"root={tmp_path / 'task'}", "separator=,"]
    recipe = read_recipe(RECIPES / "k400_vit_b16_8f.toml", sets=sets)
    r = resolve(recipe, launch.train_clip_count(recipe))
    assert r.train_clips == 6 and r.steps_per_epoch == 3
    train, val = launch.recipe_datasets(r)
    assert len(train) == 6 and len(val) == 2
    assert tuple(train[0][0].shape) == (4, 3, 64, 64) and tuple(val[1][0].shape) == (1, 4, 3, 64, 64)


def test_a_recipe_names_any_model_of_the_registry():
    """[model] preset reads the registry that --preset and inti.create_model read: a CLIP ViT-B/32
    tower, which ref's presets do not hold, resolves with the recipe's classes and schedule."""
    from inti.registry import named_config

    r = resolve(read_recipe(RECIPES / "k400_vit_b16_8f.toml", sets=["preset=vit_b32_clip"]))
    assert r.model == named_config("vit_b32_clip", num_classes=400, schedule=(3,))
    assert r.model.patch_size == 32
    with pytest.raises(RecipeError, match="preset must be one of"):
        resolve(read_recipe(RECIPES / "k400_vit_b16_8f.toml", sets=["preset=vit_b99"]))
