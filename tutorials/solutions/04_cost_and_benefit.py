# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Solutions to notebook 4, *What it costs, and what it buys*
#
# For teachers. Each cell tagged `solution-4.k` replaces the student's cell tagged
# `exercise-4.k` when `python tutorials/run.py 04` executes the notebook with the solutions
# filled in. Every name they use (`ref`, ...) comes from the notebook's earlier cells.

# %% tags=["solution-4.1"]
def block_macs_by_hand(cfg):
    """MACs of one transformer block on one frame (spec/00-method.md §4)."""
    N, C = cfg.num_tokens, cfg.width
    qkv, attention, proj, mlp = N * C * 3 * C, 2 * N * N * C, N * C * C, 2 * N * C * cfg.mlp_width
    return qkv + attention + proj + mlp


b16 = ref.preset("vit_b16")
attention_share = 2 * b16.num_tokens**2 * b16.width / block_macs_by_hand(b16)  # about 5.6%

# %% tags=["solution-4.2"]
def savings(cfg, frames):
    """{k: naive MACs - InTI MACs with S = (k,)} for k = 1 ... cfg.depth."""
    naive = ref.count_macs(cfg.replace(schedule=()), frames)["total"]
    return {k: naive - ref.count_macs(cfg.replace(schedule=(k,)), frames)["total"] for k in range(1, cfg.depth + 1)}


b16 = ref.preset("vit_b16")
saved = savings(b16, 8)
best = max(saved, key=saved.get)  # block 1: every later block sees half the frames
losing = sorted(k for k, s in saved.items() if s < 0)  # [12]: after the last block nothing is left to save

# %% tags=["solution-4.3"]
def pareto(rows):
    """The rows that no other row dominates (fewer or equal MACs and higher or equal top-1,
    better in one), sorted by macs_per_clip."""
    # Sweep by MACs (ties: the more accurate first); a row is on the front when it is more
    # accurate than everything cheaper, or as accurate at exactly the same MACs.
    ordered = sorted(rows, key=lambda r: (r["macs_per_clip"], -r["top1_mean"]))
    front, best = [], -float("inf")
    for r in ordered:
        same_point = front and front[-1]["macs_per_clip"] == r["macs_per_clip"] and front[-1]["top1_mean"] == r["top1_mean"]
        if r["top1_mean"] > best or same_point:
            front.append(r)
            best = max(best, r["top1_mean"])
    return front
