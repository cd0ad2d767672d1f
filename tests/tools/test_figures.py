"""The demo's figures on a real clip, and the frame-contribution property behind figure 2.

Contributions (spec/00-method.md §6): with softmax weights, the 2^|S| input frames of a group contribute
amounts that sum to 1 at every token, in ref and in torch_impl alike.
"""

from __future__ import annotations

import struct

import numpy as np
import pytest
from recording import recording_step
import torch

import ref
from ref.params import randomize_scores
import torch_impl
from inti.tolerances import TOLERANCE
from ref.preprocess import preprocess
from inti import figures, parity
from inti.io.clips import bundled_clip, decode

CFG = ref.preset("nano")  # schedule (1, 2): groups of 4 frames
FRAMES = 4
SUM_TOL = 1e-12  # a sum of softmax products in float64


@pytest.fixture(scope="module")
def clip():
    """4 frames of the bundled bigbuckbunny.mp4 (its first 48 decoded), as the model reads them."""
    return preprocess(decode(bundled_clip("bigbuckbunny.mp4"), max_frames=48), CFG.image_size, frames=FRAMES)


@pytest.fixture(scope="module")
def random_params():
    return randomize_scores(ref.init_params(CFG, seed=0), CFG, seed=0)


@pytest.fixture(scope="module")
def results(clip, random_params):
    return parity.run_both(clip[None], random_params, CFG)


