"""The per-year random forest: the baseline classifier and the source of the preliminary annual maps.

A random forest trained on one year's filtered samples labels every pixel of that year's cube.
Those preliminary maps serve two ends: pixels where every year's map agrees with the reference are
taken as unchanged (the multi-year training set), and their inter-year agreement is the baseline
that the deep models must beat. The map is predicted block by block straight into a GeoTIFF, so
memory is one block's features, whatever the AOI size.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.classes import NODATA_CLASS
from eo_tasks.core.cube import Cube
from eo_tasks.core.features import iter_blocks, pixel_features
from eo_tasks.core.grid import GridSpec
from eo_tasks.trainset.reference import class_raster_writer
from eo_tasks.trainset.sampling import class_name


def train_forest(features: np.ndarray, labels: np.ndarray, trees: int, seed: int) -> Any:
    """Fits a random forest on all cores.

    Args:
        features: ``(samples, time, features)`` (flattened per sample here).
        labels: ``(samples,)`` class codes.
        trees: Number of trees.
        seed: Seeds the forest.

    Returns:
        The fitted ``sklearn.ensemble.RandomForestClassifier``.
    """
    from sklearn.ensemble import RandomForestClassifier

    model = RandomForestClassifier(n_estimators=trees, n_jobs=-1, random_state=seed)
    return model.fit(features.reshape(len(features), -1), labels)


def accuracy_report(truth: np.ndarray, predicted: np.ndarray, classes: Sequence[int]) -> dict[str, Any]:
    """Overall accuracy and per-class F1 (the map-accuracy figures every report uses).

    Args:
        truth: Class codes taken as right.
        predicted: Class codes to score, same shape.
        classes: Classes to report F1 for.

    Returns:
        ``{"pixels", "overall_accuracy", "f1": {name: value}, "support": {name: pixels}}``; the F1
        of a class found in neither array is None (undefined, not 0).
    """
    from sklearn.metrics import f1_score

    truth, predicted = truth.ravel(), predicted.ravel()
    if truth.size == 0:
        return {"pixels": 0, "overall_accuracy": None, "f1": {}, "support": {}}
    f1 = f1_score(truth, predicted, labels=list(classes), average=None, zero_division=0)
    return {
        "pixels": int(truth.size),
        "overall_accuracy": round(float((truth == predicted).mean()), 4),
        "f1": {
            class_name(c): round(float(v), 4) if ((truth == c) | (predicted == c)).any() else None
            for c, v in zip(classes, f1, strict=True)
        },
        "support": {class_name(c): int((truth == c).sum()) for c in classes},
    }


def predict_map(
    model: Any,
    cube: Cube,
    grid: GridSpec,
    path: Path,
    include_indices: bool,
    block_px: int,
) -> dict[int, int]:
    """Classifies every pixel of a cube, block by block, into a GeoTIFF on the AOI grid.

    Pixels that no composite of the year observed are left at 0 (no data): their gap-filled series
    is only a fill value.

    Args:
        model: A fitted classifier with ``predict`` on flattened :func:`pixel_features`.
        cube: The year's cube.
        grid: The AOI grid (the cube's).
        path: Destination ``.tif`` (written under a temporary name, then renamed).
        include_indices: Whether the model was trained with the indices in its features.
        block_px: Side of the blocks read and predicted.

    Returns:
        Class code → pixels in the map.
    """
    counts = np.zeros(256, dtype=np.int64)
    with class_raster_writer(path, grid) as write:
        for block, reflectance, observed in iter_blocks(cube, block_px):
            classes = np.full(len(reflectance), NODATA_CLASS, dtype=np.uint8)
            seen = observed > 0
            if seen.any():
                features = pixel_features(reflectance[seen], cube.band_names, include_indices)
                classes[seen] = model.predict(features.reshape(len(features), -1))
            counts += np.bincount(classes, minlength=256)
            write(block.row0, block.col0, classes.reshape(block.rows, block.cols))
    return {int(c): int(n) for c, n in enumerate(counts) if n and c != NODATA_CLASS}
