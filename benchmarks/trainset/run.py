"""Training-set benchmark: how well the reference-map training sets and the RF baseline match the truth.

On a simulated archive (known land cover per year, known reference-map errors, known changes) it
runs the training-set stages exactly as the training DAG does (``prepare_reference`` →
``build_annual`` per year → ``build_multiyear``, default :class:`TrainsetConfig`) and measures:

- the cluster filter: the share of the reference's planted label errors (``reference_error == 1``)
  it keeps out of the candidates, and the share of correct pixels (``reference_error == 0``) it
  keeps in (also for boundary errors, ``== 2``), per year, and for a sweep of k;
- the label noise of the training sets: the share of sampled labels that differ from the true land
  cover of the sample's year, against the same share in the reference map;
- each year's random forest against the true land cover: overall accuracy and per-class F1 over
  the whole map and over the held-out test blocks only;
- agreement between the RF maps of consecutive years on pixels that did not change
  (``change_mask == 0``): the baseline that the deep models must beat.

    python benchmarks/trainset/run.py --out benchmarks/results/trainset.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import logging
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.classes import CLASSES

SWEEP_K = (2, 3, 4, 5)
# Besides the published method (k = 3, the dominant cluster only), the whole pipeline also runs with
# the platform's default (k = 6, keeping every cluster that holds 10 % of its class: classes have
# sub-types, e.g. deciduous and evergreen tree cover) and without the cluster filter (k = 1).
PUBLISHED = {"clusters": 3, "keep_cluster_share": 1.0}
VARIANTS = {
    "platform_default_k6_keep_share_0.1": {},
    "no_cluster_filter": {"clusters": 1, "keep_cluster_share": 1.0},
}


def machine() -> str:
    mem_kib = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, {mem_kib / 2**20:.0f} GiB RAM, {platform.platform()}"
    )


def simulate_archive(work: Path, size: int, s2: int, l8: int, years: list[int]) -> Path:
    from eo_simulator import ScenarioConfig, simulate

    root = work / "archive"
    if not (root / "catalog.json").exists():
        config = ScenarioConfig.from_dict(
            {"seed": 1, "width": size, "height": size, "years": years, "s2_per_year": s2, "l8_per_year": l8}
        )
        simulate(config, root, overwrite=True)
    return root


def build_cubes(archive: Path, work: Path, aoi: AOIConfig) -> dict[int, Path]:
    """One cube per year, as the preprocess DAG builds them (Dask LocalCluster)."""
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.core.scenes import SceneInput
    from eo_tasks.ingest.providers.base import SearchQuery
    from eo_tasks.ingest.providers.stac import LocalArchiveProvider
    from eo_tasks.preprocess.cluster import dask_client
    from eo_tasks.preprocess.datacube import CubeSpec, build_cube

    provider = LocalArchiveProvider(str(archive / "catalog.json"))
    cubes = {}
    last = aoi.last_year or aoi.first_year
    with dask_client() as client:
        for year in range(aoi.first_year, last + 1):
            path = work / "cubes" / f"{aoi.name}_{year}.h5"
            cubes[year] = path
            if path.exists():
                continue
            query = SearchQuery.calendar_year(aoi.grid.footprint_wgs84(), year)
            scenes = [SceneInput.in_place(r) for r in provider.search(query)]
            spec = CubeSpec(
                aoi=aoi.name, grid=aoi.grid, year=year, calendar=Calendar(aoi.composites_per_year)
            )
            build_cube(scenes, spec, path, client=client)
    return cubes


def filter_figures(filter_grid: np.ndarray, reference_error: np.ndarray) -> dict[str, Any]:
    """What the cluster filter did to correct pixels, planted errors and boundary errors."""
    from eo_tasks.trainset.pipeline import FILTER_KEPT, FILTER_REJECTED

    candidates = filter_grid > 0
    figures: dict[str, Any] = {}
    for name, code in (("correct", 0), ("planted_error", 1), ("boundary_error", 2)):
        pool = candidates & (reference_error == code)
        figures[name] = {
            "candidates": int(pool.sum()),
            "kept_in": round(float((filter_grid[pool] == FILTER_KEPT).mean()), 4),
            "kept_out": round(float((filter_grid[pool] == FILTER_REJECTED).mean()), 4),
        }
    kept = filter_grid == FILTER_KEPT
    figures["planted_error_share_before"] = round(float((reference_error[candidates] == 1).mean()), 4)
    figures["planted_error_share_after"] = round(float((reference_error[kept] == 1).mean()), 4)
    figures["wrong_label_share_before"] = round(float((reference_error[candidates] > 0).mean()), 4)
    figures["wrong_label_share_after"] = round(float((reference_error[kept] > 0).mean()), 4)
    return figures


def label_noise(path: Path, truth: dict[int, np.ndarray]) -> dict[str, float]:
    """Share of a training set's labels that differ from the true land cover of their year."""
    from eo_tasks.trainset import read_training_set

    samples, _ = read_training_set(path)
    noise = {}
    for year, cover in truth.items():
        of_year = samples.year == year
        if of_year.any():
            wrong = samples.labels[of_year] != cover[samples.row[of_year], samples.col[of_year]]
            noise[str(year)] = round(float(wrong.mean()), 4)
    return noise


