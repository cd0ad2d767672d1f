# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Solutions to notebook 1, *InTI by hand*
#
# For teachers. Each cell tagged `solution-1.k` replaces the student's cell tagged
# `exercise-1.k` when `python tutorials/run.py 01` executes the notebook with the solutions
# filled in. Every name they use (`np`, `cfg`, ...) comes from the notebook's earlier cells.

# %% tags=["solution-1.1"]
def patchify(frames, P):
    """frames (T, 3, H, W) -> patches (T, L, 3*P*P), row-major over the grid, each patch
    flattened in the order (colour, row in the patch, column in the patch)."""
    T, c, H, W = frames.shape
    h, w = H // P, W // P
    x = frames.reshape(T, c, h, P, w, P)  # (T, 3, row, row in patch, col, col in patch)
    x = x.transpose(0, 2, 4, 1, 3, 5)  # (T, row, col, 3, row in patch, col in patch)
    return x.reshape(T, h * w, c * P * P)


# %% tags=["solution-1.2"]
def pairs(x):
    """(b, t, ...) -> (b, t/2, 2, ...): frames 2p and 2p+1 form pair p."""
    b, t = x.shape[:2]
    return x.reshape(b, t // 2, 2, *x.shape[2:])


# %% tags=["solution-1.3"]
def frame_and_clip(z, W_frm, W_clip):
    """The frame branch and the clip branch of θ (§3.4), each of shape (b, t, N, d)."""
    frame = z.mean(axis=2, keepdims=True) @ W_frm.T  # (b, t, 1, d): one vector per frame
    clip = z.mean(axis=(1, 2), keepdims=True) @ W_clip.T  # (b, 1, 1, d): one vector per clip
    return np.broadcast_to(frame, z.shape), np.broadcast_to(clip, z.shape)


# %% tags=["solution-1.4"]
def softmax_weights(scores):
    """(b, t, N) -> (b, t, N): the softmax over the two frames of each pair, at each token,
    computed stably (the larger score of the pair subtracted first)."""
    s = pairs(scores)  # (b, t/2, 2, N)
    e = np.exp(s - s.max(axis=2, keepdims=True))
    return (e / e.sum(axis=2, keepdims=True)).reshape(scores.shape)


# %% tags=["solution-1.5"]
def interpolate(x, a):
    """x (b, t, N, C), a (b, t, N) -> y (b, t/2, N, C): y[p] = a[2p] x[2p] + a[2p+1] x[2p+1]."""
    return (pairs(a)[..., None] * pairs(x)).sum(axis=2)