def _group_sums(c: np.ndarray, group: int) -> np.ndarray:
    b, t0, n = c.shape
    return c.reshape(b, t0 // group, group, n).sum(axis=2)  # (b, groups, N)


def _torch_weights(params, cfg, video):
    model = torch_impl.from_ref_params(params, cfg, dtype=torch.float64).eval()
    with torch.no_grad():
        _, trace = model(torch.from_numpy(video).double(), return_trace=True)
    return ref.trace_weights(trace, cfg)


# ---------------------------------------------------------------------------------------------
# contributions sum to 1 within a group


def test_contributions_sum_to_one_on_a_real_clip_ref(results):
    c = results["inti"].contributions["ref"]
    assert c.shape == (1, FRAMES, CFG.num_tokens)
    assert np.ptp(c) > 0.1  # random scores: far from uniform, so the sum is a real check
    np.testing.assert_allclose(_group_sums(c, CFG.min_frames), 1.0, rtol=0, atol=SUM_TOL)


def test_contributions_sum_to_one_on_a_real_clip_torch(clip, random_params):
    c = torch_impl.contributions(_torch_weights(random_params, CFG, clip[None])).numpy()
    assert c.shape == (1, FRAMES, CFG.num_tokens)
    assert np.ptp(c) > 0.1
    np.testing.assert_allclose(_group_sums(c, CFG.min_frames), 1.0, rtol=0, atol=SUM_TOL)


def test_contributions_agree_between_implementations(results):
    for dtype in parity.DTYPES:
        row = results["inti"].table()[parity.CONTRIBUTIONS][dtype]
        assert row.rel_err <= TOLERANCE[dtype], row


@pytest.mark.parametrize("merges", [1, 2, 3])
@pytest.mark.parametrize("channel", [False, True])
def test_contributions_sum_to_one_for_any_softmax_weights(merges, channel):
    """Synthetic scores of any size, through each implementation's own merge_weights."""
    from ref.interpolation import merge_weights as ref_weights
    from torch_impl.interpolation import merge_weights as torch_weights

    rng = np.random.default_rng(merges)
    t0, n, c = 2**merges * 2, 5, 3
    scores = [5 * rng.standard_normal((2, t0 // 2**j, n) + ((c,) if channel else ())) for j in range(merges)]
    a_ref = [ref_weights(s, "softmax") for s in scores]
    a_torch = [torch_weights(torch.from_numpy(s), "softmax") for s in scores]
    for contrib in (ref.contributions(a_ref), torch_impl.contributions(a_torch).numpy()):
        assert contrib.shape == (2, t0, n)
        np.testing.assert_allclose(_group_sums(contrib, 2**merges), 1.0, rtol=0, atol=SUM_TOL)


def test_sigmoid_contributions_do_not_sum_to_one():
    """The property is about softmax: the same check does catch weights that are not normalized."""
    cfg = CFG.replace(weight_fn="sigmoid")
    params = randomize_scores(ref.init_params(cfg), cfg)
    video = np.random.default_rng(1).standard_normal((1, FRAMES, 3, 64, 64))
    _, trace = ref.forward(params, video, cfg, return_trace=True)
    c = ref.contributions(ref.trace_weights(trace, cfg))
    assert np.abs(_group_sums(c, cfg.min_frames) - 1).max() > 1e-3
    assert "need not sum to 1" in figures.contributions_caption(c[0], cfg)


def test_zero_initialized_predictor_gives_uniform_maps(clip):
    params = ref.init_params(CFG, seed=0)
    _, trace = ref.forward(params, clip[None].astype(np.float64), CFG, return_trace=True)
    c = ref.contributions(ref.trace_weights(trace, CFG))
    np.testing.assert_array_equal(c, 0.25)  # exactly 1/2 * 1/2
    ct = torch_impl.contributions(_torch_weights(params, CFG, clip[None])).numpy()
    np.testing.assert_array_equal(ct, 0.25)
    assert figures.is_uniform(c)
    caption = figures.contributions_caption(c[0], CFG)
    assert "uniform" in caption and "1/4" in caption and "zero" in caption


def test_caption_of_non_uniform_maps_does_not_say_uniform(results):
    c = results["inti"].contributions["ref"][0]
    assert not figures.is_uniform(c)
    caption = figures.contributions_caption(c, CFG, note="Random scores.")
    assert "uniform" not in caption and "sum to 1" in caption and caption.endswith("Random scores.")


# ---------------------------------------------------------------------------------------------
# the PNG files


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    data = path.read_bytes()[:24]
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return struct.unpack(">II", data[16:24])


def _expected_size(fig_inches) -> tuple[int, int]:
    return tuple(int(round(v * figures.DPI)) for v in fig_inches)


@pytest.fixture(scope="module")
def written(tmp_path_factory, clip, results):
    out = tmp_path_factory.mktemp("figs")
    labels = []

    paths = figures.write_figures(out, clip=clip, cfg=CFG, frames=FRAMES, results=results, note="Random.", step=recording_step(labels))
    return out, paths, labels


def test_three_figures_written(written):
    out, paths, labels = written
    assert set(paths) == set(figures.FIGURES)
    assert sorted(p.name for p in out.iterdir()) == sorted(figures.FIGURES.values())
    assert len(labels) == 3 and labels[0].startswith("figure 1")


@pytest.mark.parametrize("name", list(figures.FIGURES))
def test_figure_is_a_sensible_png(written, name):
    import matplotlib.image

    path = written[1][name]
    assert 15_000 < path.stat().st_size < 3_000_000, path.stat().st_size
    width, height = png_size(path)
    assert 700 <= width <= 4000 and 450 <= height <= 1000, (width, height)
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].std() > 0.05  # not a blank canvas
    assert (pixels[..., :3] > 0.98).mean() < 0.97  # and not nearly all white


def test_figure_pixel_sizes_follow_the_layout(written):
    _, paths, _ = written
    assert png_size(paths["compute"]) == _expected_size((max(9.0, 4.5 + 0.45 * CFG.depth), 5.4))
    assert png_size(paths["contributions"]) == _expected_size((1.55 * FRAMES + 1.4, 5.0))


def test_contributions_figure_grows_with_frames(tmp_path):
    """One column per input frame; also without merges (S = ()), where every map is 1."""
    cfg = CFG.replace(schedule=())
    clip = np.zeros((8, 3, 64, 64), dtype=np.float32)
    path = figures.contributions_figure(clip, None, cfg, tmp_path / "c.png")
    assert png_size(path) == _expected_size((1.55 * 8 + 1.4, 5.0))
    with pytest.raises(ValueError, match="contributions must have shape"):
        figures.contributions_figure(clip, np.ones((4, cfg.num_tokens)), cfg, tmp_path / "d.png")


def test_compute_figure_for_the_paper_setting(tmp_path):
    path = figures.compute_figure(ref.preset("vit_l14", schedule=(8, 20)), 16, tmp_path / "l14.png")
    width, height = png_size(path)
    assert width == round((4.5 + 0.45 * 24) * figures.DPI) and height == round(5.4 * figures.DPI)


def test_describe_and_units():
    assert figures.config_name(ref.preset("vit_b16", schedule=(2, 4))) == "vit_b16"
    assert figures.config_name(ref.preset("nano", width=128)) == "custom"
    assert figures.describe(CFG).startswith("nano: ViT 64 px, patch 8")
    assert figures.mac_unit(81e9) == (1e9, "G") and figures.mac_unit(3.2e6) == (1e6, "M")