@dataclass(frozen=True)
class Truth:
    """The simulator's answers on the AOI grid."""

    reference: np.ndarray  # platform classes
    reference_error: np.ndarray  # 0 correct, 1 planted, 2 boundary
    landcover: dict[int, np.ndarray]
    unchanged: np.ndarray  # change_mask == 0


def rf_figures(maps: dict[int, np.ndarray], splits: np.ndarray, truth: Truth) -> dict[str, Any]:
    """RF maps against the true land cover, and their agreement between consecutive years."""
    from eo_tasks.trainset import accuracy_report

    codes = [c.code for c in CLASSES]
    figures: dict[str, Any] = {"per_year": {}, "inter_year_agreement": {}}
    for year, classes in maps.items():
        mapped = classes > 0
        test = mapped & (splits == 2)
        figures["per_year"][str(year)] = {
            "whole_map": accuracy_report(truth.landcover[year][mapped], classes[mapped], codes),
            "test_blocks": accuracy_report(truth.landcover[year][test], classes[test], codes),
        }
    for a, b in itertools.pairwise(sorted(maps)):
        stable = (maps[a] > 0) & (maps[b] > 0) & truth.unchanged
        figures["inter_year_agreement"][f"{a}-{b}"] = {
            "unchanged_pixels": int(stable.sum()),
            "rf_agreement": round(float((maps[a] == maps[b])[stable].mean()), 4),
        }
    return figures


