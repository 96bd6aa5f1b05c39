"""Preprocessing benchmark: the same scenes to the same grid and calendar, three ways, in one run.

(a) this pipeline (``eo_tasks.preprocess.datacube.build_cube`` on a Dask LocalCluster), (b) odc-stac
(``odc.stac.load`` + mask/scale + a median per calendar window, written to HDF5) — what a user
would otherwise pick —, and (c) bare GDAL warping of the same bands alone (``gdal.Warp`` with
``multithread=True`` and ``NUM_THREADS=ALL_CPUS``, i.e. ``gdalwarp -multi -wo NUM_THREADS=ALL_CPUS``),
the floor for the warping cost.

Each method runs in its own process; the parent samples the resident memory of that process tree.
Throughput is Mpixel·bands/s: scenes × reflectance bands × AOI pixels, over wall-clock seconds.

    python benchmarks/preprocess/run.py --size 512 --s2 24 --l8 12 --out benchmarks/results/preprocess.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
METHODS = ("pipeline", "odc-stac", "gdalwarp")


# --- inputs -----------------------------------------------------------------------------------
def load_inputs(archive: Path) -> tuple[Any, list[Any], list[Any]]:
    """The AOI, the scenes as the pipeline reads them, and the pystac items (for odc-stac)."""
    import datetime as dt

    import pystac

    from eo_tasks.core.aoi import AOIConfig
    from eo_tasks.core.scenes import SceneInput
    from eo_tasks.ingest.providers.base import SearchQuery
    from eo_tasks.ingest.providers.stac import LocalArchiveProvider

    aoi = AOIConfig.load(archive / "aoi.yaml")
    query = SearchQuery(
        bbox=aoi.grid.footprint_wgs84(),
        start=dt.datetime(aoi.first_year, 1, 1, tzinfo=dt.UTC),
        end=dt.datetime(aoi.first_year + 1, 1, 1, tzinfo=dt.UTC),
        collections=("sentinel-2-l2a", "landsat-c2-l2"),
    )
    records = list(LocalArchiveProvider(str(archive / "catalog.json")).search(query))
    scenes = [SceneInput.in_place(r) for r in records]
    catalog = pystac.Catalog.from_file(str(archive / "catalog.json"))
    ids = {r.id for r in records}
    items = [i for i in catalog.get_items(recursive=True) if i.id in ids]
    return aoi, scenes, items


def work_units(scenes: list[Any], pixels: int) -> float:
    """Mpixel·bands of reflectance the methods warp: scenes × their reflectance bands × AOI pixels."""
    bands = sum(10 if s.sensor == "S2" else 6 for s in scenes)
    return bands * pixels / 1e6


# --- (a) this pipeline ---------------------------------------------------------------------------
def run_pipeline(archive: Path, out: Path, workers: int) -> dict[str, float]:
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.preprocess.cluster import dask_client
    from eo_tasks.preprocess.datacube import CubeSpec, build_cube

    aoi, scenes, _ = load_inputs(archive)
    spec = CubeSpec(
        aoi=aoi.name, grid=aoi.grid, year=aoi.first_year, calendar=Calendar(aoi.composites_per_year)
    )
    t0 = time.monotonic()
    with dask_client(workers) as client:
        t1 = time.monotonic()
        build_cube(scenes, spec, out / "pipeline.h5", client=client)
        t2 = time.monotonic()
    return {"seconds": t2 - t0, "seconds_without_cluster_start": t2 - t1}


# --- (b) odc-stac --------------------------------------------------------------------------------
def run_odc(archive: Path, out: Path, workers: int) -> dict[str, float]:
    import h5py
    import xarray as xr
    from odc.geo.geobox import GeoBox
    from odc.stac import load

    from eo_tasks.core.calendar import Calendar
    from eo_tasks.core.scenes import boa_offset_to_remove
    from eo_tasks.preprocess.cluster import dask_client
    from eo_tasks.preprocess.harmonize import HLS_MSI_TO_OLI
    from eo_tasks.preprocess.scene_prep import CUBE_BANDS, QA_INVALID_BITS, SCL_INVALID

    aoi, _, items = load_inputs(archive)
    calendar = Calendar(aoi.composites_per_year)
    xmin, ymin, xmax, ymax = aoi.grid.bounds
    geobox = GeoBox.from_bbox(
        (xmin, ymin, xmax, ymax), crs=f"EPSG:{aoi.grid.epsg}", resolution=aoi.grid.resolution
    )
    s2_items = [i for i in items if i.collection_id == "sentinel-2-l2a"]
    l8_items = [i for i in items if i.collection_id == "landsat-c2-l2"]
    chunks = {"x": 256, "y": 256}
    t0 = time.monotonic()
    with dask_client(workers):
        t1 = time.monotonic()
        s2 = load(
            s2_items,
            bands=[*CUBE_BANDS, "scl"],
            geobox=geobox,
            chunks=chunks,
            groupby="id",
            resampling={"*": "bilinear", "scl": "nearest"},
        )
        offsets = xr.DataArray(
            [boa_offset_to_remove(i.properties) for i in s2_items], dims="time", coords={"time": s2.time}
        )
        s2_valid = ~s2.scl.isin(list(SCL_INVALID))
        s2_refl = xr.concat(
            [((s2[b] - offsets) * 1e-4).where((s2[b] > 0) & s2_valid) for b in CUBE_BANDS], dim="band"
        )
        landsat_bands = list(HLS_MSI_TO_OLI)
        l8 = load(
            l8_items,
            bands=[*landsat_bands, "qa_pixel"],
            geobox=geobox,
            chunks=chunks,
            groupby="id",
            resampling={"*": "bilinear", "qa_pixel": "nearest"},
        )
        mask = sum(1 << bit for bit in QA_INVALID_BITS)
        l8_valid = (l8.qa_pixel & mask) == 0
        per_band = []
        for b in CUBE_BANDS:
            if b in HLS_MSI_TO_OLI:
                slope, offset = HLS_MSI_TO_OLI[b]
                refl = ((l8[b] * 2.75e-5 - 0.2 - offset) / slope).where((l8[b] > 0) & l8_valid)
            else:
                refl = xr.full_like(l8_valid, np.nan, dtype="float32")
            per_band.append(refl)
        l8_refl = xr.concat(per_band, dim="band")
        both = xr.concat([s2_refl.astype("float32"), l8_refl.astype("float32")], dim="time")
        windows = [calendar.window_of(t.date()) for t in both.time.to_index()]
        both = both.assign_coords(window=("time", windows))
        medians = both.groupby("window").median("time").transpose("window", "y", "x", "band").compute()
        with h5py.File(out / "odc.h5", "w") as f:
            f.create_dataset(
                "reflectance", data=medians.values, chunks=True, compression="gzip", compression_opts=4
            )
        t2 = time.monotonic()
    return {"seconds": t2 - t0, "seconds_without_cluster_start": t2 - t1}


# --- (c) bare GDAL warping -----------------------------------------------------------------------
def run_gdalwarp(archive: Path, out: Path, workers: int) -> dict[str, float]:
    from osgeo import gdal

    from eo_tasks.preprocess.scene_prep import CUBE_BANDS

    gdal.UseExceptions()
    aoi, scenes, _ = load_inputs(archive)
    rows, cols = aoi.grid.shape
    t0 = time.monotonic()
    for scene in scenes:
        for band in CUBE_BANDS:
            if band not in scene.files:
                continue
            gdal.Warp(
                str(out / f"{scene.id}_{band}.tif"),
                scene.files[band],
                outputBounds=aoi.grid.bounds,
                width=cols,
                height=rows,
                dstSRS=f"EPSG:{aoi.grid.epsg}",
                resampleAlg="bilinear",
                multithread=True,
                warpOptions=["NUM_THREADS=ALL_CPUS"],
            )
    return {"seconds": time.monotonic() - t0}


# --- driver --------------------------------------------------------------------------------------
def measure(method: str, archive: Path, workers: int) -> dict[str, Any]:
    """Runs one method in a child process, sampling the memory of its process tree."""
    from benchmarks.machine import peak_tree_rss

    with tempfile.TemporaryDirectory(prefix=f"bench-{method}-") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [
            sys.executable,
            str(HERE),
            "--child",
            method,
            "--archive",
            str(archive),
            "--workers",
            str(workers),
            "--result",
            str(result_file),
            "--scratch",
            tmp,
        ]
        child = subprocess.Popen(cmd)
        with peak_tree_rss(child.pid) as peak:
            code = child.wait()
        if code != 0:
            raise SystemExit(f"{method} failed with exit code {code}")
        result = json.loads(result_file.read_text())
    result["peak_rss_mb"] = peak[0] / 2**20
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=512, help="AOI width/height in 10 m pixels")
    parser.add_argument("--s2", type=int, default=24, help="Sentinel-2 scenes in the year")
    parser.add_argument("--l8", type=int, default=12, help="Landsat-8 scenes in the year")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--archive", type=Path, help="reuse a simulated archive")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/preprocess.json"))
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        runner = {"pipeline": run_pipeline, "odc-stac": run_odc, "gdalwarp": run_gdalwarp}[args.child]
        args.result.write_text(json.dumps(runner(args.archive, args.scratch, args.workers)))
        return

    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        archive = args.archive
        if archive is None:
            from eo_simulator import ScenarioConfig, simulate

            archive = Path(tmp) / "archive"
            config = ScenarioConfig.from_dict(
                {
                    "seed": 7,
                    "width": args.size,
                    "height": args.size,
                    "years": [2022],
                    "s2_per_year": args.s2,
                    "l8_per_year": args.l8,
                }
            )
            t0 = time.monotonic()
            simulate(config, archive)
            seconds = time.monotonic() - t0
            print(f"simulated {args.size}x{args.size} px, {args.s2} S2 + {args.l8} L8 in {seconds:.1f}s")
        aoi, scenes, _ = load_inputs(archive)
        units = work_units(scenes, aoi.grid.shape[0] * aoi.grid.shape[1])
        results: dict[str, Any] = {}
        for method in METHODS:
            r = measure(method, archive, args.workers)
            r["mpixel_bands_per_s"] = units / r["seconds"]
            results[method] = r
            print(
                f"{method:9s} {r['seconds']:7.1f} s  {r['mpixel_bands_per_s']:7.1f} Mpx·bands/s  "
                f"peak {r['peak_rss_mb']:7.0f} MB"
            )
    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "aoi_pixels": aoi.grid.shape[0] * aoi.grid.shape[1],
        "scenes": {"S2": sum(s.sensor == "S2" for s in scenes), "L8": sum(s.sensor == "L8" for s in scenes)},
        "mpixel_bands": units,
        "workers": args.workers,
        "results": results,
        "pipeline_vs_odc_stac": results["odc-stac"]["seconds"] / results["pipeline"]["seconds"],
        "pipeline_vs_gdalwarp": results["pipeline"]["seconds"] / results["gdalwarp"]["seconds"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parents[2]))
    main()
