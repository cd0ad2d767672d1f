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
# # 2. What θ sees
#
# Each merge Φ of InTI weighs the two tokens of a pair with scores that a small network θ
# predicts (spec/00-method.md §3.4). θ looks at the clip at four scales, through four
# *context branches*:
#
# | branch | what it sees | which frames it reads |
# |---|---|---|
# | token | one token alone | its own |
# | local | a 3 x 3 x 3 neighbourhood in (t, h, w) | its own and the frames before and after |
# | frame | the mean over one frame's tokens | its own |
# | clip | the mean over the whole clip | all of them |
#
# This notebook takes θ apart on a real clip: what each branch feeds into the score, which
# frames each one reads, what switching branches off does (the config option `branches`),
# and how three weight functions, softmax (the paper's), sigmoid and mean (both [ours], for
# ablation, §3.3), turn the same scores into merge weights and frame contributions (§6).
#
# Notebook 1 computed θ step by step; here we use the spec's functions,
# `ref.predictor.reduce_tokens`, `token_branch`, `local_branch`, `frame_branch` and
# `clip_branch`.
#
# **Exercises.** A cell headed *Exercise 2.k* holds a stub that raises `NotImplementedError`;
# replace it with your answer, run it, then run the check cell under it. The solutions are in
# `tutorials/solutions/02_what_theta_sees.py`, for your teacher.

# %%
import itertools

import matplotlib.pyplot as plt
import numpy as np

import ref
from ref import predictor as P
from ref.config import BRANCHES
from inti.figures import to_image
from inti.io.clips import load_clip

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## The clip, the model and the merge
#
# The same set-up as notebook 1: 8 frames of the bundled `bigbuckbunny.mp4` at 64 x 64
# pixels, the `nano` model (merges after blocks 1 and 2), and random weights with a random
# score layer (`ref.params.randomize_scores`), because θ's score layer starts at zero and
# every weight would then be 1/2. The model is untrained, so what θ *prefers* here means
# nothing; *how* it computes is what this notebook is about. X is what enters the first
# merge, the tokens after block 1.

# %%
cfg = ref.preset("nano")
clip = load_clip("bigbuckbunny.mp4", frames=8, size=cfg.image_size)  # (T0, 3, H, W) float32
video = clip[None].astype(np.float64)  # (b, T0, 3, H, W), b = 1
params = ref.params.randomize_scores(ref.init_params(cfg, seed=0), cfg, seed=0)
logits, trace = ref.forward(params, video, cfg, return_trace=True)
X = trace["blocks.0"]  # (b, T, N, C) = (1, 8, 65, 64): the input of Φ0
theta = ref.params.scope(params, "merges.0.")  # θ0's parameters, without the prefix
grid, T = cfg.grid, X.shape[1]

fig, axes = plt.subplots(1, T, figsize=(12, 1.9))
for f, ax in enumerate(axes):
    ax.imshow(to_image(clip[f]))
    ax.set_title(f"frame {f}", fontsize=9)
    ax.axis("off")
plt.show()

# %% [markdown]
# ## The four branches (§3.4)
#
# θ first reduces the tokens to d = C/4 = 16 channels, `z = LN_θ(X) @ W_r + b_r`. Each branch
# maps z to an array of z's shape (b, t, N, d); the branches are **added**, passed through the
# exact GELU and scored: `s = GELU(token + local + frame + clip) @ w_s + b_s`.
#
# The size of each branch's output, token by token (its length over the d channels), shows
# the scale it works at: token and local vary from token to token, frame is one vector per
# frame, clip one vector for the whole clip. The class token (n = 0, not on the grid) is
# written under each map; the local branch gives it zeros.

# %%
z = P.reduce_tokens(theta, X, cfg=cfg)  # (b, t, N, d)
parts = {
    "token": P.token_branch(theta, z),
    "local": P.local_branch(theta, z, grid=grid),
    "frame": P.frame_branch(theta, z),
    "clip": P.clip_branch(theta, z),
}
for name, value in parts.items():
    print(f"{name:6s} {value.shape}  mean length {np.linalg.norm(value, axis=-1).mean():.3f}")