def run_config(
    aoi: AOIConfig, cubes: dict[int, Path], work: Path, config: Any, truth: Truth
) -> dict[str, Any]:
    """The training-set stages with one configuration, and every figure measured on them."""
    from eo_tasks.core.raster import read_raster
    from eo_tasks.trainset import (
        TrainingPaths,
        block_splits,
        build_annual,
        build_multiyear,
        prepare_reference,
    )

    t0 = time.monotonic()
    paths = TrainingPaths(work)
    prepare_reference(aoi, paths)
    annual = {year: build_annual(aoi, path, paths, config) for year, path in cubes.items()}
    multi = build_multiyear(aoi, cubes, paths, config)
    seconds = time.monotonic() - t0
    splits = block_splits(
        (truth.reference.shape[0], truth.reference.shape[1]),
        config.split_block_px,
        config.split_fractions,
        config.split_buffer_px,
        config.seed,
        labels=truth.reference,
    )
    maps = {year: read_raster(paths.rf_map(year)) for year in cubes}
    per_year = {}
    for year, result in annual.items():
        report = result.report
        per_year[str(year)] = {
            "cluster_filter": filter_figures(result.cluster_filter, truth.reference_error),
            "annual_set_label_noise": label_noise(paths.annual_set(year), {year: truth.landcover[year]})[
                str(year)
            ],
            "rf_test_samples_vs_filtered_reference": report["forest"]["test"],
            "samples_per_class": {name: c["samples"] for name, c in report["classes"].items()},
            "rejected_per_class": {name: c["rejected"] for name, c in report["classes"].items()},
            "seconds": report["seconds"],
            "forest_seconds": report["forest"]["seconds"],
        }
    return {
        "config": config.to_dict(),
        "per_year": per_year,
        "rf_vs_truth": rf_figures(maps, splits, truth),
        "multiyear": {
            "samples": multi["samples"],
            "splits": multi["splits"],
            "unchanged_share_of_reference": multi["unchanged_share"],
            "label_noise": label_noise(paths.trainset, truth.landcover),
            "samples_per_class_and_year": multi["samples_per_class_and_year"],
        },
        "seconds": round(seconds, 1),
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one configuration."""
    years, rf = result["per_year"], result["rf_vs_truth"]
    return {
        "planted_error_kept_out": {
            y: r["cluster_filter"]["planted_error"]["kept_out"] for y, r in years.items()
        },
        "correct_kept_in": {y: r["cluster_filter"]["correct"]["kept_in"] for y, r in years.items()},
        "annual_set_label_noise": {y: r["annual_set_label_noise"] for y, r in years.items()},
        "rf_oa_whole_map": {y: r["whole_map"]["overall_accuracy"] for y, r in rf["per_year"].items()},
        "rf_oa_test_blocks": {y: r["test_blocks"]["overall_accuracy"] for y, r in rf["per_year"].items()},
        "rf_agreement_unchanged": {k: v["rf_agreement"] for k, v in rf["inter_year_agreement"].items()},
        "multiyear_label_noise": result["multiyear"]["label_noise"],
        "seconds": result["seconds"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=256, help="AOI width/height in 10 m pixels")
    parser.add_argument("--years", type=int, nargs="+", default=[2021, 2022])
    parser.add_argument("--s2", type=int, default=24, help="Sentinel-2 scenes per year")
    parser.add_argument("--l8", type=int, default=12, help="Landsat-8 scenes per year")
    parser.add_argument("--work", type=Path, default=Path("/tmp/eo-bench-trainset"), help="scratch (reused)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/trainset.json"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(levelname)s %(message)s")

    from eo_tasks.core.cube import Cube
    from eo_tasks.core.raster import read_raster
    from eo_tasks.trainset import TrainsetConfig, cluster_filter, reference_on_grid

    t0 = time.monotonic()
    archive = simulate_archive(args.work, args.size, args.s2, args.l8, args.years)
    aoi = AOIConfig.load(archive / "aoi.yaml")
    t_sim = time.monotonic()
    cubes = build_cubes(archive, args.work, aoi)
    t_cubes = time.monotonic()

    truth = Truth(
        reference=reference_on_grid(aoi.reference.path, aoi.reference.legend, aoi.grid),
        reference_error=read_raster(archive / "truth" / "reference_error.tif"),
        landcover={year: read_raster(archive / "truth" / f"landcover_{year}.tif") for year in cubes},
        unchanged=read_raster(archive / "truth" / "change_mask.tif") == 0,
    )
    labelled = truth.reference > 0
    default = run_config(aoi, cubes, args.work / "training", TrainsetConfig.from_dict(PUBLISHED), truth)
    t_default = time.monotonic()
    variants = {}
    for name, overrides in VARIANTS.items():
        config = TrainsetConfig.from_dict(overrides)
        variants[name] = summary(run_config(aoi, cubes, args.work / f"training_{name}", config, truth))

    first_year = min(cubes)
    sweep: dict[str, Any] = {}
    for k in SWEEP_K:
        grid, _ = cluster_filter(
            Cube.open(cubes[first_year]),
            truth.reference,
            TrainsetConfig(clusters=k, keep_cluster_share=1.0),
            "sweep",
        )
        figures = filter_figures(grid, truth.reference_error)
        sweep[str(k)] = {
            "planted_error_kept_out": figures["planted_error"]["kept_out"],
            "correct_kept_in": figures["correct"]["kept_in"],
            "boundary_error_kept_out": figures["boundary_error"]["kept_out"],
            "wrong_label_share_after": figures["wrong_label_share_after"],
        }

    result: dict[str, Any] = {
        "what": "training sets from the reference map + per-year random forest, on the simulator's archive",
        "scenario": {
            "size_px": args.size,
            "years": sorted(cubes),
            "s2_per_year": args.s2,
            "l8_per_year": args.l8,
            "composites_per_year": aoi.composites_per_year,
            "seed": 1,
        },
        "reference_wrong_share": {
            str(y): round(float((truth.reference != truth.landcover[y])[labelled].mean()), 4) for y in cubes
        },
        "reference_planted_error_share": round(float((truth.reference_error[labelled] == 1).mean()), 4),
        "published_method": {"config": PUBLISHED, "summary": summary(default), **default},
        "variants": {"configs": VARIANTS, "summaries": variants},
        "cluster_filter_k_sweep": {"year": first_year, "keep": "dominant cluster only", "by_k": sweep},
        "seconds": {
            "simulate": round(t_sim - t0, 1),
            "cubes": round(t_cubes - t_sim, 1),
            "training_sets_and_rf_maps_published": round(t_default - t_cubes, 1),
            "total": round(time.monotonic() - t0, 1),
        },
        "machine": machine(),
        "python": platform.python_version(),
        "date": dt.date.today().isoformat(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(
        json.dumps(
            {
                "summary": result["published_method"]["summary"],
                "variants": variants,
                "sweep": sweep,
                "seconds": result["seconds"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
