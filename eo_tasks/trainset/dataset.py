"""Training-set files: samples × time × features in one HDF5 file, the hand-over to the compute side.

The layout is documented in :mod:`eo_tasks.trainset` (the contract the TensorFlow and PyTorch
trainers read); this module writes it and reads it back. Rows are ordered by split (train, then
validation, then test; shuffled within each), so a trainer reads one contiguous slice per split.
The normalization statistics come from the training split only: validation and test must not
leak into what the model sees.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.classes import CLASSES
from eo_tasks.core.errors import EOError
from eo_tasks.core.files import atomic_path
from eo_tasks.core.raster import srs_wkt
from eo_tasks.core.trainset_format import (
    FORMAT,
    FORMAT_VERSION,
    SPLIT_NAMES,
    SPLIT_TRAIN,
)


class EmptyTrainingSetError(EOError, ValueError):
    """No sample landed in the training split: the reference, the cubes or the settings leave nothing."""


@dataclass(frozen=True)
class Samples:
    """Training samples and where they come from (all arrays share their first axis).

    Attributes:
        features: ``(samples, time, features)`` float32.
        labels: Platform class codes.
        year: Year of the cube each sample was read from.
        row: Row of the pixel on the AOI grid.
        col: Column of the pixel on the AOI grid.
        split: 0 train, 1 validation, 2 test.
    """

    features: np.ndarray
    labels: np.ndarray
    year: np.ndarray
    row: np.ndarray
    col: np.ndarray
    split: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: np.ndarray) -> Samples:
        """The samples at ``index`` (an index array or a boolean mask)."""
        return Samples(*(getattr(self, name)[index] for name in _SAMPLE_FIELDS))

    @classmethod
    def concatenate(cls, parts: Sequence[Samples]) -> Samples:
        """Stacks sample sets along the sample axis (their feature shapes must match)."""
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in _SAMPLE_FIELDS))


_SAMPLE_FIELDS = ("features", "labels", "year", "row", "col", "split")
_DTYPES = {"labels": np.uint8, "year": np.int16, "row": np.int32, "col": np.int32, "split": np.uint8}


@dataclass(frozen=True)
class TrainingSetMetadata:
    """What a training-set file records besides the samples.

    Attributes:
        aoi: The AOI name.
        epsg: CRS of the AOI grid.
        geotransform: GDAL geotransform of the AOI grid.
        grid_shape: ``(rows, cols)`` of the AOI grid.
        band_names: The cube's bands.
        feature_names: Names of the features axis (bands, then indices if included).
        dates: Year → the calendar's composite dates of that year (the time axis).
        source_cubes: Year → ``{"path", "scene_fingerprint", "created_at"}`` of the cube read.
        reference: Path of the reference map.
        legend: Legend of the reference map.
        config: The :class:`~eo_tasks.trainset.config.TrainsetConfig` used, as plain data.
        extra: Further attributes (stored as JSON).
    """

    aoi: str
    epsg: int
    geotransform: tuple[float, ...]
    grid_shape: tuple[int, int]
    band_names: list[str]
    feature_names: list[str]
    dates: dict[int, list[dt.date]]
    source_cubes: dict[int, dict[str, str]]
    reference: str
    legend: str
    config: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)


def normalization(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and standard deviation over samples and time steps (std floored at 1e-6).

    Args:
        features: ``(samples, time, features)``.

    Returns:
        ``(mean, std)``, each ``(features,)`` float32.
    """
    flat = features.reshape(-1, features.shape[-1]).astype(np.float64)
    return flat.mean(axis=0).astype(np.float32), np.maximum(flat.std(axis=0), 1e-6).astype(np.float32)


