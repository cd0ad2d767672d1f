"""The fine-tuning toolkit, piece by piece: layer-wise lr decay, video mixup and cutmix, the EMA
of the weights, frame-consistent augmentation, and the list separator. Each test fails when its
piece is removed or broken."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ref
import torch_impl
from inti.data.augment import AugmentedSynthetic, VideoAugment, augment_clip
from inti.data.lists import read_list
from inti.data.transforms import clip_transform
from inti.train import TrainConfig
from inti.train.ema import EMA
from inti.train.mixup import VideoMixup, soft_cross_entropy, step_generator
from inti.train.optim import param_groups

CFG = ref.preset("nano", image_size=32, patch_size=8, num_classes=10, embed_dim=None, schedule=(2,))


def model(cfg=CFG):
    torch.manual_seed(0)
    return torch_impl.InTIModel(cfg)


# ---- layer-wise lr decay ---------------------------------------------------------------------------

def test_layer_decay_gives_the_first_block_the_smallest_lr():
    groups = param_groups(model(), TrainConfig(layer_decay=0.5))
    mult = {n: g["lr_mult"] for g in groups for n in g["param_names"]}
    depth = CFG.depth
    blocks = [mult[f"blocks.{i}.attn.qkv.weight"] for i in range(depth)]
    assert blocks == sorted(blocks) and len(set(blocks)) == depth  # strictly rising with depth
    assert blocks[0] == pytest.approx(0.5 ** depth) and blocks[-1] == pytest.approx(0.5)
    assert mult["pos_embed"] == mult["patch_embed.weight"] == pytest.approx(0.5 ** (depth + 1))
    assert mult["ln_post.weight"] == 1.0
    assert mult["head.weight"] == 1.0 and mult["merges.0.score.weight"] == 1.0  # new for video: the group's rate
    off = param_groups(model(), TrainConfig())
    assert {g["lr_mult"] for g in off} == {1.0}


def test_layer_decay_leaves_temporal_modules_at_their_groups_rate():
    cfg = ref.config.with_temporal(CFG, "st_adapter")
    mult = {n: g["lr_mult"] for g in param_groups(model(cfg), TrainConfig(layer_decay=0.5, lr_temporal=2.0))
            for n in g["param_names"]}
    assert mult["blocks.0.temporal.attn.fc1.weight"] == 2.0
    assert mult["blocks.0.norm1.weight"] == pytest.approx(0.5 ** CFG.depth)


# ---- mixup and cutmix --------------------------------------------------------------------------------

def clips(b=6, t=4, size=16):
    """Clip k is the constant k + 1 in every frame and pixel: any mixing shows in the values."""
    return torch.arange(1, b + 1, dtype=torch.float32)[:, None, None, None, None].expand(b, t, 3, size, size).clone()


@pytest.mark.parametrize("kind", ["mixup", "cutmix", "both"])
def test_mixed_targets_sum_to_one_and_match_the_mixed_pixels(kind):
    mix = VideoMixup(mixup=0.8 if kind != "cutmix" else 0.0, cutmix=1.0 if kind != "mixup" else 0.0, num_classes=6,
                     label_smoothing=0.1)
    x, labels = clips(), torch.arange(6)
    for step in range(6):
        mixed, y = mix(x, labels, step_generator(0, step))
        assert torch.allclose(y.sum(1), torch.ones(6))
        # clip b holds b + 1 and its partner B-1-b holds 6 - b: the mean pixel is the targets' mix
        lam = (y[:, :] - 0.1 / 6).clamp_min(0)[torch.arange(6), labels] / 0.9
        expected = lam * (labels + 1) + (1 - lam) * (6 - labels)
        assert torch.allclose(mixed.mean(dim=(1, 2, 3, 4)), expected, atol=1e-5)


def test_cutmix_pastes_one_box_through_every_frame():
    mix = VideoMixup(cutmix=1.0, num_classes=6)
    x = clips()
    for step in range(10):
        mixed, _ = mix(x, torch.arange(6), step_generator(1, step))
        changed = mixed != x  # (B, T, 3, H, W)
        assert changed.any()
        assert all(torch.equal(changed[:, 0], changed[:, f]) for f in range(1, x.shape[1]))  # the same box in every frame


def test_mixing_is_a_function_of_the_step_and_trains():
    mix = VideoMixup(mixup=0.8, cutmix=1.0, num_classes=6)
    a = mix(clips(), torch.arange(6), step_generator(3, 7))
    b = mix(clips(), torch.arange(6), step_generator(3, 7))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    logits = torch.zeros(6, 6, requires_grad=True)
    loss = soft_cross_entropy(logits, a[1])
    assert loss.item() == pytest.approx(np.log(6), rel=1e-6)


def test_mixup_refuses_what_it_cannot_mix():
    with pytest.raises(ValueError, match="at least one above 0"):
        VideoMixup(num_classes=3)
    with pytest.raises(ValueError, match="clips"):
        VideoMixup(mixup=1.0, num_classes=3)(torch.zeros(2, 3, 8, 8), torch.zeros(2, dtype=torch.long), step_generator(0, 0))


# ---- EMA ---------------------------------------------------------------------------------------------

def test_the_ema_follows_its_rule_and_restores_bitwise():
    m = model()
    ema = EMA(m, decay=0.9)
    start = {k: v.clone() for k, v in ema.state.items()}
    with torch.no_grad():
        for p in m.parameters():
            p.add_(1.0)
    ema.update(m)
    for k, v in m.state_dict().items():
        assert torch.allclose(ema.state[k], 0.9 * start[k] + 0.1 * v.float(), atol=1e-6), k
    saved = ema.tensors()
    again = EMA(model(), decay=0.9)
    again.load(saved)
    assert all(torch.equal(again.state[k], ema.state[k]) for k in ema.state)
    averaged = ema.model(m)
    assert torch.equal(averaged.head.weight, ema.state["head.weight"]) and not torch.equal(averaged.head.weight, m.head.weight)
    with pytest.raises(ValueError, match="no EMA weights"):
        again.load({"model.x": torch.zeros(1)})


# ---- augmentation --------------------------------------------------------------------------------------

def still_clip(t=6, h=40, w=52):
    """t identical frames of a textured picture: any per-frame difference comes from the augmentation."""
    frame = np.random.default_rng(0).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return np.repeat(frame[None], t, axis=0)


@pytest.mark.parametrize("augment", [
    VideoAugment(crop="resized"), VideoAugment(auto_augment="rand-m9-n4"), VideoAugment(auto_augment="trivial"),
    VideoAugment(crop="resized", auto_augment="rand-m7-n4", erase=1.0),
])
def test_augmentation_applies_the_same_parameters_to_every_frame(augment):
    frames = still_clip()
    outs = [augment_clip(frames, 32, 36, np.random.default_rng([5, i]), augment) for i in range(4)]
    for out in outs:
        assert out.shape == (6, 3, 32, 32) and out.dtype == np.float32
        assert all(np.array_equal(out[0], out[f]) for f in range(1, 6))
    assert not all(np.array_equal(outs[0], o) for o in outs[1:])  # it does draw something


def test_the_default_augmentation_is_the_existing_transform_and_reproducible():
    frames = still_clip()
    assert np.array_equal(augment_clip(frames, 32, 36, np.random.default_rng(1)),
                          clip_transform(frames, 32, 36, train=True, rng=np.random.default_rng(1)))
    data = AugmentedSynthetic("informative", 4, 4, 32, train=True, resize=40, augment=VideoAugment(auto_augment="rand-m7-n4"))
    assert torch.equal(data[2][0], data[2][0])  # a pure function of (seed, epoch, index), whatever the global generator
    before = torch.get_rng_state()
    data[1]
    assert torch.equal(before, torch.get_rng_state())
    evaluation = AugmentedSynthetic("informative", 4, 4, 32, train=False, augment=VideoAugment(auto_augment="rand-m7-n4"))
    plain = __import__("inti.data.datasets", fromlist=["SyntheticVideos"]).SyntheticVideos("informative", 4, 4, 32, train=False)
    assert torch.equal(evaluation[0][0], plain[0][0])  # evaluation is untouched


@pytest.mark.parametrize("changes, fragment", [
    ({"crop": "center"}, "crop must be one of"), ({"scale": (0.9, 0.1)}, "scale must be two numbers"),
    ({"auto_augment": "rand-m99-n4"}, "magnitude"), ({"erase": 2.0}, "erase must be a probability"),
])
def test_bad_augmentations_are_refused(changes, fragment):
    with pytest.raises(ValueError, match=fragment):
        VideoAugment(**changes)


# ---- the list separator --------------------------------------------------------------------------------

def test_lists_read_pyslowfast_separators(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("abseiling/clip one.mp4,0\nzumba/x.mp4 , 3\n")
    assert [(e.path, e.label) for e in read_list(path, separator=",")] == [("abseiling/clip one.mp4", 0), ("zumba/x.mp4", 3)]
    with pytest.raises(ValueError, match=r"train.csv:1: the label must be a non-negative integer, got 'one.mp4,0'"):
        read_list(path)
    path.write_text("a.mp4 0\n")
    with pytest.raises(ValueError, match=r"train.csv:1: expected 'relative/path.mp4,<label>'"):
        read_list(path, separator=",")


# ---- stochastic depth and activation checkpointing (torch_impl) ------------------------------------

def video(cfg=CFG, b=3, t=4):
    return torch.randn(b, t, 3, cfg.image_size, cfg.image_size, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("temporal", ["none", "st_adapter", "aim"])
def test_drop_path_changes_training_outputs_but_not_evaluation(temporal):
    cfg = CFG if temporal == "none" else ref.config.with_temporal(CFG, temporal, frames=4)
    plain, dropped = model(cfg), model(cfg).set_drop_path(0.5)
    assert [b.drop_path.p for b in dropped.blocks] == pytest.approx([0.5 * i / (cfg.depth - 1) for i in range(cfg.depth)])
    x = video(cfg)
    with torch.no_grad():
        assert torch.equal(plain.eval()(x), dropped.eval()(x))  # the identity in evaluation
        torch.manual_seed(0)
        reference = plain.train()(x)
        torch.manual_seed(0)
        trained = dropped.train()(x)
    assert torch.equal(reference, plain.eval()(x))  # the plain model has nothing random in training
    assert not torch.allclose(trained, reference)
    assert set(dropped.state_dict()) == set(plain.state_dict())  # no parameter added
    with pytest.raises(ValueError, match="drop path rate"):
        plain.set_drop_path(1.0)


def test_activation_checkpointing_gives_the_same_gradients():
    """... with the drop path's draws replayed, while the blocks really run twice."""
    x = video()
    grads, calls = [], []
    for checkpointing in (False, True):
        m = model().set_drop_path(0.3).set_grad_checkpointing(checkpointing).train()
        count = []
        m.blocks[0].attn.register_forward_hook(lambda *a: count.append(1))
        torch.manual_seed(4)
        m(x).logsumexp(-1).sum().backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
        calls.append(len(count))
    assert calls == [1, 2]  # recomputed in the backward
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], rtol=1e-5, atol=1e-7), name
    m = model().set_grad_checkpointing(True)
    assert m.grad_checkpointing and not model().grad_checkpointing


