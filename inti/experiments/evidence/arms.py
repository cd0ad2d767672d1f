"""The arms the experiment compares, and what each costs in MACs (spec/00-method.md §4).

Every arm starts from the same image model (`image_config`: 32 px frames, patch 8, width 64,
depth 4), pretrained once per seed. `INTI_SCHEDULE` = (1,) merges after the first of the four
blocks: the paper's place (after block 6 of ViT-L's 24) scaled to depth 4, and the paper's
37.5% fewer block MACs:

    >>> ref.compare(image_config(10, schedule=INTI_SCHEDULE), FRAMES)["reduction"]["blocks"]
    0.375

What an arm can tell apart in principle (none has a temporal position embedding): naive
adaptation with any pooling, frame dropping, ToMe, random token dropping and the probes pool
frame-wise features with an order-free pooling, so a clip and any reordering of it get the same
answer; the direction of motion and the arrow of time are beyond them. InTI's θ sees the order
(its local branch convolves over time), and the temporal modules (ST-Adapter) read it by design.

Settings: "frozen" trains only what is new (θ, the head, the pooling query, the temporal modules,
RLT's length embedding); "finetune" trains the backbone too, at an lr multiplier of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ref
from ref.config import BRANCHES, ModelConfig
from ref.cost import attention_macs, head_macs, mlp_macs, patch_embed_macs

from .tasks import CLASSES, FRAMES, SIZE

INTI_SCHEDULE = (1,)
AFTER_MERGE = (2, 3, 4)  # the temporal modules sit in the blocks after the merge only
TEMPORAL = {"temporal": "st_adapter", "temporal_blocks": AFTER_MERGE}
ENTRIES = ("features", "block1", "pixels", "rlt", "probe")


def image_config(num_classes: int = 10, **changes) -> ModelConfig:
    """The small image ViT that stands in for CLIP: 32 px, patch 8 (16 patches and a class
    token), width 64, depth 4, 4 heads, exact GELU, no projection."""
    return ModelConfig(image_size=SIZE, patch_size=8, width=64, depth=4, heads=4, embed_dim=None,
                       num_classes=num_classes, activation="gelu", ln_eps=1e-6).replace(**changes)


@dataclass(frozen=True)
class Arm:
    """One row of the experiment.

    entry: what the trained part reads (`models.ArmModel`): cached "features" or "block1" of the
    frozen image model, "pixels" (the whole model runs), "rlt" (run-length tokens from pixels),
    "probe" (scikit-learn's logistic regression on cached features). frames: frames read (frame
    dropping reads fewer, TSN-sampled). keep: random token dropping's patch tokens per frame
    after block 1. tome: ToMe's features at InTI's MACs. shuffle: the frames of every clip in a
    fixed random order. parent: an arm that decides nothing takes its parent's tuned setting."""

    name: str
    label: str
    group: str
    tasks: tuple
    changes: dict = field(default_factory=dict)
    entry: str = "block1"
    setting: str = "frozen"
    pool: str = "mean"
    reduce: str = "merge"
    frames: int = FRAMES
    keep: int | None = None
    tome: bool = False
    shuffle: bool = False
    parent: str | None = None

    def config(self, task: str) -> ModelConfig:
        return image_config(CLASSES[task], **self.changes)

    @property
    def selector(self) -> bool:
        """Whether the arm trains more than its head and backbone (θ, a scorer, a pooling
        query, temporal modules, a length embedding): the tuning grid's second axis."""
        cfg = self.config("informative")
        return (bool(cfg.schedule) and cfg.weight_fn != "mean") or cfg.temporal != "none" \
            or self.pool == "attn" or self.entry == "rlt"


def block_stack_macs(cfg: ModelConfig, tokens: list[tuple[int, int]]) -> int:
    """Blocks at (frames, tokens per frame) each, one entry per block."""
    return sum(t * (attention_macs(cfg, n) + mlp_macs(cfg, n)) for t, n in tokens)


def inti_macs(task: str) -> int:
    return ref.count_macs(image_config(CLASSES[task], schedule=INTI_SCHEDULE), FRAMES)["total"]


def equal_mac_frames(task: str = "informative") -> int:
    """Frame dropping at InTI's MACs: the frame count whose naive cost is nearest InTI's."""
    naive = image_config(CLASSES[task])
    return min(range(1, FRAMES + 1), key=lambda t: abs(ref.count_macs(naive, t)["total"] - inti_macs(task)))


def random_drop_macs(cfg: ModelConfig, keep: int, frames: int = FRAMES) -> int:
    """Every token through block 1, then `keep` patch tokens and the class token per frame."""
    tokens = [(frames, cfg.num_tokens)] + [(frames, keep + 1)] * (cfg.depth - 1)
    return frames * patch_embed_macs(cfg) + block_stack_macs(cfg, tokens) + head_macs(cfg)


def equal_mac_keep(task: str = "informative") -> int:
    """Random token dropping at InTI's MACs: the kept patch tokens per frame nearest InTI's."""
    cfg = image_config(CLASSES[task])
    return min(range(1, cfg.num_patches), key=lambda k: abs(random_drop_macs(cfg, k) - inti_macs(task)))


def tome_r(task: str) -> tuple[int, ...]:
    """ToMe's tokens merged per frame in each block, at InTI's MACs (`ref.tome_schedule`)."""
    return tuple(ref.tome_schedule(image_config(CLASSES[task]), FRAMES, inti_macs(task)))


