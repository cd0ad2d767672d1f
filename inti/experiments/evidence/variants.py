"""The models the evidence experiment compares, at equal MACs where a claim needs it.

Every variant starts from the same image model (`image_config`: 32 px frames, patch 8, width
64, depth 4), pretrained once per seed, and follows the same recipe. `INTI_SCHEDULE` = (1,)
merges after the first of the four blocks: the paper's place (after block 6 of ViT-L's 24)
scaled to depth 4, and the paper's 37.5% fewer block MACs (spec/00-method.md §4):

    >>> import ref
    >>> ref.compare(video_config(10, schedule=INTI_SCHEDULE), FRAMES)["reduction"]["blocks"]
    0.375

What each variant can tell apart in principle (without a temporal position embedding, which
none has):

- naive, frame dropping, ToMe, mean: frame-wise features pooled by a mean over frames (and a
  fixed mean merge is a mean too), so the prediction depends on the set of frames only: a clip
  and any reordering of it get the same answer. Right/left and down/up (motion) and forward/
  reversed (arrow) are beyond them; only the axis of motion is within reach (50% on motion at
  best, 50% on arrow exactly). Frame dropping's 5 of 8 frames are not placed symmetrically,
  which leaves it a faint positional cue on motion.
- InTI (softmax, sigmoid): θ's local branch is a 3x3x3 convolution over (t, h, w) and the
  weights depend on which frame of a pair holds what, so the merged frames, and the answer,
  can depend on the order. How much a frozen backbone can use that is what the runs measure.
- ST-Adapter: a depthwise convolution over time in every block: order-aware by design.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import ref
from ref.config import BRANCHES, ModelConfig

from .tasks import CLASSES, FRAMES, SIZE

INTI_SCHEDULE = (1,)
MAIN_TASKS = ("informative", "motion", "arrow")


def image_config(num_classes: int = 10, **changes) -> ModelConfig:
    """The small image ViT that stands in for CLIP: 32 px, patch 8 (16 patches and a class
    token), width 64, depth 4, 4 heads, exact GELU, no projection."""
    return ModelConfig(image_size=SIZE, patch_size=8, width=64, depth=4, heads=4, embed_dim=None,
                       num_classes=num_classes, activation="gelu", ln_eps=1e-6).replace(**changes)


def video_config(num_classes: int, **changes) -> ModelConfig:
    return image_config(num_classes, **changes)


@dataclass(frozen=True)
class Variant:
    """One row of the experiment. changes: ModelConfig fields; frames: the frames the model
    reads (frame dropping reads fewer, TSN-sampled); tome: ToMe's per-block r, matched to
    InTI's MACs; shuffle: the frames of every clip put in a fixed random order."""

    name: str
    label: str
    group: str  # "main", "ablation" or "curve"
    changes: dict = field(default_factory=dict)
    frames: int = FRAMES
    tome: bool = False
    shuffle: bool = False
    tasks: tuple = MAIN_TASKS

    def config(self, task: str) -> ModelConfig:
        return video_config(CLASSES[task], **self.changes)

    def macs(self, task: str) -> int:
        """MACs per clip from the cost model (spec/00-method.md §4)."""
        cfg = self.config(task)
        if self.tome:
            return ref.tome_macs(cfg, self.frames, tome_r(task))["total"]
        return ref.count_macs(cfg, self.frames)["total"]


def inti_macs(task: str) -> int:
    return ref.count_macs(video_config(CLASSES[task], schedule=INTI_SCHEDULE), FRAMES)["total"]


def equal_mac_frames(task: str = "informative") -> int:
    """Frame dropping at InTI's MACs: the frame count whose naive cost is nearest InTI's."""
    naive = video_config(CLASSES[task])
    return min(range(1, FRAMES + 1), key=lambda t: abs(ref.count_macs(naive, t)["total"] - inti_macs(task)))


def tome_r(task: str) -> tuple[int, ...]:
    """ToMe's tokens merged per frame in each block, at InTI's MACs (`ref.tome_schedule`)."""
    return tuple(ref.tome_schedule(video_config(CLASSES[task]), FRAMES, inti_macs(task)))


ST = {"temporal": "st_adapter"}  # ST-Adapter before attention in every block, width C / 2


def variants() -> list[Variant]:
    inti = {"schedule": INTI_SCHEDULE}
    drop = equal_mac_frames()
    rows = [
        Variant("naive", "naive, all 8 frames", "main"),
        Variant("inti", "InTI, softmax", "main", inti),
        Variant("inti_sigmoid", "InTI, sigmoid", "main", inti | {"weight_fn": "sigmoid"}),
        Variant("inti_mean", "fixed mean (no θ)", "main", inti | {"weight_fn": "mean"}),
        Variant("drop", f"frame dropping, {drop} frames", "main", frames=drop),
        Variant("tome", "ToMe in each frame", "main", tome=True),
        Variant("naive_st", "naive + ST-Adapter", "main", ST),
        Variant("inti_st", "InTI + ST-Adapter", "main", inti | ST),
        Variant("inti_shuffled", "InTI, frames shuffled", "main", inti, shuffle=True),
        Variant("naive_st_shuffled", "naive + ST-Adapter, frames shuffled", "main", ST, shuffle=True),
    ]
    only = ("informative",)
    for b in BRANCHES:
        rows.append(Variant(f"only_{b}", f"θ with the {b} branch alone", "ablation", inti | {"branches": (b,)},
                            tasks=only))
    for b in BRANCHES:
        rest = tuple(x for x in BRANCHES if x != b)
        rows.append(Variant(f"without_{b}", f"θ without the {b} branch", "ablation", inti | {"branches": rest},
                            tasks=only))
    for schedule in ((2,), (3,), (1, 2), (2, 3)):
        name = "merge_after_" + "_".join(map(str, schedule))
        rows.append(Variant(name, f"InTI, merges after block {' and '.join(map(str, schedule))}", "curve",
                            {"schedule": schedule}, tasks=only))
    for t in (2, 4, 6):
        rows.append(Variant(f"drop_{t}", f"frame dropping, {t} frames", "curve", frames=t, tasks=only))
    return rows
