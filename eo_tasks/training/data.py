"""Reads training-set HDF5 files on the compute nodes, with numpy and h5py alone.

Why a second reader: :mod:`eo_tasks.trainset` writes these files on the orchestration side and
imports GDAL, scikit-learn and the datacube code, none of which the HPC environment carries (and
none of which a trainer needs). This module follows the layout documented there exactly (format
``eo-platform/training-set``, version 1): ``features`` (N, T, F), ``labels`` (N,), ``split`` with rows
ordered train → validation → test so that each split is one contiguous slice, ``norm_mean`` /
``norm_std`` computed on the training split, ``dates`` (Y, T) and the class, band and feature
names as attributes. Workers read only the rows they train on, so memory follows the shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.trainset_format import FORMAT, FORMAT_VERSION

_DATASETS = ("features", "labels", "split", "norm_mean", "norm_std", "dates")


@dataclass(frozen=True)
class TrainingSetInfo:
    """What a training-set file says about itself (everything but the samples).

    Attributes:
        path: The file.
        aoi: The AOI it was built for.
        time_steps: Length of the time axis (composites per year).
        feature_names: Names of the features axis.
        band_names: The datacube's bands (the first features).
        class_codes: Platform class codes; index ``i`` of a model's output is ``class_codes[i]``.
        class_names: Names of those classes.
        class_colors: ``#rrggbb`` colours of those classes.
        years: Years the samples come from.
        dates: Year → ISO dates of the time steps.
        split_counts: Samples in train, validation and test.
        norm_mean: Per-feature mean of the training split.
        norm_std: Per-feature standard deviation of the training split.
        created_at: When the file was written.
    """

    path: Path
    aoi: str
    time_steps: int
    feature_names: list[str]
    band_names: list[str]
    class_codes: list[int]
    class_names: list[str]
    class_colors: list[str]
    years: list[int]
    dates: dict[int, list[str]]
    split_counts: tuple[int, int, int]
    norm_mean: np.ndarray
    norm_std: np.ndarray
    created_at: str

    @property
    def n_features(self) -> int:
        """Length of the features axis."""
        return len(self.feature_names)

    @property
    def n_classes(self) -> int:
        """Number of output classes (all platform classes, present in the file or not)."""
        return len(self.class_codes)

    def split_slice(self, split: int) -> slice:
        """The contiguous rows of one split (0 train, 1 validation, 2 test)."""
        start = sum(self.split_counts[:split])
        return slice(start, start + self.split_counts[split])


@dataclass(frozen=True)
class SplitData:
    """Normalized samples of one split (or of one worker's part of it).

    Attributes:
        x: ``(samples, time, features)`` float32, ``(features - norm_mean) / norm_std``.
        y: ``(samples,)`` int64 class indices into :attr:`TrainingSetInfo.class_codes`.
    """

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def read_info(path: Path) -> TrainingSetInfo:
    """Reads a training-set file's metadata and normalization statistics.

    Args:
        path: The ``.h5`` file.

    Returns:
        The file's description.

    Raises:
        ConfigError: The file is missing, not a training set, of another format version, or
            incomplete.
    """
    import h5py

    if not path.is_file():
        raise ConfigError(f"training set {path} does not exist")
    with h5py.File(path, "r") as f:
        attrs = f.attrs
        if _text(attrs.get("format", "")) != FORMAT:
            raise ConfigError(f"{path}: not a training set (attribute format != {FORMAT!r})")
        if int(attrs.get("format_version", -1)) != FORMAT_VERSION:
            raise ConfigError(
                f"{path}: training-set format_version {attrs.get('format_version')} "
                f"(this trainer reads version {FORMAT_VERSION})"
            )
        missing = [name for name in _DATASETS if name not in f]
        if missing:
            raise ConfigError(f"{path}: training set lacks dataset(s) {', '.join(missing)}")
        n, t, nf = f["features"].shape
        years = [int(y) for y in attrs["years"]]
        counts = tuple(int(c) for c in attrs["split_counts"])
        if len(counts) != 3 or sum(counts) != n:
            raise ConfigError(f"{path}: split_counts {list(counts)} do not add up to {n} samples")
        info = TrainingSetInfo(
            path=path,
            aoi=_text(attrs.get("aoi", "")),
            time_steps=int(t),
            feature_names=[_text(v) for v in attrs["feature_names"]],
            band_names=[_text(v) for v in attrs["band_names"]],
            class_codes=[int(c) for c in attrs["class_codes"]],
            class_names=[_text(v) for v in attrs["class_names"]],
            class_colors=[_text(v) for v in attrs.get("class_colors", [])],
            years=years,
            dates={y: [_text(d) for d in row] for y, row in zip(years, f["dates"][:], strict=True)},
            split_counts=(counts[0], counts[1], counts[2]),
            norm_mean=np.asarray(f["norm_mean"][:], dtype=np.float32),
            norm_std=np.asarray(f["norm_std"][:], dtype=np.float32),
            created_at=_text(attrs.get("created_at", "")),
        )
    if len(info.feature_names) != nf or info.norm_mean.shape != (nf,) or info.norm_std.shape != (nf,):
        raise ConfigError(f"{path}: feature_names / norm_mean / norm_std do not match {nf} features")
    return info


def part_rows(rows: slice, part: int, parts: int, equal: bool) -> slice:
    """One worker's contiguous share of a split's rows.

    Args:
        rows: The split's rows (a slice with start and stop).
        part: This worker (0-based).
        parts: Number of workers.
        equal: Give every worker exactly ``len // parts`` rows (dropping up to ``parts - 1``), so
            every worker runs the same number of steps; otherwise spread the remainder.

    Returns:
        The worker's rows.
    """
    n = rows.stop - rows.start
    if equal:
        size = n // parts
        return slice(rows.start + part * size, rows.start + (part + 1) * size)
    bounds = np.linspace(0, n, parts + 1).astype(int)
    return slice(rows.start + int(bounds[part]), rows.start + int(bounds[part + 1]))


def read_rows(info: TrainingSetInfo, rows: slice) -> SplitData:
    """Reads and normalizes a contiguous block of samples.

    Args:
        info: The file's description (:func:`read_info`).
        rows: The rows to read.

    Returns:
        Normalized features and class indices.

    Raises:
        ConfigError: A label is not one of the file's class codes.
    """
    import h5py

    with h5py.File(info.path, "r") as f:
        features = np.asarray(f["features"][rows], dtype=np.float32)
        labels = np.asarray(f["labels"][rows])
    lut = np.full(max(max(info.class_codes), int(labels.max(initial=0))) + 1, -1, dtype=np.int64)
    lut[info.class_codes] = np.arange(len(info.class_codes))
    y = lut[labels]
    if (y < 0).any():
        bad = sorted({int(c) for c in labels[y < 0]})
        raise ConfigError(f"{info.path}: label(s) {bad} are not among class_codes {info.class_codes}")
    x = (features - info.norm_mean) / info.norm_std
    return SplitData(x=x.astype(np.float32, copy=False), y=y)
