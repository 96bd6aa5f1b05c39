"""Sliding windows: positions, the window-label rule, and agreement with a per-window loop."""

from __future__ import annotations

import numpy as np

from eo_tasks.maps.infer import sliding_window_labels, window_label, window_positions


def test_positions_are_the_last_composite_of_each_complete_window() -> None:
    assert window_positions(48, 15).tolist() == list(range(14, 48))


def test_the_window_label_averages_the_steps() -> None:
    probs = np.zeros((1, 4, 2))
    probs[0, :, 0] = [0.9, 0.9, 0.2, 0.2]  # two steps sure of class 0, two leaning to class 1
    probs[0, :, 1] = 1 - probs[0, :, 0]
    assert window_label(probs).tolist() == [0]  # mean 0.55 vs 0.45, not the last step's 0.8
    probs[0, 1] = [0.1, 0.9]
    assert window_label(probs).tolist() == [1]


def _threshold_model(batch: np.ndarray) -> np.ndarray:
    """Class 1 where the feature exceeds 0.5, per step: a stand-in model with known answers."""
    p1 = (batch[..., 0] > 0.5).astype(np.float32)
    return np.stack([1 - p1, p1], axis=-1)


def test_a_change_flips_the_window_label_half_a_window_later() -> None:
    w, change = 15, 30
    series = np.zeros((60, 3, 1), dtype=np.float32)
    series[change:, 1, 0] = 1.0  # pixel 1 changes at composite 30
    labels = sliding_window_labels(series, w, _threshold_model, np.array([3, 8]), batch_size=7)
    assert labels.shape == (60 - w + 1, 3)
    assert set(labels[:, 0].tolist()) == {3} and set(labels[:, 2].tolist()) == {3}
    first = int(np.argmax(labels[:, 1] == 8)) + (w - 1)  # composite index of the first flipped window
    assert first == change + w // 2  # half a window after the ground changed


def test_batched_equals_one_window_at_a_time() -> None:
    rng = np.random.default_rng(1)
    series = rng.random((20, 11, 2)).astype(np.float32)
    w = 5
    fast = sliding_window_labels(series, w, _threshold_model, np.array([1, 2]), batch_size=13)
    for k, end in enumerate(range(w - 1, 20)):
        window = np.moveaxis(series[end - w + 1 : end + 1], 1, 0)  # (pixels, w, F)
        expected = np.array([1, 2])[window_label(_threshold_model(window))]
        assert fast[k].tolist() == expected.tolist()
