"""Sliding-window inference: one label per pixel for every window position across years.

The classifier sees ``w`` consecutive composites and gives a class for each of them. The window
slides one composite at a time across the concatenated cubes of consecutive years, so every new
composite yields an updated map.

Which label represents a window (a choice the change analysis depends on): the argmax of the
per-step class probabilities **averaged over the window's steps**, placed at the window's **last**
composite. A window therefore switches to a new class when about half of it shows that class, i.e.
about half a window after the ground changed — which is why ``eo_tasks.changes`` dates a change by
shifting the detected position back by half a window.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Predict = Callable[[np.ndarray], np.ndarray]  # (batch, w, features) -> (batch, w, classes) probabilities


def window_positions(n_composites: int, window: int) -> np.ndarray:
    """The last-composite index of every complete window over ``n_composites``."""
    return np.arange(window - 1, n_composites)


def window_label(probabilities: np.ndarray) -> np.ndarray:
    """The window's label from per-step probabilities ``(batch, w, classes)`` → ``(batch,)`` class index."""
    return np.argmax(probabilities.mean(axis=1), axis=-1)


def sliding_window_labels(
    series: np.ndarray, window: int, predict: Predict, class_codes: np.ndarray, batch_size: int = 65536
) -> np.ndarray:
    """Labels every pixel at every window position.

    Args:
        series: ``(composites, pixels, features)`` normalized-or-raw features in the model's order
            (the model applies its own normalization).
        window: ``w``, composites per window.
        predict: The model: ``(batch, w, features)`` → ``(batch, w, classes)`` probabilities.
        class_codes: Platform class code of each model output.
        batch_size: Pixel-windows per call to ``predict``.

    Returns:
        ``(positions, pixels)`` class codes; row ``k`` is the window ending at composite ``window - 1 + k``.
    """
    n_composites, n_pixels, _ = series.shape
    positions = window_positions(n_composites, window)
    labels = np.empty((positions.size, n_pixels), dtype=class_codes.dtype)
    pixel_batch = max(1, batch_size // max(positions.size, 1))
    for start in range(0, n_pixels, pixel_batch):
        stop = min(start + pixel_batch, n_pixels)
        block = np.moveaxis(series[:, start:stop, :], 1, 0)  # (pixels, composites, features)
        windows = np.lib.stride_tricks.sliding_window_view(block, window, axis=1)  # (pixels, positions, F, w)
        batch = np.ascontiguousarray(np.moveaxis(windows, -1, 2)).reshape(-1, window, series.shape[2])
        probabilities = predict(batch)
        labels[:, start:stop] = class_codes[window_label(probabilities)].reshape(stop - start, -1).T
    return labels