def grid_maps(rows: dict, title: str, cmap="viridis", symmetric=False, label=""):
    """One row of T maps (the patch tokens on the h x w grid) per entry of `rows`, each (T, N)."""
    fig, axes = plt.subplots(len(rows), T, figsize=(12, 1.55 * len(rows) + 0.5), squeeze=False)
    lim = max(np.abs(v[:, 1:]).max() for v in rows.values())
    lo, hi = (-lim, lim) if symmetric else (0, lim)
    for r, (name, values) in enumerate(rows.items()):
        for f in range(T):
            ax = axes[r, f]
            im = ax.imshow(values[f, 1:].reshape(grid, grid), cmap=cmap, vmin=lo, vmax=hi)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_xlabel(f"cls {values[f, 0]:+.2f}", fontsize=7, labelpad=1)
            if r == 0:
                ax.set_title(f"frame {f}", fontsize=9)
        axes[r, 0].set_ylabel(name, fontsize=9)
    fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label=label)
    fig.suptitle(title)
    plt.show()


grid_maps({name: np.linalg.norm(value[0], axis=-1) for name, value in parts.items()},
          "What each branch adds to the sum, token by token: its length over the d channels",
          label="|branch output|")

# %% [markdown]
# What does each branch do to the **scores**? The fusion is not linear (GELU), so a branch has
# no share of the score of its own. One clean measure is the branch switch: the scores with
# every branch, minus the scores with that branch switched off (`cfg.replace(branches=...)`,
# §3.4). Note that switching off the frame branch, whose input is the same for every token
# of a frame, still changes the scores differently from token to token: through GELU it shifts
# every token's operating point differently.

# %%
scores = trace["merges.0.scores"]  # (b, t, N), all four branches
assert np.allclose(scores, P.predict_scores(theta, X, cfg=cfg), rtol=0, atol=1e-12)
effect = {}
for name in BRANCHES:
    rest = tuple(b for b in BRANCHES if b != name)
    effect[name] = (scores - P.predict_scores(theta, X, cfg=cfg.replace(branches=rest)))[0]
    print(f"switching off {name:5s} changes the scores by {np.abs(effect[name]).mean():.3f} on average")
grid_maps(effect, "Each branch's effect on the scores: all four branches minus all but that one",
          cmap="coolwarm", symmetric=True, label="change of the score")

# %% [markdown]
# ## Which frames does each branch read?
#
# The blocks never mix frames (§5, invariant 6); inside θ, only two branches do. Change
# frame 3 of X (add noise to its tokens) and compare the scores before and after, with one
# branch switched on at a time.
#
# ### Exercise 2.1
#
# *Predict* before you run anything: for each branch alone, which frames' scores change when
# frame 3 of X changes? Write your answer as a sorted list of frame numbers (0 to 7) per
# branch, and delete the `raise` line. (Recall from §3.4 that the local branch pads with zeros at the ends of the clip,
# and what the frame and clip means cover.)

# %% tags=["exercise-2.1"]
predicted = {
    "token": ...,
    "local": ...,
    "frame": ...,
    "clip": ...,
}
raise NotImplementedError  # exercise 2.1

# %% tags=["check-2.1"]
noise = np.random.default_rng(3).standard_normal(X[:, 3].shape)
changed = X.copy()
changed[:, 3] += noise  # noise, not a constant: LN_θ would remove a constant shift of a token
reach = {}  # for each branch alone: the largest change of the scores, frame by frame
for name in BRANCHES:
    alone = cfg.replace(branches=(name,))
    before, after = P.predict_scores(theta, X, cfg=alone), P.predict_scores(theta, changed, cfg=alone)
    reach[name] = np.abs(after - before)[0].max(axis=1)  # (T,)
