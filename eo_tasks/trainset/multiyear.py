"""The multi-year training set: pixels every yearly RF map agrees with the reference on, from every year."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.classes import NODATA_CLASS
from eo_tasks.core.cube import Cube
from eo_tasks.core.features import (
    cube_grid,
    observed_fraction,
)
from eo_tasks.core.files import file_digest, write_json
from eo_tasks.core.raster import read_raster
from eo_tasks.trainset.annual import _quotas, _splits, read_samples
from eo_tasks.trainset.config import TrainsetConfig
from eo_tasks.trainset.dataset import Samples, write_training_set
from eo_tasks.trainset.pipeline import (
    TrainingPaths,
    _class_pixels,
    _metadata,
    _per_class_and_split,
    _read_reference,
)
from eo_tasks.trainset.sampling import class_name, stratified_sample

log = logging.getLogger(__name__)


def unchanged_pixels(reference: np.ndarray, maps: Mapping[int, np.ndarray]) -> np.ndarray:
    """Pixels whose label every year's preliminary map agrees with (the "unchanged" pixels).

    Args:
        reference: Platform class codes (0 = no data, never unchanged).
        maps: Year → preliminary map on the same grid (0 = no data, never agreeing).

    Returns:
        Boolean grid.
    """
    agree = reference != NODATA_CLASS
    for classes in maps.values():
        agree &= classes == reference
    return agree


def build_multiyear(
    aoi: AOIConfig,
    cube_paths: Mapping[int, Path],
    paths: TrainingPaths,
    config: TrainsetConfig,
) -> dict[str, Any]:
    """The multi-year training set: unchanged pixels, stratified samples drawn from every year.

    Needs the reference and every year's preliminary map (:func:`build_annual`) under ``paths``.
    Each year draws its own sample (same quotas, a year-specific random stream) from the unchanged
    pixels it observed often enough; the splits are the annual ones, so a pixel's block is in the
    same split every year.

    Args:
        aoi: The AOI.
        cube_paths: Year → that year's datacube.
        paths: Where to read the reference and maps and write the set and the report.
        config: The settings.

    Returns:
        The report: the file and its SHA-256, what it was built from (cubes, reference, legend,
        settings), unchanged pixels per class, samples per class and year, split sizes.
        ``paths.report`` receives it together with every year's annual report.

    Raises:
        EmptyTrainingSetError: No sample fell into the training split.
    """
    t0 = time.monotonic()
    cubes = {year: Cube.open(path) for year, path in sorted(cube_paths.items())}
    grid = cube_grid(next(iter(cubes.values())))
    reference = _read_reference(paths, grid)
    if len(cubes) == 1:
        log.warning(
            "%s: one year only: 'unchanged' means only that its map agrees with the reference", aoi.name
        )
    unchanged = unchanged_pixels(reference, {year: read_raster(paths.rf_map(year)) for year in cubes})
    splits = _splits(reference, config)
    quotas = _quotas(reference, config)
    parts = []
    for year, cube in cubes.items():
        eligible = (
            unchanged
            & (splits >= 0)
            & (observed_fraction(cube, config.block_px) >= config.min_observed_fraction)
        )
        rng = np.random.default_rng([config.seed, year, 0x3E])
        drawn = stratified_sample(reference, eligible, quotas, rng, f"{aoi.name} {year} multi-year")
        parts.append(read_samples(cube, drawn, reference, splits, config))
    samples = Samples.concatenate(parts)
    unchanged_per_class = {
        class_name(c): n for c, n in _class_pixels(np.where(unchanged, reference, 0)).items()
    }
    extra = {"unchanged_pixels": unchanged_per_class}
    meta = _metadata(aoi, cubes, config, extra)
    summary = write_training_set(paths.trainset, samples, meta, config.seed)
    report = {
        "aoi": aoi.name,
        "years": sorted(cubes),
        "path": str(paths.trainset),
        "sha256": file_digest(paths.trainset),
        "source_cubes": {str(year): record for year, record in meta.source_cubes.items()},
        "reference": meta.reference,
        "legend": meta.legend,
        "config": meta.config,
        "samples": summary["samples"],
        "splits": summary["splits"],
        "unchanged_pixels": unchanged_per_class,
        "unchanged_share": round(float(unchanged.sum() / max((reference != NODATA_CLASS).sum(), 1)), 4),
        "samples_per_class_and_year": {
            class_name(code): {
                str(y): int(((samples.labels == code) & (samples.year == y)).sum()) for y in cubes
            }
            for code in sorted(quotas)
        },
        "samples_per_class_and_split": _per_class_and_split(samples),
        "seconds": round(time.monotonic() - t0, 2),
    }
    annual = {str(year): json.loads(paths.annual_report(year).read_text()) for year in cubes}
    write_json(paths.report, {"multiyear": report, "annual": annual})
    log.info(
        "%s: multi-year training set %s: %d samples from %s (%s); unchanged pixels %s",
        aoi.name,
        paths.trainset,
        summary["samples"],
        sorted(cubes),
        summary["splits"],
        unchanged_per_class,
    )
    return report
