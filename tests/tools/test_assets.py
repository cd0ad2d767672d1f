"""The shipped files (`inti.assets`): the trained weights load, and the sample clips are the
evidence task's own test clips, as its generator makes them (figure 4 of `inti demo` draws
the shipped model on them)."""

from __future__ import annotations

import numpy as np

import ref
from inti import assets
from inti.io import kinds, weights


def test_the_trained_weights_are_a_parameter_file_of_the_documented_model():
    loaded = weights.load(assets.trained_weights())
    assert loaded.kind == kinds.PARAMS
    cfg = loaded.cfg
    assert (cfg.image_size, cfg.patch_size, cfg.width, cfg.depth, cfg.schedule, cfg.num_classes) == (32, 8, 64, 4, (1,), 10)


def test_the_sample_clips_are_the_tasks_own_test_clips():
    from inti.experiments.evidence.tasks import task_clip, to_input

    frames, labels, shown = assets.sample_clips()
    assert frames.dtype == np.uint8 and frames.shape == (2, 8, 32, 32, 3)
    for i in range(len(frames)):
        made, label, info = task_clip("informative", "test", i)
        assert np.array_equal(frames[i], made) and labels[i] == label and shown[i] == list(info["digit_frames"])
        assert np.array_equal(assets.to_model_input(frames)[i], to_input(made))


def test_the_shipped_model_learned_to_weigh_the_digit_frames():
    """What figure 4 shows, as numbers: on its sample clips, the shipped model's contributions
    are larger on the frames that show the digit than on the others; the untrained ones are 1/2."""
    from inti.figures import learned_maps

    loaded = weights.load(assets.trained_weights())
    params, cfg = loaded.params, loaded.cfg
    frames, _, shown = assets.sample_clips()
    trained, untrained, _ = learned_maps(params, cfg, assets.to_model_input(frames))
    assert np.allclose(untrained[:, :, 1:], 0.5)
    for i, digit in enumerate(shown):
        means = trained[i, :, 1:].mean(axis=1)
        others = [f for f in range(len(means)) if f not in digit]
        assert means[digit].min() > means[others].max(), (i, means.round(2))
    ref.check_params(params, cfg)
