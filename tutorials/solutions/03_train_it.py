# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Solutions to notebook 3, *Train it*
#
# For teachers. Each cell tagged `solution-3.k` replaces the student's cell tagged
# `exercise-3.k` when `python tutorials/run.py 03` executes the notebook with the solutions
# filled in. Every name they use (`np`, ...) comes from the notebook's earlier cells.

# %% tags=["solution-3.1"]
def entropy_bits(a):
    """Mean binary entropy (bits) of a[:, 0::2] (the first frame of each pair), over everything."""
    p = np.clip(np.asarray(a, dtype=np.float64)[:, 0::2], 1e-12, 1 - 1e-12)  # float64: 1 - 1e-12 < 1
    return float(np.mean(-(p * np.log2(p) + (1 - p) * np.log2(1 - p))))


# %% tags=["solution-3.2"]
def share_on_digit(c, digit_frames):
    """The share of sum_f mean_n c[f, n] that falls on the frames in `digit_frames`."""
    per_frame = c.mean(axis=1)  # (T0,)
    return per_frame[list(digit_frames)].sum() / per_frame.sum()


untrained_share = 2 / 8  # every weight is 1/2, so every frame holds 1/8 of the total

# %% tags=["solution-3.3"]
def best_share(digit_frames):
    """The highest digit share a single softmax merge can reach on 8 frames."""
    pairs = {f // 2 for f in digit_frames}  # each pair holds one unit of weight of the 4 in total
    return len(pairs) / 4