# ---- the toolkit in the loop: a run with every piece on resumes bitwise -----------------------------

TOOLKIT = TrainConfig(steps=4, batch_size=8, accum=2, lr=2e-3, warmup_steps=1, eval_every=2, log_every=2,
                      layer_decay=0.8, drop_path=0.2, mixup=0.8, cutmix=1.0, label_smoothing=0.1, ema_decay=0.9,
                      grad_checkpoint=True)


def toolkit_run(out, stop=None, resume=False):
    from inti.data.datasets import SyntheticVideos
    from inti.train import fit

    train = AugmentedSynthetic("informative", 12, 4, 32, train=True, split_seed=1, resize=36,
                               augment=VideoAugment(crop="resized", auto_augment="rand-m7-n4", erase=0.25))
    val = SyntheticVideos("informative", 4, 4, 32, train=False, split_seed=2)
    m = model()
    history = fit(m, train, val, TOOLKIT, out=out, stop_after=stop, resume=resume, say=lambda *a: None)
    return m, history


def test_a_run_with_the_whole_toolkit_resumes_bitwise(tmp_path):
    from inti.train import checkpoint as ckpt

    whole, history = toolkit_run(tmp_path / "a")
    toolkit_run(tmp_path / "b", stop=3)  # mid-epoch: 12 clips make 3 micro-batches of 4
    resumed, _ = toolkit_run(tmp_path / "b", resume=True)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    ema_a, _ = ckpt.read_checkpoint(tmp_path / "a" / "last.safetensors")
    ema_b, _ = ckpt.read_checkpoint(tmp_path / "b" / "last.safetensors")
    ema_keys = [k for k in ema_a if k.startswith("ema.")]
    assert len(ema_keys) == len(whole.state_dict())
    assert all(torch.equal(ema_a[k], ema_b[k]) for k in ema_keys)  # the average resumes exactly
    assert not torch.equal(ema_a["ema.head.weight"], ema_a["model.head.weight"])
    assert [r["step"] for r in history if "eval_ema" in r] == [2, 4]
    assert whole.blocks[-1].drop_path.p == pytest.approx(0.2) and whole.grad_checkpointing