measured = {name: [f for f in range(T) if reach[name][f] > 1e-12] for name in BRANCHES}
for name in BRANCHES:
    assert list(predicted[name]) == measured[name], f"{name}: you predicted {predicted[name]}, the spec says {measured[name]}"
print("exercise 2.1: correct;", measured)

# %%
fig, ax = plt.subplots(figsize=(8, 3))
for k, name in enumerate(BRANCHES):
    ax.bar(np.arange(T) + (k - 1.5) * 0.2, np.maximum(reach[name], 1e-17), width=0.2, label=f"{name} alone")
ax.set_yscale("log")
ax.set_ylim(1e-17, 10)
ax.axvline(3, color="k", linestyle=":", linewidth=1)
ax.set_xticks(range(T), [f"frame {f}" for f in range(T)], fontsize=8)
ax.set_ylabel("largest |change of score|")
ax.set_title("Frame 3 of X changed: whose scores move? (bars at 1e-17: exactly none)")
ax.legend(fontsize=8, ncol=4)
plt.show()

# %% [markdown]
# Only local and clip look across frames. With token and frame alone, θ judges each frame on
# its own, so which frame of a pair wins depends on that frame only, never on the other one.
#
# ## Switching branches on and off
#
# `cfg.replace(branches=("token", "clip"))` keeps two branches; a switched-off branch adds
# nothing to the sum, and with none at all f = GELU(0) = 0, so every score is the bias b_s
# (§3.4). The model then has no parameters for the switched-off branches (§3.5), but the spec's
# `predict_scores` reads only the ones it needs, so θ's full dict serves every subset here.
#
# ### Exercise 2.2
#
# Write `scores_from(parts, names, theta)`: the scores (b, t, N) of θ with only the branches in
# `names` switched on, from the branch outputs `parts` computed above. Use `ref.layers.gelu`
# (the exact erf form) and θ's score layer, `theta["score.weight"]` (1, d) and
# `theta["score.bias"]` (1,).

# %% tags=["exercise-2.2"]
def scores_from(parts, names, theta):
    """Scores (b, t, N) of θ with only the branches `names` on: GELU(sum of their outputs) @ w_s + b_s."""
    raise NotImplementedError  # exercise 2.2


# %% tags=["check-2.2"]
subsets = [names for k in range(len(BRANCHES) + 1) for names in itertools.combinations(BRANCHES, k)]
for names in subsets:  # all 16, from none to all four
    mine = scores_from(parts, names, theta)
    spec = P.predict_scores(theta, X, cfg=cfg.replace(branches=names))
    assert mine.shape == spec.shape, (names, mine.shape)
    assert np.allclose(mine, spec, rtol=0, atol=1e-12), \
        f"branches {names}: largest difference {np.abs(mine - spec).max():.2e}"
assert np.allclose(scores_from(parts, (), theta), theta["score.bias"][0]), "no branch: every score is b_s"
print(f"exercise 2.2: correct for all {len(subsets)} subsets of the branches")

# %% [markdown]
# What the subsets do to the first merge's weights: the softmax weight of frame 2 against
# frame 3 (pair 1), token by token, with all four branches, with each branch alone, and with
# none. With the frame branch alone, each frame gets one score for all its tokens, so a pair
# has one weight for the whole frame. With the clip branch alone, or none, both frames of a
# pair get the same score at every token and the weight is 1/2: the clip branch tells pairs
# apart only together with a branch that sees the pair's own frames.

# %%
choices = [BRANCHES] + [(b,) for b in BRANCHES] + [()]
fig, axes = plt.subplots(1, len(choices), figsize=(12, 2.4))
for ax, names in zip(axes, choices):
    a = ref.interpolation.merge_weights(P.predict_scores(theta, X, cfg=cfg.replace(branches=names)), "softmax")
    im = ax.imshow(a[0, 2, 1:].reshape(grid, grid), cmap="coolwarm", vmin=0, vmax=1)
    ax.set_title("all four" if len(names) == 4 else (" + ".join(names) or "none"), fontsize=9)
    ax.axis("off")