def write_training_set(path: Path, samples: Samples, meta: TrainingSetMetadata, seed: int) -> dict[str, Any]:
    """Writes a training-set file atomically (temporary name, then rename).

    Args:
        path: Destination ``.h5``.
        samples: The samples (any order).
        meta: Everything else the file records.
        seed: Seeds the shuffle within each split.

    Returns:
        Counts: ``{"samples", "splits": {name: n}, "classes": {code: n}}``.

    Raises:
        EmptyTrainingSetError: No sample is in the training split.
    """
    import h5py

    train = samples.split == SPLIT_TRAIN
    if not train.any():
        raise EmptyTrainingSetError(
            f"{meta.aoi}: no training sample in the training split ({len(samples)} samples in all); "
            "check the reference map's coverage, the cubes and the trainset settings"
        )
    rng = np.random.default_rng([seed, 0x7A1])
    order = np.concatenate(
        [rng.permutation(np.flatnonzero(samples.split == s)) for s in range(len(SPLIT_NAMES))]
    )
    ordered = samples.take(order)
    mean, std = normalization(ordered.features[ordered.split == SPLIT_TRAIN])
    n, t, nf = ordered.features.shape
    years = sorted(meta.dates)
    split_counts = {name: int((ordered.split == s).sum()) for s, name in enumerate(SPLIT_NAMES)}
    class_counts = {int(c): int((ordered.labels == c).sum()) for c in np.unique(ordered.labels)}

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset(
            "features",
            data=ordered.features.astype(np.float32),
            chunks=(min(n, 1024), t, nf),
            compression="gzip",
            compression_opts=4,
            shuffle=True,
        )
        for name, dtype in _DTYPES.items():
            f.create_dataset(name, data=getattr(ordered, name).astype(dtype))
        f.create_dataset("norm_mean", data=mean)
        f.create_dataset("norm_std", data=std)
        f.create_dataset("dates", data=[[d.isoformat().encode() for d in meta.dates[y]] for y in years])
        attrs = f.attrs
        attrs["format"] = FORMAT
        attrs["format_version"] = FORMAT_VERSION
        attrs["aoi"] = meta.aoi
        attrs["epsg"] = meta.epsg
        attrs["crs_wkt"] = srs_wkt(meta.epsg)
        attrs["geotransform"] = list(meta.geotransform)
        attrs["grid_shape"] = list(meta.grid_shape)
        attrs["years"] = years
        attrs["band_names"] = list(meta.band_names)
        attrs["feature_names"] = list(meta.feature_names)
        attrs["class_codes"] = [c.code for c in CLASSES]
        attrs["class_names"] = [c.name for c in CLASSES]
        attrs["class_colors"] = [c.color for c in CLASSES]
        attrs["split_names"] = list(SPLIT_NAMES)
        attrs["split_counts"] = [split_counts[name] for name in SPLIT_NAMES]
        attrs["source_cubes"] = json.dumps({str(y): c for y, c in sorted(meta.source_cubes.items())})
        attrs["reference"] = meta.reference
        attrs["legend"] = meta.legend
        attrs["config"] = json.dumps(meta.config, sort_keys=True)
        attrs["extra"] = json.dumps(meta.extra, sort_keys=True)
        attrs["created_at"] = dt.datetime.now(dt.UTC).isoformat()
    return {"samples": n, "splits": split_counts, "classes": class_counts}


def read_training_set(path: Path, split: int | None = None) -> tuple[Samples, dict[str, Any]]:
    """Reads a training-set file (all samples, or one split's contiguous slice) and its attributes.

    Args:
        path: The ``.h5`` file.
        split: 0, 1 or 2 to read one split; None for all.

    Returns:
        The samples and the file's attributes (``norm_mean``/``norm_std`` and ``dates`` included).
    """
    import h5py

    with h5py.File(path, "r") as f:
        counts = [int(c) for c in f.attrs["split_counts"]]
        rows = slice(None) if split is None else slice(sum(counts[:split]), sum(counts[: split + 1]))
        samples = Samples(*(f[name][rows] for name in _SAMPLE_FIELDS))
        attrs: dict[str, Any] = {key: f.attrs[key] for key in f.attrs}
        attrs.update(
            norm_mean=f["norm_mean"][:],
            norm_std=f["norm_std"][:],
            dates=[[d.decode() for d in row] for row in f["dates"][:]],
        )
    return samples, attrs
