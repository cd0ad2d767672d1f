"""Shared checks for the patch tests (tests/tools/test_patch_*.py): one host model patched in
place by `inti.patch` against torch_impl's InTIModel built from the same weights.

Each host test builds its library's model at random (nothing downloaded) and hands these
helpers a `Host`: the model, how to get the clip-level output the patch promises, and the
InTIModel converted from a copy of the unpatched model (`inti.io.pretrained`). Then:

- ``parity``: float64 outputs on random clips, and against `ref.forward` too;
- ``training``: gradients reach θ and the backbone, an optimizer step moves both;
- ``state_dict_round_trip``: θ's keys are ours, under the tower's prefix, and a state dict
  loads into another patched model and gives the same outputs;
- ``compiles``: torch.compile (one graph, fullgraph=True) equals eager;
- ``ddp_step``: DistributedDataParallel (one gloo process) trains the patched model;
- ``flops``: FlopCounterMode equals 2 x ref.count_macs(...)["matmul"].
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable

import numpy as np
import torch

import ref
from inti.tolerances import rel_err, tolerance
from torch_impl import InTIModel, to_numpy, to_ref_params

# The bar for a patched model against torch_impl in float64: both run the same kind of torch
# kernels on the same numbers, so they agree to a few ulps (the float64 table entry, 1e-10, is
# for torch against the NumPy spec, which `parity` checks as well).
PATCH_FLOAT64 = 1e-12
POOL = 1 << 20


@dataclasses.dataclass
class Host:
    model: torch.nn.Module  # the patched model (the user's object)
    tower: torch.nn.Module  # the module that holds `merges`
    prefix: str  # the tower's state-dict prefix in `model` ("", "visual.", "vision_model.")
    output: Callable  # video -> the clip-level output the patch promises
    inti: InTIModel  # torch_impl's model from the unpatched model's converted weights


def randomize(module: torch.nn.Module, seed: int = 0, pool_size: int = POOL) -> torch.nn.Module:
    """Seeded random values for every parameter, so that a wrong mapping of any key shows:
    matrices N(0, 1/fan_in), LayerNorm scales 1 + 0.1 N, everything else (biases, class token,
    positions) 0.1 N. The values are windows, at random offsets, of one pool of `pool_size`
    normals (at least the largest tensor's size): drawing ~90M fresh normals for a ViT-B costs
    seconds on CI's two shared cores. Returns the module in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randn(pool_size, generator=gen, dtype=torch.float64).repeat(2)
    norms = {id(m) for m in module.modules() if isinstance(m, torch.nn.LayerNorm)}
    with torch.no_grad():
        for owner in module.modules():
            for name, p in owner.named_parameters(recurse=False):
                start = int(torch.randint(pool_size, (1,), generator=gen))
                value = pool[start:start + p.numel()].view(p.shape)
                if id(owner) in norms:
                    value = 1 + 0.1 * value if name == "weight" else 0.1 * value
                elif p.ndim >= 2:  # CLIP's proj (C, E) is applied as x @ proj: its fan-in is C
                    value = value / (p.shape[0] if name == "proj" else p[0].numel()) ** 0.5
                else:
                    value = 0.1 * value
                p.copy_(value)
    return module.eval()


def randomize_scores(host: Host, seed: int = 1) -> None:
    """Random non-zero score layers in the patched model's θ, copied into host.inti, so the
    merges no longer average each pair (spec/00-method.md §3.4's setting for checks)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for merge in host.tower.merges:
            merge.score.weight.copy_(2 * torch.randn(merge.score.weight.shape, generator=gen, dtype=torch.float64)
                                     / merge.score.weight.shape[1] ** 0.5)
            merge.score.bias.copy_(torch.randn(merge.score.bias.shape, generator=gen, dtype=torch.float64))
    copy_theta(host)


def copy_theta(host: Host) -> None:
    """Load the patched model's θ into host.inti (the keys are the same: merges.{j}.*)."""
    theta = {k.removeprefix(host.prefix): v for k, v in host.model.state_dict().items()
             if k.startswith(host.prefix + "merges.")}
    host.inti.load_state_dict(host.inti.state_dict() | theta)


def video(host: Host, frames: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    size = host.inti.cfg.image_size
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, 3, size, size, generator=gen, dtype=torch.float64)


def assert_patch_parity(host: Host, clip: torch.Tensor, what: str) -> None:
    """The patched model equals torch_impl's (≤ PATCH_FLOAT64) and ref.forward (the float64 table)."""
    with torch.no_grad():
        patched, ours = host.output(clip), host.inti(clip)
    err = rel_err(to_numpy(patched), to_numpy(ours))
    assert patched.shape == ours.shape and err <= PATCH_FLOAT64, f"{what}: patched against torch_impl: {err:.3g}"
    spec = ref.forward(to_ref_params(host.inti), clip.numpy(), host.inti.cfg)
    err = rel_err(to_numpy(patched), spec)
    assert err <= tolerance("float64"), f"{what}: patched against ref.forward: {err:.3g}"


def assert_merges_act(host: Host, clip: torch.Tensor) -> None:
    """With random scores the merges weigh the frames of a pair unequally: the output is not
    the zero-initialized θ's (which averages each pair), so parity above tested real merges."""
    with torch.no_grad():
        scored = host.output(clip)
        saved = copy.deepcopy(host.tower.merges.state_dict())
        for merge in host.tower.merges:
            merge.score.weight.zero_()
            merge.score.bias.zero_()
        averaged = host.output(clip)
        host.tower.merges.load_state_dict(saved)
    assert rel_err(to_numpy(scored), to_numpy(averaged)) > 1e-3


def assert_gradients_reach_theta_and_backbone(host: Host, clip: torch.Tensor, backbone: str) -> None:
    """One backward: every θ parameter and the backbone parameter named `backbone` get a non-zero
    gradient (θ's score layer random, so the gradient flows on into θ's branches)."""
    host.model.train()
    host.model.zero_grad()
    host.output(clip).square().mean().backward()
    params = dict(host.model.named_parameters())
    theta = {k: p for k, p in params.items() if k.startswith(host.prefix + "merges.") and not k.endswith("score.bias")}
    assert theta, "no θ parameters"
    silent = [k for k, p in theta.items() if p.grad is None or not torch.any(p.grad != 0)]
    assert not silent, f"no gradient reaches {silent}"
    assert params[backbone].grad is not None and torch.any(params[backbone].grad != 0), backbone
    host.model.eval()


def assert_optimizer_step_moves_both(host: Host, clip: torch.Tensor, backbone: str) -> None:
    """The user's own optimizer over model.parameters() trains θ and the backbone together."""
    before = copy.deepcopy(host.model.state_dict())
    optimizer = torch.optim.AdamW(host.model.parameters(), lr=1e-2)
    host.model.train()
    optimizer.zero_grad()
    host.output(clip).square().mean().backward()
    optimizer.step()
    host.model.eval()
    after = host.model.state_dict()
    theta = host.prefix + "merges.0.reduce.weight"
    assert not torch.equal(after[theta], before[theta]), "θ did not move"
    assert not torch.equal(after[backbone], before[backbone]), "the backbone did not move"


def assert_state_dict_round_trip(host: Host, fresh: torch.nn.Module, output_of: Callable, clip: torch.Tensor) -> None:
    """θ's keys are ref's ``merges.{j}.*`` with their shapes, under the tower's prefix; the whole
    state dict loads (strict) into `fresh`, another patched model, which then computes the same."""
    state = host.model.state_dict()
    theta = {k.removeprefix(host.prefix): tuple(v.shape) for k, v in state.items() if k.startswith(host.prefix + "merges.")}
    expected = {k: s for k, s in ref.param_shapes(host.inti.cfg).items() if k.startswith("merges.")}
    assert theta == expected
    fresh.load_state_dict(state)
    with torch.no_grad():
        assert torch.equal(output_of(fresh)(clip), host.output(clip))


def assert_checkpointed_training_keeps_the_merges(host: Host, clip: torch.Tensor) -> None:
    """With the host's gradient checkpointing switched on (by the caller) and the model in
    training mode, the merges still get gradients and the output is torch_impl's (float64)."""
    host.model.train()
    out = host.output(clip)
    out.sum().backward()
    assert host.model.merges[0].reduce.weight.grad is not None
    with torch.no_grad():
        torch.testing.assert_close(out.detach(), host.inti(clip), rtol=PATCH_FLOAT64, atol=PATCH_FLOAT64)


def assert_compiles(host: Host, clip: torch.Tensor, backend: str = "aot_eager") -> None:
    """torch.compile traces the patched forward as one graph (fullgraph=True) and equals eager."""
    torch._dynamo.reset()
    compiled = torch.compile(host.model, backend=backend, fullgraph=True)
    with torch.no_grad():
        eager, graph = host.output(clip), host.output(clip, model=compiled)
    assert rel_err(to_numpy(graph), to_numpy(eager)) <= PATCH_FLOAT64
    torch._dynamo.reset()


def assert_ddp_step(host: Host, clip: torch.Tensor, store_path) -> None:
    """DistributedDataParallel (one gloo process) wraps the patched model: every parameter,
    θ included, takes part in the forward (DDP raises otherwise), and a step trains it."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo", store=dist.FileStore(str(store_path), 1), rank=0, world_size=1)
    try:
        ddp = DistributedDataParallel(host.model)
        optimizer = torch.optim.SGD(ddp.parameters(), lr=1e-2)
        before = host.tower.merges[0].reduce.weight.detach().clone()
        for _ in range(2):  # the second forward fails if a parameter took no part in the first
            optimizer.zero_grad()
            host.output(clip, model=ddp).square().mean().backward()
            optimizer.step()
        assert not torch.equal(host.tower.merges[0].reduce.weight, before)
    finally:
        dist.destroy_process_group()


def assert_flops(host: Host, clip: torch.Tensor, grad: bool = False) -> None:
    """FlopCounterMode on the patched model counts exactly 2 x ref.count_macs(...)["matmul"]
    (spec/00-method.md §4). grad=True counts with autograd on, where torch's
    nn.MultiheadAttention leaves its fused inference kernel (which the counter cannot see)."""
    import torch_impl.cost  # noqa: F401  (registers the CPU attention kernel's FLOP formula)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.set_grad_enabled(grad):
        host.output(clip)
    b, t = clip.shape[:2]
    assert counter.get_total_flops() == 2 * ref.count_macs(host.inti.cfg, t, b)["matmul"]


def frames_refused(call, frames: int) -> str:
    """The message a patched model gives for a frame count its schedule cannot halve."""
    try:
        call(frames)
    except ValueError as e:
        return str(e)
    raise AssertionError(f"{frames} frames were accepted")


def numpy_state(module: torch.nn.Module) -> dict:
    return {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