# ---- Kinetics lists from the public CSVs -----------------------------------------------------------

def test_kinetics_lists_from_the_public_csv(tmp_path):
    from inti.data.kinetics import main, write_lists

    csv = tmp_path / "train.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n"
                   "zumba,abc,10,20,train\nabseiling,xyz,0,10,train\nabseiling,gone,5,15,train\n")
    (tmp_path / "k400" / "abseiling").mkdir(parents=True)
    (tmp_path / "k400" / "abseiling" / "xyz_000000_000010.mp4").write_bytes(b"x")
    (tmp_path / "k400" / "abc_000010_000020.mp4").write_bytes(b"x")  # flat and per-class layouts both
    report = write_lists(csv, tmp_path / "k400", tmp_path / "lists" / "train.txt")
    assert (report.rows, report.written, report.missing, report.classes) == (3, 2, ["gone_000005_000015"], 2)
    assert [(e.path, e.label) for e in read_list(tmp_path / "lists" / "train.txt")] == \
        [("abc_000010_000020.mp4", 1), ("abseiling/xyz_000000_000010.mp4", 0)]  # labels: the sorted class names
    assert (tmp_path / "lists" / "classes.txt").read_text() == "abseiling\nzumba\n"
    assert main([str(csv), str(tmp_path / "k400"), str(tmp_path / "l2.txt"), "--separator", ","]) == 0
    assert (tmp_path / "l2.txt").read_text().splitlines()[0] == "abc_000010_000020.mp4,1"
    (tmp_path / "bad.csv").write_text("youtube_id,split\n")
    assert main([str(tmp_path / "bad.csv"), str(tmp_path / "k400"), str(tmp_path / "l3.txt")]) == 2
