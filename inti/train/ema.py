"""An exponential moving average of the weights [ours: timm's `ModelEmaV2` rule, without warmup].

After every optimizer step, each floating-point entry of the model's state dict moves toward
the new weights, ema = d * ema + (1 - d) * w, in float32; integer buffers are copied. The
average is evaluated and checkpointed beside the raw weights (`ema.<key>` tensors in the
training checkpoint) and restored bitwise on resume, so a resumed run's average is the
uninterrupted run's.

    >>> import torch
    >>> net = torch.nn.Linear(2, 1)
    >>> ema = EMA(net, decay=0.5)
    >>> with torch.no_grad():
    ...     _ = net.weight.add_(2.0)
    >>> ema.update(net)
    >>> bool(torch.allclose(ema.state["weight"], net.weight - 1.0))
    True
"""

from __future__ import annotations

import copy

import torch

PREFIX = "ema."


class EMA:
    """The average of `model`'s state dict, kept on the model's device in float32."""

    def __init__(self, model: torch.nn.Module, decay: float):
        if not 0.0 < float(decay) < 1.0:
            raise ValueError(f"the EMA decay must lie in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.state = {k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
                      for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        for key, value in model.state_dict().items():
            average = self.state[key]
            if average.is_floating_point():
                average.lerp_(value.detach().float(), 1.0 - self.decay)
            else:
                average.copy_(value)

    def tensors(self) -> dict[str, torch.Tensor]:
        """The average as checkpoint tensors, ``ema.<key>``, on the CPU."""
        return {PREFIX + k: v.detach().cpu().contiguous().clone() for k, v in self.state.items()}

    def load(self, tensors: dict[str, torch.Tensor], where: str = "checkpoint") -> None:
        """Restore the average from checkpoint tensors; every key must be there, with its shape."""
        saved = {k[len(PREFIX):]: v for k, v in tensors.items() if k.startswith(PREFIX)}
        if not saved:
            raise ValueError(f"{where} holds no EMA weights (ema.* tensors): it was written by a run without "
                             "ema_decay; resume it with ema_decay = 0, or start a new run")
        missing = sorted(set(self.state) - set(saved))
        unexpected = sorted(set(saved) - set(self.state))
        shapes = [k for k in self.state if k in saved and tuple(saved[k].shape) != tuple(self.state[k].shape)]
        if missing or unexpected or shapes:
            raise ValueError(f"the EMA weights in {where} do not fit this model: missing {missing[:5]}, "
                             f"unexpected {unexpected[:5]}, mis-shaped {shapes[:5]}")
        for k, v in saved.items():
            self.state[k].copy_(v.to(self.state[k].device, self.state[k].dtype))

    def model(self, model: torch.nn.Module) -> torch.nn.Module:
        """A copy of `model` holding the averaged weights (in the model's dtypes), for evaluation."""
        averaged = copy.deepcopy(model)
        averaged.load_state_dict({k: v.to(model.state_dict()[k].dtype) for k, v in self.state.items()}, strict=True)
        return averaged