def rlt_macs(cfg: ModelConfig, kept_patches) -> float:
    """RLT's MACs per clip, averaged over clips: kept_patches (n, T), the patch tokens each frame
    keeps; only kept patches are embedded, and each frame's blocks run on its kept tokens."""
    import numpy as np

    kept = np.asarray(kept_patches)
    per_frame = (kept * cfg.patch_size**2 * 3 * cfg.width
                 + cfg.depth * (attention_macs(cfg, 1 + kept) + mlp_macs(cfg, 1 + kept)))
    return float(per_frame.sum(axis=1).mean() + head_macs(cfg))


def macs(arm: Arm, task: str) -> int:
    """MACs per clip from the cost model (RLT's depend on the clip: `rlt_macs` on its test clips)."""
    cfg = arm.config(task)
    if arm.tome:
        return ref.tome_macs(cfg, arm.frames, tome_r(task))["total"]
    if arm.keep is not None:
        return random_drop_macs(cfg, arm.keep, arm.frames)
    count = ref.count_macs(cfg, arm.frames)
    total = count["total"]
    if arm.reduce == "hard":  # a selection, not a weighted sum: no interpolation multiplies
        total -= count["interpolation"]
    if arm.pool == "attn":  # the query against each frame's feature
        total += arm.frames * cfg.width
    return int(total)


INFORMATIVE, ALL_FRAMES, MOTION, ARROW = "informative", "all_frames", "motion", "arrow"
READING = (INFORMATIVE, ALL_FRAMES)


def arms() -> list[Arm]:
    inti = {"schedule": INTI_SCHEDULE}
    drop, keep = equal_mac_frames(), equal_mac_keep()
    rows = [
        Arm("naive", "naive, mean over frames", "main", READING + (MOTION, ARROW), entry="features"),
        Arm("inti", "InTI, softmax", "main", READING + (MOTION, ARROW), inti),
        Arm("inti_sigmoid", "InTI, sigmoid", "main", (INFORMATIVE,), inti | {"weight_fn": "sigmoid"}),
        Arm("inti_mean", "fixed mean (no θ)", "main", (INFORMATIVE,), inti | {"weight_fn": "mean"}),
        Arm("drop", f"frame dropping, {drop} frames", "equal MACs", READING, entry="features", frames=drop),
        Arm("random_drop", f"random token dropping, {keep} of 16 patches after block 1", "equal MACs", READING,
            keep=keep),
        Arm("hard_select", "hard selection: the better frame of each pair", "equal MACs", READING, inti,
            reduce="hard"),
        Arm("tome", "ToMe in each frame", "equal MACs", READING, entry="features", tome=True),
        Arm("rlt", "run-length tokenization (RLT)", "equal MACs", READING, entry="rlt"),
        Arm("max_pool", "naive, max over frames", "selection", READING, entry="features", pool="max"),
        Arm("attn_pool", "naive, attention over frames", "selection", READING, entry="features", pool="attn"),
        Arm("probe_mean", "logistic regression, mean of frame features", "selection", READING, entry="probe"),
        Arm("probe_max", "logistic regression, max of frame features", "selection", READING, entry="probe",
            pool="max"),
        Arm("naive_st", "naive + ST-Adapter (blocks 2-4)", "temporal", (MOTION, ARROW), TEMPORAL),
        Arm("inti_st", "InTI + ST-Adapter (blocks 2-4, after the merge)", "temporal", (MOTION, ARROW),
            inti | TEMPORAL),
        Arm("naive_st_shuffled", "naive + ST-Adapter, frames shuffled", "control", (MOTION, ARROW), TEMPORAL,
            shuffle=True, parent="naive_st"),
    ]
    for name, base in (("naive", {}), ("inti", inti), ("max_pool", {}), ("attn_pool", {}), ("hard_select", inti),
                       ("drop", {})):
        src = next(r for r in rows if r.name == name)
        rows.append(Arm(f"{name}_ft", f"{src.label}, full fine-tuning", "finetune", READING, base,
                        entry="pixels", setting="finetune", pool=src.pool, reduce=src.reduce, frames=src.frames))
    for b in BRANCHES:
        rows.append(Arm(f"only_{b}", f"θ with the {b} branch alone", "ablation", (INFORMATIVE,),
                        inti | {"branches": (b,)}))
    for b in BRANCHES:
        rest = tuple(x for x in BRANCHES if x != b)
        rows.append(Arm(f"without_{b}", f"θ without the {b} branch", "ablation", (INFORMATIVE,),
                        inti | {"branches": rest}, parent="inti"))
    for schedule in ((2,), (3,), (1, 2), (2, 3)):
        name = "merge_after_" + "_".join(map(str, schedule))
        rows.append(Arm(name, f"InTI, merges after block {' and '.join(map(str, schedule))}", "curve", READING,
                        {"schedule": schedule}, parent="inti"))
    for t in (2, 4, 6):
        rows.append(Arm(f"drop_{t}", f"frame dropping, {t} frames", "curve", READING, entry="features", frames=t,
                        parent="drop"))
    return rows


def arm(name: str) -> Arm:
    for a in arms():
        if a.name == name:
            return a
    raise ValueError(f"unknown arm {name!r}; the arms are {', '.join(a.name for a in arms())}")
