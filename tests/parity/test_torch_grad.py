"""Gradients: gradcheck of the merge Φ and of a tiny model in float64, and one training step.

gradcheck compares autograd's Jacobian with finite differences, so the layers must be
tiny: the merge runs on (1, 4, 5, 8) tokens (grid 2 x 2 plus the class token, C = 8, d = 2).
The score layers get random non-zero weights, so that the weights are not all 1/2 and the
gradient reaches every parameter of θ.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.func import functional_call

import ref
import torch_impl
from ref.params import scope
from strategies import nano_case, randomize_scores
from torch_impl.interpolation import Merge

TINY = ref.ModelConfig(image_size=4, patch_size=2, width=8, depth=1, heads=2, schedule=(1,), embed_dim=None, num_classes=3)


def tiny_merge(weight_fn: str, granularity: str, branches=ref.config.BRANCHES) -> tuple[Merge, dict]:
    """A float64 Merge holding ref's seeded parameters with random score weights, and those
    parameters as tensors that require grad (for torch.func.functional_call)."""
    cfg = TINY.replace(weight_fn=weight_fn, weight_granularity=granularity, branches=branches)
    params = randomize_scores(ref.init_params(cfg, seed=3), cfg, seed=3)
    merge = Merge(cfg).double()
    merge_params = {k: torch.tensor(v, requires_grad=True) for k, v in scope(params, "merges.0.").items()}
    merge.load_state_dict(merge_params)
    return merge, merge_params


def tokens(t: int = 4, seed: int = 0) -> torch.Tensor:
    """(1, t, N, C) float64 tokens for TINY, requiring grad."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, t, TINY.num_tokens, TINY.width, dtype=torch.float64, generator=g).requires_grad_()


@pytest.mark.parametrize("granularity", ["token", "channel"])
@pytest.mark.parametrize("weight_fn", ["softmax", "sigmoid"])
def test_merge_gradcheck(weight_fn, granularity):
    """d(merged tokens, scores, weights) / d(input tokens and every parameter of θ)."""
    merge, params = tiny_merge(weight_fn, granularity)
    names = list(params)
    assert any(name.startswith("score.") for name in names) and all(p.abs().sum() > 0 for p in params.values())

    def run(x, *values):
        y, decided = functional_call(merge, dict(zip(names, values)), (x,))
        return y, decided["scores"], decided["weights"]

    assert torch.autograd.gradcheck(run, (tokens(), *params.values()), fast_mode=True)


@pytest.mark.parametrize("granularity", ["token", "channel"])
def test_mean_merge_gradcheck(granularity):
    """The mean baseline has no parameters: gradcheck with respect to the input only."""
    merge, params = tiny_merge("mean", granularity)
    assert params == {} and list(merge.parameters()) == []
    assert torch.autograd.gradcheck(lambda x: merge(x)[0], (tokens(),))


@pytest.mark.parametrize("branches", [("token",), ("local", "clip"), ("frame",)])
def test_merge_gradcheck_branch_subsets(branches):
    merge, params = tiny_merge("softmax", "token", branches)
    names = list(params)
    assert torch.autograd.gradcheck(lambda x, *v: functional_call(merge, dict(zip(names, v)), (x,))[0], (tokens(), *params.values()), fast_mode=True)


@pytest.mark.parametrize("attn_path", ["sdpa", "explicit"])
def test_tiny_model_gradcheck_in_the_video(attn_path):
    """The whole model (embed, attention, merge, readout, head), d logits / d video."""
    params = randomize_scores(ref.init_params(TINY.replace(depth=2), seed=1), TINY.replace(depth=2), seed=1)
    model = torch_impl.from_ref_params(params, TINY.replace(depth=2), torch.float64, attn_path=attn_path)
    video = torch.randn(1, 2, 3, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0), requires_grad=True)
    assert torch.autograd.gradcheck(model, (video,))


# ---- training ---------------------------------------------------------------------------------

def nano_training(weight_fn: str = "softmax", random_scores: bool = True, dtype=torch.float32, seed: int = 0):
    """A nano model (random or zero score layers), a batch of 2 clips of 4 frames and labels."""
    case = nano_case(frames=4, batch=2, seed=seed, weight_fn=weight_fn)
    model = torch_impl.from_ref_params(case.params(random_scores=random_scores), case.cfg, dtype).train()
    video = torch.from_numpy(case.video).to(dtype)
    labels = torch.tensor([1, 7])
    return model, video, labels


def loss_of(model, video, labels) -> torch.Tensor:
    return torch.nn.functional.cross_entropy(model(video), labels)


def merge_grads(model) -> dict[str, torch.Tensor]:
    grads = {}
    for name, p in model.named_parameters():
        if name.startswith("merges."):
            assert p.grad is not None, f"{name} got no gradient"
            grads[name] = p.grad
    assert grads, "the model has no merges.* parameters"
    return grads


def test_gradient_reaches_every_predictor_parameter():
    model, video, labels = nano_training("sigmoid")
    loss_of(model, video, labels).backward()
    grads = merge_grads(model)
    zero = [name for name, g in grads.items() if not g.abs().sum() > 0]
    assert not zero, f"merges.* parameters with an all-zero gradient: {zero}"


def test_softmax_score_bias_gets_no_gradient():
    """With softmax over a pair, the score bias adds the same number to both scores, which the
    softmax ignores: every other merges.* parameter gets a gradient, the bias a zero one."""
    model, video, labels = nano_training("softmax")
    loss_of(model, video, labels).backward()
    grads = merge_grads(model)
    scale = max(float(g.abs().max()) for g in grads.values())
    for name, g in grads.items():
        if name.endswith("score.bias"):
            assert float(g.abs().max()) <= 1e-5 * scale, f"{name}: {g}"
        else:
            assert g.abs().sum() > 0, f"{name} has an all-zero gradient"


@pytest.mark.parametrize("weight_fn", ["softmax", "sigmoid"])
def test_zero_initialized_score_layer_still_learns(weight_fn):
    """At init (w_s = 0), the score weight gets a gradient; everything before it in θ gets
    exactly zero, since it reaches the loss only through w_s. One step makes the merge weights
    uneven, so θ is trainable from the average-the-pair start."""
    model, video, labels = nano_training(weight_fn, random_scores=False)
    loss_of(model, video, labels).backward()
    for name, g in merge_grads(model).items():
        if name.endswith("score.weight"):
            assert g.abs().sum() > 0, f"{name} has an all-zero gradient at init"
        elif not name.endswith("score.bias"):
            assert torch.count_nonzero(g) == 0, f"{name} got a gradient through a zero score layer"
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    with torch.no_grad():
        _, trace = model(video, return_trace=True)
    weights = trace["merges.0.weights"]
    assert float((weights - weights.mean()).abs().max()) > 1e-6, "merge weights stayed uniform after a step"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_optimizer_step_lowers_the_loss(dtype):
    model, video, labels = nano_training("softmax", dtype=dtype)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loss = loss_of(model, video, labels)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        after = loss_of(model, video, labels)
    loss, after = float(loss.detach()), float(after)
    assert after < loss, f"loss {loss:.6f} -> {after:.6f}"
    changed = [name for name, p in model.named_parameters() if not torch.equal(p.detach(), before[name])]
    assert any(name.startswith("merges.") for name in changed), "the predictor did not move"
    assert np.isfinite(after)