fig.colorbar(im, ax=list(axes), shrink=0.8, label="weight of frame 2")
fig.suptitle("Pair 1 (frames 2 and 3): the weight of frame 2, with different branches on")
plt.show()

# %% [markdown]
# ## Three weight functions (§3.3)
#
# The same scores s become weights in three ways:
#
# - **softmax** [paper]: (a[2p], a[2p+1]) = softmax(s[2p], s[2p+1]) at each token. The two
#   weights of a pair are positive and sum to 1, so a merged token is a convex combination.
# - **sigmoid** [ours, ablation]: a = sigmoid(s), each frame gated on its own; the weights of a
#   pair need not sum to 1, so a merged token can shrink or grow.
# - **mean** [ours, ablation]: a = 1/2 everywhere; θ is not run at all.
#
# ### Exercise 2.3
#
# Write `sigmoid_weights(scores)` = 1 / (1 + exp(-s)), elementwise. Scores can be large of
# either sign: make it overflow for neither (exp of a large positive number is inf, and NumPy
# warns). Hint: for s < 0 use exp(s) / (1 + exp(s)).

# %% tags=["exercise-2.3"]
def sigmoid_weights(scores):
    """a = sigmoid(s), elementwise, the same shape as `scores`, without overflow."""
    raise NotImplementedError  # exercise 2.3


# %% tags=["check-2.3"]
a_sig = sigmoid_weights(scores)
assert a_sig.shape == scores.shape, a_sig.shape
assert np.allclose(a_sig, ref.interpolation.merge_weights(scores, "sigmoid"), rtol=0, atol=1e-15)
with np.errstate(over="raise", invalid="raise"):
    extreme = sigmoid_weights(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]))
assert np.allclose(extreme, ref.interpolation.merge_weights(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0]), "sigmoid"),
                   rtol=1e-12, atol=0), extreme
print("exercise 2.3: correct")

# %% [markdown]
# The three side by side, for the same scores. Top three rows: the weight of the even frame of
# each pair (2p) and of the odd frame (2p+1), per token. Bottom: the sum of a pair's two
# weights over every token of the clip: exactly 1 for softmax and mean, anything in (0, 2) for
# sigmoid.

# %%
weights = {
    "softmax": ref.interpolation.merge_weights(scores, "softmax"),
    "sigmoid": ref.interpolation.merge_weights(scores, "sigmoid"),  # the spec's, which your a_sig equals
    "mean": ref.interpolation.merge_weights(scores, "mean"),
}
fig, axes = plt.subplots(3, T, figsize=(12, 5.2))
for r, (name, a) in enumerate(weights.items()):
    for f in range(T):
        im = axes[r, f].imshow(a[0, f, 1:].reshape(grid, grid), cmap="coolwarm", vmin=0, vmax=1)
        axes[r, f].set_xticks([]), axes[r, f].set_yticks([])
        if r == 0:
            axes[r, f].set_title(f"frame {f} (pair {f // 2})", fontsize=8)
    axes[r, 0].set_ylabel(name)
fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="weight a")
fig.suptitle("The same scores, three weight functions")
plt.show()

fig, ax = plt.subplots(figsize=(8, 2.6))
for name, a in weights.items():
    sums = (a[:, 0::2] + a[:, 1::2]).ravel()
    ax.hist(sums, bins=np.linspace(0, 2, 81), alpha=0.6, label=f"{name}: {sums.min():.3f} to {sums.max():.3f}")
ax.set_xlabel("a[2p, n] + a[2p+1, n], over every pair and token")
ax.set_ylabel("tokens")
ax.legend(fontsize=8)
plt.show()

