"""DDP through torchrun on CPU (gloo): 2 processes, each with half of every global batch,
against 1 process taking the whole batch, after the same steps on the same data.

Not bitwise: DDP averages the two halves' gradients with an all-reduce (a sum of two float32
partial means, then a division), where one process computes the mean over the whole batch in
one reduction; the float32 roundings differ, and AdamW carries them on. The tolerance is the
float32 entry of the project's table.

Two parameters are left out of the weight comparison, because their gradient is zero
analytically: θ's score bias (``merges.{j}.score.bias``: softmax over a pair is unchanged when
both scores shift alike) and the key part of each block's qkv bias (rows C..2C: a query's
scores all shift by the same q·b_k). Their gradients are roundoff only, and AdamW, dividing by
the gradient's own scale, turns that roundoff into steps of the lr's size, different in the two
runs. They change no output: the logits of both models are compared as well."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from inti.io.params import load_params
from inti.tolerances import rel_err, tolerance

ARGS = ["train", "--synthetic", "informative", "--synthetic-train", "32", "--synthetic-val", "8", "--steps", "4",
        "--batch-size", "8", "--warmup", "1", "--lr", "1e-3", "--eval-every", "0", "--quiet", "--seed", "3"]


def train(out, processes: int) -> dict:
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", "-m",
              "inti"] if processes > 1 else [sys.executable, "-m", "inti"]
    result = subprocess.run(launch + ARGS + ["--out", str(out)], capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return load_params(out / "last.safetensors")[0]


def test_two_processes_equal_one_within_float32_all_reduce(tmp_path):
    import ref

    one, two = train(tmp_path / "one", 1), train(tmp_path / "two", 2)
    cfg = load_params(tmp_path / "one" / "last.safetensors")[1]
    assert one.keys() == two.keys()
    def no_key_bias(k, a):
        return np.concatenate([a[: cfg.width], a[2 * cfg.width:]]) if k.endswith("attn.qkv.bias") else a

    compared = [k for k in one if not k.endswith(".score.bias")]
    worst = max(rel_err(no_key_bias(k, two[k]), no_key_bias(k, one[k])) for k in compared)
    assert worst <= tolerance("float32"), worst
    start = ref.init_params(cfg, seed=3)
    assert max(float(np.abs(one[k] - start[k]).max()) for k in compared) > 1e-4  # training moved them
    video = np.random.default_rng(0).standard_normal((2, 8, 3, cfg.image_size, cfg.image_size)).astype(np.float32)
    logits = [ref.forward(p, video, cfg) for p in (one, two)]
    assert rel_err(logits[1], logits[0]) <= tolerance("float32")
