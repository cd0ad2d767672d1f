# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 3. Train it
#
# In notebooks 1 and 2 the merge weights were random: correct, but meaningless. Here θ learns
# them. The task is made so that a good merge is easy to recognize: in each 8-frame clip a
# digit shows in only **2 frames**, and the label is the digit. A merge that averages its
# pair halves the digit's contrast; a learned merge should keep the frames that show it.
#
# The steps:
#
# 1. the task, from the project's evidence experiment (`inti.experiments.evidence.tasks`);
# 2. the model: the experiment's small image ViT, with one merge after block 1;
# 3. training θ and the head with the project's engine, `inti.train.fit`, for a minute,
#    watching the merge weights' **entropy** fall;
# 4. the learned **contribution maps** (spec/00-method.md §6, the paper's Figure 4) next to the
#    untrained ones;
# 5. the **shipped checkpoint**, trained by the experiment's full recipe, compared with ours.
#
# **Exercises.** A cell headed *Exercise 3.k* holds a stub that raises `NotImplementedError`;
# replace it with your answer, run it, then run the check cell under it. The solutions are in
# `tutorials/solutions/03_train_it.py`, for your teacher.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Image, display

import ref
from inti.assets import trained_weights
from inti.experiments.evidence import tasks
from inti.experiments.evidence.arms import image_config
from inti.experiments.evidence.cache import Clips
from inti.experiments.evidence.run import digit_share
from inti.figures import learned_figure, to_image, training_curves
from inti.io.params import load_params
from inti.train import TrainConfig, evaluate, fit
from inti.train.models import fit_params
from torch_impl import from_ref_params

QUICK = os.environ.get("INTI_TUTORIAL_QUICK") == "1"  # a smaller run, for CI
FIGURES = Path(tempfile.mkdtemp(prefix="inti-tutorial-"))  # the project's figure functions write PNG files
torch.manual_seed(0)
started = time.perf_counter()

# %% [markdown]
# ## 1. The task: a digit in 2 of 8 frames
#
# Each clip is 8 frames of one 32 x 32 crop of a photograph (the *clutter*), with a small
# camera shake between frames. A digit from scikit-learn's handwritten digits, in a bright
# colour, is pasted into 2 random frames at a random place; `info["digit_frames"]` says which.
# Everything is a pure function of (split, index, seed), made on the spot from data that
# scikit-learn and scikit-image bundle: nothing is downloaded. The splits share
# no digit image and no part of any photograph.
#
# `tasks.make_split(task, split, count, seed)` returns the videos as the model reads them,
# (n, T, 3, 32, 32) float32 normalized with CLIP's statistics, the labels and the infos.

# %%
counts = {"train": 256, "val": 96, "test": 128} if QUICK else {"train": 512, "val": 128, "test": 256}
data = {split: tasks.make_split("informative", split, n, seed=0) for split, n in counts.items()}
for split, (videos, labels, infos) in data.items():
    print(f"{split:5s} {videos.shape} {videos.dtype}, labels {np.bincount(labels, minlength=10)}")
test_videos, test_labels, test_infos = data["test"]