# %% [markdown]
# One more difference: the score bias b_s. Adding the same number to both scores of a pair
# leaves their softmax unchanged, so b_s has no effect on softmax weights (§3.3), and it gets
# no gradient in training (§13). Sigmoid weights move with it.

# %%
shifted = scores + 1.5  # what a bias 1.5 larger does
print("softmax moved by", np.abs(ref.interpolation.merge_weights(shifted, "softmax") - weights["softmax"]).max())
print("sigmoid moved by", np.abs(ref.interpolation.merge_weights(shifted, "sigmoid") - weights["sigmoid"]).max())

# %% [markdown]
# ## Frame contributions (§6)
#
# `nano` merges twice, so each of the 2 output frames stands for a group of 4 input frames.
# Token n of input frame f reaches the output through one weight per merge; its
# **contribution** is their product along its path:
#
#     c[f, n] = a1[f, n] * a2[f // 2, n]
#
# where a1 is the first merge's weights (8 frames) and a2 the second's (4 frames: after the
# first merge, input frame f has become frame f // 2). These are the maps of the paper's
# Figure 4.
#
# ### Exercise 2.4
#
# Write `contribution(f, a1, a2)`: the contribution (b, N) of input frame f, from the two
# merges' weights, (b, 8, N) and (b, 4, N). Then predict a number: with the mean weight
# function, what is the contribution of every token of every frame? Assign it to
# `mean_contribution`.

# %% tags=["exercise-2.4"]
def contribution(f, a1, a2):
    """c[:, n] of input frame f: a1[:, f, n] * a2[:, f // 2, n], shape (b, N)."""
    raise NotImplementedError  # exercise 2.4


mean_contribution = ...

# %% tags=["check-2.4"]
a1, a2 = trace["merges.0.weights"], trace["merges.1.weights"]
c_spec = ref.contributions([a1, a2])  # (b, T0, N)
for f in range(T):
    assert np.allclose(contribution(f, a1, a2), c_spec[:, f], rtol=0, atol=1e-15), f"frame {f}"
mean_cfg = cfg.replace(weight_fn="mean")
_, mean_trace = ref.forward(ref.backbone(params), video, mean_cfg, return_trace=True)  # mean: no θ parameters
c_mean = ref.contributions(ref.trace_weights(mean_trace, mean_cfg))  # every merge's weights, in order
assert np.allclose(c_mean, mean_contribution), \
    f"with mean weights every contribution is {c_mean.flat[0]}, not {mean_contribution}"
print("exercise 2.4: correct")

# %% [markdown]
# The contributions of all 8 frames under the three weight functions (the whole model run
# with each, `cfg.replace(weight_fn=...)`; the mean model has no θ, `ref.backbone(params)`).
# The frames of a group (0-3 and 4-7) share each token of one output frame: with softmax
# their contributions sum to 1 at every token (§5, invariant 9), with mean each is 1/4, and
# with sigmoid the sum is anything in (0, 4).

# %%
runs = {"softmax": trace}
_, runs["sigmoid"] = ref.forward(params, video, cfg.replace(weight_fn="sigmoid"), return_trace=True)
runs["mean"] = mean_trace
contrib = {name: ref.contributions(ref.trace_weights(t, cfg))[0] for name, t in runs.items()}
grid_maps(contrib, "Frame contributions c[f, n] (§6) under three weight functions (untrained θ)",
          label="contribution")
for name, c in contrib.items():
    sums = c.reshape(2, 4, -1).sum(axis=1)  # (groups, N)
    print(f"{name:8s} the sum over a group's 4 frames lies in [{sums.min():.3f}, {sums.max():.3f}]")

# %% [markdown]
# Summary: θ adds four views of the clip before one nonlinearity and one score layer; two of
# them (local, clip) are where a merge can compare the frames of a pair; softmax turns scores
# into a convex choice between the two frames, which is what makes the contributions a
# partition of each output token among its input frames. Notebook 3 trains θ and shows what
# it learns to choose.
