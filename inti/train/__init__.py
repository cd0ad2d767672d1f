"""The training engine, in plain PyTorch: one loop that fits on a screen (`loop.fit`),
`evaluate`, the recipe (`config.TrainConfig`), parameter groups and the learning-rate schedule
(`optim`), checkpoints that resume exactly (`checkpoint`), and DDP through torchrun's
environment (`distributed`). The fine-tuning toolkit: layer-wise lr decay (`optim`), video
mixup and cutmix (`mixup`), the EMA of the weights (`ema`); recipe files (`recipe`), their
dry run (`dryrun`) and their run (`launch`).

    from inti.train import TrainConfig, fit, evaluate
"""

from .config import TrainConfig
from .loop import evaluate, fit

__all__ = ["TrainConfig", "fit", "evaluate"]