fig, axes = plt.subplots(3, 8, figsize=(12, 4.8))
for row in range(3):
    shown = test_infos[row]["digit_frames"]
    for f in range(8):
        ax = axes[row, f]
        ax.imshow(to_image(test_videos[row, f]), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        if f in shown:
            ax.set_title("digit", fontsize=8, color="#d62728")
            for spine in ax.spines.values():
                spine.set_edgecolor("#d62728"), spine.set_linewidth(2.5)
    axes[row, 0].set_ylabel(f"clip {row}: {test_labels[row]}")
fig.suptitle("Three test clips; the digit (the label, left) shows in the outlined frames only")
plt.show()

# %% [markdown]
# ## 2. The model
#
# The evidence experiment's image model: 32 px frames, patches of 8 px (16 patches and a class
# token), width 64, 4 blocks, 4 heads. InTI merges once, after block 1 (`schedule=(1,)`), so
# blocks 2 to 4 see 4 frames instead of 8: 37.5% fewer block MACs, the paper's figure (§4).
#
# The backbone must already know digits. The experiment pretrains it on single frames first,
# which takes longer than this notebook should; instead, we take the backbone of the **shipped
# checkpoint** (`inti.assets.trained_weights()`, in the package), which is that pretrained
# image model. θ and the head start fresh, by the method's rule (§3.4): θ's score layer is
# zero, so the untrained merge averages every pair. As in the experiment, the backbone stays
# frozen; only θ and the head learn (`freeze_backbone=True`), so whatever the merge learns, it
# learns for this task.

# %%
cfg = image_config(10, schedule=(1,))
shipped_params, shipped_cfg = load_params(trained_weights())
assert shipped_cfg == cfg, shipped_cfg
params = fit_params(shipped_params, shipped_cfg, cfg, seed=0, where="the shipped checkpoint", keep_new=False)
assert all(np.all(params[k] == 0) for k in params if k.startswith("merges.0.score"))  # zero score layer
model = from_ref_params(params, cfg, dtype=torch.float32)
untrained = from_ref_params(params, cfg, dtype=torch.float32).eval()  # a copy that stays untrained

train = Clips(*data["train"][:2], frames=8, train=True, seed=0)
val = Clips(*data["val"][:2], frames=8, train=False, seed=0)
test = Clips(*data["test"][:2], frames=8, train=False, seed=0)
before = evaluate(untrained, test, batch_size=128)
print(f"untrained: test top-1 {before['top1']:.3f}, merge weight entropy {before['merge0_entropy_bits']:.3f} bits, "
      f"{before['macs_per_clip'] / 1e6:.1f} MMACs per clip")

# %% [markdown]
# ## 3. Training, and the entropy of the merge weights
#
# How decided is a merge? For a pair with weights (a, 1 - a) at a token, the binary entropy
# H(a) = -a log2 a - (1 - a) log2(1 - a) is 1 bit when the merge averages (a = 1/2) and falls
# to 0 as it picks one frame. The engine's `evaluate` reports its mean over every pair and
# token of the evaluated clips, per merge, as `merge0_entropy_bits`.
#
# ### Exercise 3.1
#
# Write `entropy_bits(a)`: from softmax weights a of shape (b, t, N) (the trace's
# `merges.0.weights`), the mean binary entropy in bits of the weight of the first frame of each
# pair, over all clips, pairs and tokens. Convert a to float64 and clip it to
# [1e-12, 1 - 1e-12] first, so that log2(0) never occurs (in float32, 1 - 1e-12 is 1.0). The
# check compares it with the engine's number on a model whose score layer is random.

# %% tags=["exercise-3.1"]
def entropy_bits(a):
    """Mean binary entropy (bits) of a[:, 0::2] (the first frame of each pair), over everything."""
    raise NotImplementedError  # exercise 3.1


# %% tags=["check-3.1"]
scrambled = from_ref_params(ref.params.randomize_scores(params, cfg, seed=1), cfg, dtype=torch.float32).eval()
with torch.no_grad():
    _, trace = scrambled(torch.from_numpy(data["val"][0]), return_trace=True)
mine = entropy_bits(trace["merges.0.weights"].numpy())
engine = evaluate(scrambled, val, batch_size=128)["merge0_entropy_bits"]
assert abs(mine - engine) < 1e-5, f"yours {mine:.6f}, the engine's {engine:.6f}"
assert abs(entropy_bits(np.full((1, 2, 3), 0.5)) - 1.0) < 1e-12, "an average has 1 bit"
assert entropy_bits(np.array([[[1.0], [0.0]]], dtype=np.float32)) < 1e-9, "a choice has 0 bits (and no NaN, in float32 too)"
print(f"exercise 3.1: correct; random scores give {mine:.3f} bits")

# %% [markdown]
# Now train. The recipe is the experiment's (`inti.experiments.evidence.run.RECIPE`: AdamW,
# a warmup then a cosine decay, weight decay 0.05, the backbone frozen), but run for far fewer
# steps, so with a higher learning rate: 3e-3 for the head, and 3 times that for θ
# (`lr_theta=3`; the engine's default trains θ at the base rate, §13). `fit` evaluates on the
# val clips every few steps, and those records hold the entropy. The cell takes well under a
# minute on a laptop.

# %%
steps = 40 if QUICK else 80
recipe = TrainConfig(steps=steps, batch_size=32, lr=3e-3, lr_theta=3.0, warmup_steps=10, weight_decay=0.05,
                     freeze_backbone=True, eval_every=steps // 5, log_every=5, seed=0)
start = time.perf_counter()
history = fit(model, train, val, recipe, say=lambda *a: None)
print(f"{steps} steps in {time.perf_counter() - start:.0f} s")
evals = [r for r in history if "eval" in r]
for r in evals:
    e = r["eval"]
    print(f"step {r['step']:4d}: val top-1 {e['top1']:.3f}, entropy {e['merge0_entropy_bits']:.3f} bits, "
          f"pairs with a weight above 0.9: {e['merge0_share_above_0.9']:.1%}")
display(Image(filename=str(training_curves(history, FIGURES / "curves.png"))))

# %% [markdown]
# The engine's own figure (`inti.figures.training_curves`, the `curves.png` of `inti train`):
# the loss, the learning rate, and on the right the val top-1 and the merge weights' entropy.
# The entropy falls from 1 bit within a few dozen steps: θ has stopped averaging. (How far the
# top-1 rises depends on how well the frozen backbone knows digits; it is a small model
# pretrained briefly, and only θ and the head learn here.) Where do θ's weights go?
#
# ## 4. The learned contribution maps
#
# With one merge, the contribution of token n of frame f (§6) is simply its weight,
# c[f, n] = a[f, n]; a pair's two contributions sum to 1 at every token. Below, three test
# clips: their frames (the ones that show the digit outlined in red), the contribution maps of
# the model we just trained, with each frame's mean above it, and those of the untrained
# model, which averages every pair (1/2 everywhere). The figure is the project's own
# (`inti.figures.learned_figure`, which `inti demo` draws for the shipped checkpoint).

# %%
model.eval()


def contributions_of(m, videos):
    """(n, T0, N) contributions (§6) of a torch model on float32 videos (n, T0, 3, H, W)."""
    with torch.no_grad():
        _, tr = m(torch.from_numpy(videos), return_trace=True)
    return ref.contributions([a.double().numpy() for a in ref.trace_weights(tr, cfg)])


c_untrained = contributions_of(untrained, test_videos)
c_trained = contributions_of(model, test_videos)
shown = [info["digit_frames"] for info in test_infos]
figure = learned_figure(test_videos[:3], c_trained[:3], c_untrained[:3], cfg, shown[:3], FIGURES / "learned_here.png",
                        title=f"Contribution maps after {steps} steps of training here, next to the untrained model's")
display(Image(filename=str(figure)))

# %% [markdown]
# ### Exercise 3.2
#
# One number per clip says whether the merge looks at the right frames: the **digit share**,
# the share of the clip's total contribution (averaged over tokens, class token included) that
# falls on the frames showing the digit. Write `share_on_digit(c, digit_frames)` for one clip,
# c of shape (T0, N). Then predict the digit share of the untrained model on any clip, and
# assign it to `untrained_share`.

# %% tags=["exercise-3.2"]
def share_on_digit(c, digit_frames):
    """The share of sum_f mean_n c[f, n] that falls on the frames in `digit_frames`."""
    raise NotImplementedError  # exercise 3.2


untrained_share = ...

# %% tags=["check-3.2"]
experiment = digit_share([c_trained], test_infos)  # the experiment's own measure (c = a with one merge)
mine = np.array([share_on_digit(c, info["digit_frames"]) for c, info in zip(c_trained, test_infos)])
assert np.allclose(mine, experiment, rtol=0, atol=1e-12), np.abs(mine - experiment).max()
assert np.allclose(digit_share([c_untrained], test_infos), untrained_share), untrained_share
print(f"exercise 3.2: correct; digit share on the test clips: untrained {untrained_share:.3f}, "
      f"trained here {mine.mean():.3f}")

# %% [markdown]
# ## 5. The shipped checkpoint
#
# `inti.assets.trained_weights()` is the evidence experiment's InTI model for this task,
# trained by its full recipe: the same backbone, θ and head trained far longer on more clips.
# `load_params` returns the parameters as NumPy arrays in the spec's layout and the config,
# both checked; the same dict builds the torch model.

# %%
shipped = from_ref_params(shipped_params, shipped_cfg, dtype=torch.float32).eval()
ours = evaluate(model, test, batch_size=128)
theirs = evaluate(shipped, test, batch_size=128)
c_shipped = contributions_of(shipped, test_videos)
rows = {"untrained": (before, c_untrained), f"trained here ({steps} steps)": (ours, c_trained),
        "shipped checkpoint": (theirs, c_shipped)}
print(f"{'':28s} {'test top-1':>10s} {'entropy (bits)':>15s} {'pairs > 0.9':>12s} {'digit share':>12s}")
for name, (e, c) in rows.items():
    print(f"{name:28s} {e['top1']:10.3f} {e['merge0_entropy_bits']:15.3f} {e['merge0_share_above_0.9']:12.1%} "
          f"{digit_share([c], test_infos).mean():12.3f}")

figure = learned_figure(test_videos[:3], c_shipped[:3], c_untrained[:3], cfg, shown[:3], FIGURES / "learned_shipped.png",
                        title="The shipped checkpoint's contribution maps, next to the untrained model's")
display(Image(filename=str(figure)))

# %% [markdown]
# ### Exercise 3.3
#
# How high can the digit share go? With one merge, frames 2p and 2p+1 share one unit of
# weight at every token. When the two digit frames fall in different pairs, each pair can give
# its digit frame everything; when they fall in the same pair, they can only split that pair's
# unit between them. Write `best_share(digit_frames)`: the largest digit share that any
# softmax merge with `schedule=(1,)` can reach on an 8-frame clip whose digit shows in
# `digit_frames`.

# %% tags=["exercise-3.3"]
def best_share(digit_frames):
    """The highest digit share a single softmax merge can reach on 8 frames."""
    raise NotImplementedError  # exercise 3.3


# %% tags=["check-3.3"]
for info in test_infos:
    shown = info["digit_frames"]
    ideal = np.full((1, 8, cfg.num_tokens), 0.5)  # the best merge: all weight on a digit frame of each pair
    for f in shown:
        ideal[0, f] = 1.0 if (f ^ 1) not in shown else 0.5  # f ^ 1: the other frame of f's pair
        ideal[0, f ^ 1] = 1.0 - ideal[0, f]
    assert np.isclose(best_share(shown), digit_share([ideal], [info])[0]), (shown, best_share(shown))
bound = np.array([best_share(info["digit_frames"]) for info in test_infos])
assert np.all(digit_share([c_shipped], test_infos) <= bound + 1e-6)  # float32 weights: pairs sum to 1 within 1e-7
print(f"exercise 3.3: correct; {np.mean(bound < 0.5):.0%} of the test clips have both digit frames in one pair")

# %% [markdown]
# Each model's digit share against the best it could reach, clip by clip: the two bands are
# the clips whose digit frames fall in one pair (bound 1/4) and in two pairs (bound 1/2); the
# untrained model sits at 1/4 on every clip.

# %%
fig, ax = plt.subplots(figsize=(7, 3.4))
where = (bound > 0.3).astype(float)  # 0: both digit frames in one pair, 1: in two pairs
jitter = np.random.default_rng(0).uniform(-0.04, 0.04, len(bound))
for i, ((name, (_, c)), color) in enumerate(zip(rows.items(), ("#7f7f7f", "#ff7f0e", "#1f77b4"))):
    ax.scatter(where + jitter + 0.12 * (i - 1), digit_share([c], test_infos), s=10, alpha=0.6, color=color, label=name)
ax.hlines([0.25, 0.5], [-0.25, 0.75], [0.25, 1.25], colors="k", linestyles=":", label="the bound")
ax.set_xticks([0, 1], ["digit frames in one pair\n(bound 1/4)", "in two pairs\n(bound 1/2)"])
ax.set_xlim(-0.35, 1.35)
ax.set_ylabel("digit share")
ax.legend(fontsize=8)
ax.set_title("How much of the merged clip comes from the digit frames")
plt.show()
print(f"notebook run time: {time.perf_counter() - started:.0f} s")

# %% [markdown]
# What to take away: θ learns from the label alone, with no hint of which frames show the
# digit, to lean towards the frames that carry the evidence. Its weights go from an average
# (1 bit) towards a choice, and the digit share rises above the 1/4 of an average on the clips
# where the pairing allows it. No merge can do better than its pairing allows (two digit
# frames in one pair share one unit of weight): the schedule and the pairing are part of the
# model. The experiment's report (`experiments/evidence/README.md`) measures this at full
# scale over several seeds, against baselines that select frames too (max and attention
# pooling, a logistic-regression probe, hard selection of one frame per pair) and against
# frame dropping, random token dropping, ToMe and run-length tokenization at InTI's MACs.
