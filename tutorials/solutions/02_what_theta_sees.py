# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Solutions to notebook 2, *What θ sees*
#
# For teachers. Each cell tagged `solution-2.k` replaces the student's cell tagged
# `exercise-2.k` when `python tutorials/run.py 02` executes the notebook with the solutions
# filled in. Every name they use (`np`, `ref`, `T`, ...) comes from the notebook's earlier cells.

# %% tags=["solution-2.1"]
# token and frame read one frame; local reads its neighbours at t-1 and t+1 (zero padding
# at the clip's ends, so frame 3 reaches frames 2, 3 and 4); clip reads the whole clip.
predicted = {
    "token": [3],
    "local": [2, 3, 4],
    "frame": [3],
    "clip": [0, 1, 2, 3, 4, 5, 6, 7],
}

# %% tags=["solution-2.2"]
def scores_from(parts, names, theta):
    """Scores (b, t, N) of θ with only the branches `names` on: GELU(sum of their outputs) @ w_s + b_s."""
    total = sum((parts[name] for name in names), np.zeros_like(parts["token"]))  # none: zeros, GELU(0) = 0
    fused = ref.layers.gelu(total)
    return (fused @ theta["score.weight"].T + theta["score.bias"])[..., 0]


# %% tags=["solution-2.3"]
def sigmoid_weights(scores):
    """a = sigmoid(s), elementwise, the same shape as `scores`, without overflow."""
    e = np.exp(-np.abs(scores))  # in (0, 1]: never overflows
    return np.where(scores >= 0, 1 / (1 + e), e / (1 + e))


# %% tags=["solution-2.4"]
def contribution(f, a1, a2):
    """c[:, n] of input frame f: a1[:, f, n] * a2[:, f // 2, n], shape (b, N)."""
    return a1[:, f] * a2[:, f // 2]


mean_contribution = 1 / 4  # 1/2 at each of the two merges
