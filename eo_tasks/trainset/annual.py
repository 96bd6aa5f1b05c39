"""One year's training set: dominant clusters, stratified samples, the random forest and its map."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.classes import NODATA_CLASS
from eo_tasks.core.cube import Cube
from eo_tasks.core.features import (
    cube_grid,
    index_series,
    iter_blocks,
    pixel_features,
    read_pixels,
)
from eo_tasks.core.files import write_json
from eo_tasks.core.quicklook import raster_quicklook
from eo_tasks.core.trainset_format import SPLIT_NAMES, SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALIDATION
from eo_tasks.trainset.config import TrainsetConfig
from eo_tasks.trainset.dataset import Samples, write_training_set
from eo_tasks.trainset.forest import accuracy_report, predict_map, train_forest
from eo_tasks.trainset.pipeline import (
    FILTER_KEPT,
    FILTER_NOT_CANDIDATE,
    FILTER_REJECTED,
    TrainingPaths,
    _class_pixels,
    _metadata,
    _per_class_and_split,
    _read_reference,
)
from eo_tasks.trainset.sampling import (
    DominantCluster,
    block_splits,
    class_name,
    class_quotas,
    fit_dominant_cluster,
    stratified_sample,
)

log = logging.getLogger(__name__)


def _splits(reference: np.ndarray, config: TrainsetConfig) -> np.ndarray:
    rows, cols = reference.shape
    return block_splits(
        (rows, cols),
        config.split_block_px,
        config.split_fractions,
        config.split_buffer_px,
        config.seed,
        labels=reference,
    )


def _quotas(reference: np.ndarray, config: TrainsetConfig) -> dict[int, int]:
    counts = _class_pixels(reference)
    return class_quotas(counts, config.samples_per_year, config.min_per_class, config.max_per_class)


def _fit_class_clusters(
    cube: Cube, reference: np.ndarray, present: dict[int, int], config: TrainsetConfig, context: str
) -> dict[int, DominantCluster]:
    """Fits each class's k-means on a random subset of its observed pixels (one read of the cube)."""
    cols = reference.shape[1]
    rng = np.random.default_rng([config.seed, int(cube.attrs.get("year", 0)), 0xC1])
    flat_reference = reference.ravel()
    fit_pixels = {
        code: np.sort(
            rng.choice(np.flatnonzero(flat_reference == code), min(n, config.cluster_fit_pixels), False)
        )
        for code, n in present.items()
    }
    every_pixel = np.concatenate([*fit_pixels.values(), np.zeros(0, dtype=np.int64)])
    reflectance, observed = read_pixels(cube, every_pixel // cols, every_pixel % cols, config.block_px)
    needed = max(config.min_cluster_pixels, config.clusters)
    models: dict[int, DominantCluster] = {}
    start = 0
    for code, pixels in fit_pixels.items():
        part = slice(start, start + len(pixels))
        start += len(pixels)
        usable = observed[part] >= config.min_observed_fraction
        if not usable.any():
            log.warning(
                "%s: class %s is never observed often enough this year; it gets no samples",
                context,
                class_name(code),
            )
        elif usable.sum() < needed:
            log.warning(
                "%s: class %s has only %d observed pixels, too few for %d clusters (minimum %d): "
                "not clustered, all its pixels kept",
                context,
                class_name(code),
                usable.sum(),
                config.clusters,
                needed,
            )
        else:
            features = index_series(reflectance[part][usable], cube.band_names)
            models[code] = fit_dominant_cluster(
                features, config.clusters, config.seed, config.keep_cluster_share
            )
    return models


def cluster_filter(
    cube: Cube, reference: np.ndarray, config: TrainsetConfig, context: str
) -> tuple[np.ndarray, dict[str, dict[str, Any]]]:
    """Keeps, per class, the reference pixels in the dominant k-means cluster(s) of the year's indices.

    The k-means of each class is fitted on at most ``config.cluster_fit_pixels`` of its pixels
    (one read of the cube for all classes), then every candidate pixel is assigned to its class's
    clusters block by block (a second read). A class with too few observed pixels for k clusters
    keeps all of them, and a class of the reference that this year never observed gets nothing;
    both are logged as warnings.

    Args:
        cube: The year's cube.
        reference: Platform class codes on the cube's grid.
        config: The settings (``clusters``, ``cluster_fit_pixels``, ``min_cluster_pixels``,
            ``min_observed_fraction``, ``block_px``, ``seed``).
        context: Names the AOI and year in log lines.

    Returns:
        The filter grid (``FILTER_*`` codes, uint8) and per class name: ``reference_pixels``,
        ``candidates`` (observed often enough), ``kept``, ``rejected``, ``rejected_share``,
        ``clustered``, ``cluster_sizes`` (pixels per cluster in the fitted sample) and
        ``kept_clusters``.
    """
    present = _class_pixels(reference)
    models = _fit_class_clusters(cube, reference, present, config, context)

    filter_grid = np.zeros(reference.shape, dtype=np.uint8)
    for block, block_reflectance, block_observed in iter_blocks(cube, config.block_px):
        window = (slice(block.row0, block.row0 + block.rows), slice(block.col0, block.col0 + block.cols))
        labels = reference[window].ravel()
        candidate = (labels != NODATA_CLASS) & (block_observed >= config.min_observed_fraction)
        codes = np.where(candidate, FILTER_KEPT, FILTER_NOT_CANDIDATE).astype(np.uint8)
        for code, clusters in models.items():
            members = np.flatnonzero(candidate & (labels == code))
            if len(members):
                keeps = clusters.keeps(index_series(block_reflectance[members], cube.band_names))
                codes[members[~keeps]] = FILTER_REJECTED
        filter_grid[window] = codes.reshape(block.rows, block.cols)

    stats: dict[str, dict[str, Any]] = {}
    for code, n in present.items():
        of_class = filter_grid[reference == code]
        kept, rejected = int((of_class == FILTER_KEPT).sum()), int((of_class == FILTER_REJECTED).sum())
        stats[class_name(code)] = {
            "reference_pixels": n,
            "candidates": kept + rejected,
            "kept": kept,
            "rejected": rejected,
            "rejected_share": round(rejected / max(kept + rejected, 1), 4),
            "clustered": code in models,
            "cluster_sizes": list(models[code].sizes) if code in models else [],
            "kept_clusters": list(models[code].kept) if code in models else [],
        }
        log.info("%s: cluster filter %s: %s", context, class_name(code), stats[class_name(code)])
    return filter_grid, stats


def read_samples(
    cube: Cube,
    flat_index: np.ndarray,
    labels: np.ndarray,
    splits: np.ndarray,
    config: TrainsetConfig,
) -> Samples:
    """Reads the features of sampled pixels from a cube.

    Args:
        cube: The year's cube.
        flat_index: Sampled pixels as flat indices of the grid.
        labels: Class code per grid pixel (the sample labels).
        splits: Split per grid pixel (from :func:`~eo_tasks.trainset.sampling.block_splits`).
        config: The settings (``include_indices``, ``block_px``).

    Returns:
        The samples, features ``(samples, time, features)``.
    """
    cols = labels.shape[1]
    rows_of, cols_of = flat_index // cols, flat_index % cols
    reflectance, _ = read_pixels(cube, rows_of, cols_of, config.block_px)
    return Samples(
        features=pixel_features(reflectance, cube.band_names, config.include_indices),
        labels=labels.ravel()[flat_index].astype(np.uint8),
        year=np.full(len(flat_index), int(cube.attrs["year"]), dtype=np.int16),
        row=rows_of.astype(np.int32),
        col=cols_of.astype(np.int32),
        split=splits.ravel()[flat_index].astype(np.uint8),
    )


@dataclass(frozen=True)
class AnnualResult:
    """What the annual stage produced.

    Attributes:
        report: The JSON report (also written to ``paths.annual_report(year)``).
        cluster_filter: The filter grid (``FILTER_*`` codes), for evaluation against a known truth.
    """

    report: dict[str, Any]
    cluster_filter: np.ndarray


def build_annual(
    aoi: AOIConfig, cube_path: Path, paths: TrainingPaths, config: TrainsetConfig
) -> AnnualResult:
    """One year: cluster filter → stratified sample → random forest → preliminary map and quicklook.

    Writes the annual training set, the map (GeoTIFF), its PNG quicklook and the report. The forest
    is trained on the training split and scored on the held-out test blocks (against the filtered
    reference labels).

    Args:
        aoi: The AOI.
        cube_path: The year's datacube.
        paths: Where to read the reference and write the outputs.
        config: The settings.

    Returns:
        The report and the filter grid.

    Raises:
        ConfigError: The reference on disk does not match the cube's grid.
        EmptyTrainingSetError: No sample fell into the training split.
    """
    t0 = time.monotonic()
    cube = Cube.open(cube_path)
    year = int(cube.attrs["year"])
    context = f"{aoi.name} {year}"
    grid = cube_grid(cube)
    reference = _read_reference(paths, grid)
    splits = _splits(reference, config)
    filter_grid, filter_stats = cluster_filter(cube, reference, config, context)
    quotas = _quotas(reference, config)
    rng = np.random.default_rng([config.seed, year, 0x5A])
    drawn = stratified_sample(reference, (filter_grid == FILTER_KEPT) & (splits >= 0), quotas, rng, context)
    samples = read_samples(cube, drawn, reference, splits, config)
    summary = write_training_set(
        paths.annual_set(year), samples, _metadata(aoi, {year: cube}, config, {}), config.seed
    )

    t_forest = time.monotonic()
    train = samples.take(samples.split == SPLIT_TRAIN)
    model = train_forest(train.features, train.labels, config.forest_trees, config.seed)
    scored_classes = sorted(_class_pixels(reference))
    scores = {}
    for split in (SPLIT_VALIDATION, SPLIT_TEST):
        held_out = samples.take(samples.split == split)
        predicted = (
            model.predict(held_out.features.reshape(len(held_out), -1)) if len(held_out) else held_out.labels
        )
        scores[SPLIT_NAMES[split]] = accuracy_report(held_out.labels, predicted, scored_classes)
    forest_seconds = time.monotonic() - t_forest
    map_pixels = predict_map(model, cube, grid, paths.rf_map(year), config.include_indices, config.block_px)
    raster_quicklook(paths.rf_map(year), paths.rf_quicklook(year))

    per_class = _per_class_and_split(samples)
    report = {
        "aoi": aoi.name,
        "year": year,
        "cube": str(cube_path),
        "samples": summary["samples"],
        "splits": summary["splits"],
        "classes": {
            class_name(code): {
                **filter_stats[class_name(code)],
                "quota": quotas.get(code, 0),
                "samples": per_class.get(class_name(code), {}),
            }
            for code in scored_classes
        },
        "forest": {
            "trees": config.forest_trees,
            "features": int(np.prod(samples.features.shape[1:])),
            "train_samples": len(train),
            "seconds": round(forest_seconds, 2),
            **scores,
        },
        "rf_map": str(paths.rf_map(year)),
        "quicklook": str(paths.rf_quicklook(year)),
        "annual_set": str(paths.annual_set(year)),
        "map_pixels": {class_name(c): n for c, n in map_pixels.items()},
        "seconds": round(time.monotonic() - t0, 2),
    }
    write_json(paths.annual_report(year), report)
    test = scores["test"]
    log.info(
        "%s: %d samples (%s); RF test OA %s on %d held-out samples, F1 %s; map %s",
        context,
        summary["samples"],
        summary["splits"],
        test["overall_accuracy"],
        test["pixels"],
        test["f1"],
        paths.rf_map(year),
    )
    return AnnualResult(report=report, cluster_filter=filter_grid)
