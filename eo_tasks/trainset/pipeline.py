"""The training-set stages end to end: reference on the grid → annual sets and RF maps → multi-year set.

Each stage reads and writes files under ``$EO_DATA_DIR/training/<aoi>/`` (:class:`TrainingPaths`),
so the training DAG can run the years as separate tasks, retry one of them, and hand the
multi-year stage nothing but paths. Every file is written under a temporary name and renamed.
Reports are plain JSON (also logged), so they travel through XCom and into the catalog.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.classes import CLASSES, NODATA_CLASS
from eo_tasks.core.cube import Cube
from eo_tasks.core.errors import ConfigError
from eo_tasks.core.features import (
    feature_names,
)
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.raster import read_raster
from eo_tasks.core.trainset_format import SPLIT_NAMES
from eo_tasks.trainset.config import TrainsetConfig
from eo_tasks.trainset.dataset import Samples, TrainingSetMetadata
from eo_tasks.trainset.reference import reference_on_grid, write_class_raster
from eo_tasks.trainset.sampling import class_name

log = logging.getLogger(__name__)

# Codes of the cluster-filter grid.
FILTER_NOT_CANDIDATE = 0  # no reference label, or too rarely observed this year
FILTER_KEPT = 1  # in its class's dominant cluster (or its class was too small to cluster)
FILTER_REJECTED = 2  # in a minor cluster of its class


@dataclass(frozen=True)
class TrainingPaths:
    """Where the training stages of one AOI write: ``<data>/training/<aoi>/``."""

    root: Path

    @classmethod
    def for_aoi(cls, data_dir: Path, aoi: str) -> TrainingPaths:
        """The paths of an AOI under the platform's data root."""
        return cls(data_dir / "training" / aoi)

    @property
    def reference(self) -> Path:
        """The reference map on the AOI grid, in platform classes."""
        return self.root / "reference.tif"

    def rf_map(self, year: int) -> Path:
        """The preliminary random-forest map of a year."""
        return self.root / f"rf_map_{year}.tif"

    def rf_quicklook(self, year: int) -> Path:
        """Its PNG quicklook."""
        return self.root / f"rf_map_{year}.png"

    def annual_set(self, year: int) -> Path:
        """The annual training set of a year (same layout as the multi-year set)."""
        return self.root / f"annual_{year}.h5"

    def annual_report(self, year: int) -> Path:
        """The annual stage's report."""
        return self.root / f"annual_{year}.json"

    @property
    def trainset(self) -> Path:
        """The multi-year training set: what the deep models train on."""
        return self.root / "trainset.h5"

    @property
    def report(self) -> Path:
        """The multi-year stage's report (with the annual reports inside)."""
        return self.root / "report.json"


def _class_pixels(labels: np.ndarray) -> dict[int, int]:
    counts = np.bincount(labels.ravel(), minlength=max(c.code for c in CLASSES) + 1)
    return {code: int(n) for code, n in enumerate(counts) if n and code != NODATA_CLASS}


def prepare_reference(aoi: AOIConfig, paths: TrainingPaths) -> dict[str, int]:
    """Warps the AOI's reference map onto its grid in platform classes and writes it.

    Args:
        aoi: The AOI (its ``reference`` and ``grid``).
        paths: Where to write.

    Returns:
        Class name → pixels in the reference map.

    Raises:
        ConfigError: The map is unreadable, does not cover the AOI, or holds a code the legend lacks.
    """
    reference = reference_on_grid(aoi.reference.path, aoi.reference.legend, aoi.grid)
    write_class_raster(paths.reference, reference, aoi.grid)
    counts = {class_name(c): n for c, n in _class_pixels(reference).items()}
    log.info("%s: reference map %s on the grid: %s", aoi.name, aoi.reference.path, counts)
    return counts


def _read_reference(paths: TrainingPaths, grid: GridSpec) -> np.ndarray:
    reference = read_raster(paths.reference)
    if reference.shape != grid.shape:
        raise ConfigError(
            f"{paths.reference}: shape {reference.shape} differs from the cube grid {grid.shape}; "
            "rerun the reference task after changing the AOI grid"
        )
    return reference


def _cube_record(cube: Cube) -> dict[str, str]:
    return {
        "path": str(cube.path),
        "scene_fingerprint": str(cube.attrs.get("scene_fingerprint", "")),
        "created_at": str(cube.attrs.get("created_at", "")),
    }


def _metadata(
    aoi: AOIConfig, cubes: Mapping[int, Cube], config: TrainsetConfig, extra: dict[str, Any]
) -> TrainingSetMetadata:
    first = next(iter(cubes.values()))
    return TrainingSetMetadata(
        aoi=aoi.name,
        epsg=first.epsg,
        geotransform=first.geotransform,
        grid_shape=(first.shape[1], first.shape[2]),
        band_names=list(first.band_names),
        feature_names=feature_names(first.band_names, config.include_indices),
        dates={year: cube.dates for year, cube in cubes.items()},
        source_cubes={year: _cube_record(cube) for year, cube in cubes.items()},
        reference=aoi.reference.path,
        legend=aoi.reference.legend,
        config=config.to_dict(),
        extra=extra,
    )


def _per_class_and_split(samples: Samples) -> dict[str, dict[str, int]]:
    return {
        class_name(code): {
            name: int(((samples.labels == code) & (samples.split == s)).sum())
            for s, name in enumerate(SPLIT_NAMES)
        }
        for code in np.unique(samples.labels)
    }
