"""Scale benchmark: time and peak memory of every map and cube stage as the AOI grows.

For each stage and AOI size (default 256² … 2048² px) a fresh Python process loads the stage's
inputs from disk, notes its peak resident memory (``ru_maxrss``), runs the stage and notes it
again: the difference is the memory the stage added. The growth exponents are the slopes of
log(figure) against log(pixels); the extrapolation takes the largest size to one Sentinel-2
tile-year (10,980² ≈ 1.2e8 px, 24 composites a year, ``w`` = 15 → 34 window positions) and to a
10-tile region on a node of 256 GB and 64 cores. The machine is shared: the 1-minute load average
is recorded with every figure.

Inputs are demo-like: a previous map of class patches, clearings of every size (many across block
edges) from random positions on, seasonal snow, 3 % isolated misclassifications; cubes for the
dating stage are synthetic HDF5 files with a break in the changed regions; cube building runs the
simulator's archive through ``build_cube`` on the local Dask cluster.

    python benchmarks/scale/run.py --out benchmarks/results/scale.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parents[2]))

TILE_PX = 10_980**2
REGION_TILES, NODE_GB, NODE_CORES = 10, 256, 64
W, PER_YEAR, BLOCK = 15, 24, 256
POSITIONS = 2 * PER_YEAR - W + 1
DATES = [dt.date(2021, 1, 8) + dt.timedelta(days=(365 * k) // PER_YEAR) for k in range(2 * PER_YEAR)]
GRASS, TREE, BARE, SNOW, WATER = 3, 4, 6, 7, 8


def _grid(size: int) -> Any:
    from eo_tasks.core.grid import GridSpec

    return GridSpec(
        epsg=32632, bounds=(600000.0, 5100000.0, 600000.0 + 10 * size, 5100000.0 + 10 * size), resolution=10.0
    )


# --- inputs (made by the parent, not measured) -------------------------------------------------
def make_labels(size: int, work: Path) -> None:
    """The inference job's block files and the previous year's map."""
    from eo_tasks.core.grid import blocks
    from eo_tasks.maps.infer import BLOCK_FILE, write_block

    rng = np.random.default_rng(size)
    cells = size // 32 + 1
    previous = np.repeat(np.repeat(rng.choice([GRASS, TREE, BARE], (cells, cells)), 32, 0), 32, 1)[
        :size, :size
    ]
    previous = previous.astype(np.uint8)
    start = np.full((size, size), 10_000, np.int16)  # window position where the clearing shows
    new_class = np.zeros((size, size), np.uint8)
    for _ in range(size * size // 2000):  # ~one clearing per 2,000 px: 8 to 40 px sides
        r, c = rng.integers(0, size, 2)
        h, w = rng.integers(8, 40, 2)
        start[r : r + h, c : c + w] = rng.integers(3, POSITIONS - 8)
        new_class[r : r + h, c : c + w] = rng.choice([BARE, GRASS, WATER])
    snow_rows = rng.integers(0, size, size // 16)
    attrs = {"window": W, "model_id": "bench", "composite_dates": json.dumps([d.isoformat() for d in DATES])}
    out = work / "labels"
    out.mkdir(parents=True, exist_ok=True)
    steps = np.arange(POSITIONS)[:, None, None]
    for block in blocks(_grid(size), BLOCK):
        window = (slice(block.row0, block.row0 + block.rows), slice(block.col0, block.col0 + block.cols))
        prev = previous[window]
        labels = np.where(steps >= start[window], new_class[window], prev).astype(np.uint8)
        snowy = np.isin(np.arange(block.row0, block.row0 + block.rows), snow_rows)
        labels[5:9, snowy] = SNOW
        labels[27:31, snowy] = SNOW
        noise = rng.random(labels.shape) < 0.03
        labels[noise] = rng.choice([GRASS, TREE, BARE], int(noise.sum()))
        annual = labels[-1].copy()
        arrays = {"labels": labels, "confidence": np.full(labels.shape, 90, np.uint8), "annual": annual}
        write_block(out / BLOCK_FILE.format(row0=block.row0, col0=block.col0), arrays, attrs)
    np.save(work / "previous.npy", previous)


def make_evaluation_inputs(size: int, work: Path) -> None:
    """Truth, map, change and baseline COGs from the analysis stage's result."""
    from eo_tasks.maps.outputs import write_change_cog, write_class_cog

    grid, r = _grid(size), np.load(work / "result.npz")
    truth = work / "truth"
    truth.mkdir(exist_ok=True)
    write_class_cog(truth / "landcover_2021.tif", r["from_class"], grid)
    write_class_cog(truth / "landcover_2022.tif", r["classes"], grid)
    write_change_cog(truth / "change_date.tif", r["change_days"], r["from_class"], r["to_class"], grid)
    write_class_cog(work / "map_2021.tif", r["from_class"], grid)
    write_class_cog(work / "map_2022.tif", r["classes"], grid)
    write_change_cog(work / "changes_2022.tif", r["change_days"], r["from_class"], r["to_class"], grid)


def make_cubes(size: int, work: Path) -> None:
    """Two synthetic cubes (one a year): constant-ish reflectance, a drop where the labels changed."""
    import h5py

    from eo_tasks.core.raster import srs_wkt
    from eo_tasks.preprocess.scene_prep import CUBE_BANDS

    r = np.load(work / "result.npz")
    changed, composite = r["changed"], r["change_composite"]
    grid, nb = _grid(size), len(CUBE_BANDS)
    for year in (0, 1):
        with h5py.File(work / f"cube_{year}.h5", "w") as f:
            refl = f.create_dataset(
                "reflectance",
                (PER_YEAR, size, size, nb),
                "i2",
                chunks=(PER_YEAR, 64, 64, nb),
                compression="gzip",
                compression_opts=1,
                shuffle=True,
            )
            valid = f.create_dataset(
                "valid", (PER_YEAR, size, size), "u1", chunks=(PER_YEAR, 64, 64), compression="gzip"
            )
            for r0 in range(0, size, BLOCK):
                rows = slice(r0, r0 + BLOCK)
                t = np.arange(PER_YEAR)[:, None, None] + year * PER_YEAR
                dropped = changed[rows][None] & (t >= composite[rows][None])
                band = np.where(dropped, 800, 3000).astype(np.int16)
                refl[:, rows] = np.repeat(band[..., None], nb, axis=-1)
                valid[:, rows] = 1
            f.create_dataset(
                "dates", data=[d.isoformat().encode() for d in DATES[year * PER_YEAR : (year + 1) * PER_YEAR]]
            )
            f.attrs.update(
                {"band_names": list(CUBE_BANDS), "epsg": grid.epsg, "geotransform": grid.geotransform}
            )
            f.attrs["crs_wkt"] = srs_wkt(grid.epsg)


def make_archive(size: int, work: Path) -> None:
    """A simulated scene archive for the cube-building stage."""
    from eo_simulator import ScenarioConfig, simulate

    config = {"seed": 3, "width": size, "height": size, "years": [2022], "s2_per_year": 8, "l8_per_year": 4}
    simulate(ScenarioConfig.from_dict(config), work / "archive", overwrite=True)


# --- stages (run in a fresh child process) -------------------------------------------------------
def stage_read_labels(size: int, work: Path) -> dict[str, Any]:
    from eo_tasks.maps.annual_maps import read_labels

    series = read_labels(work / "labels", _grid(size), BLOCK)
    return {"positions_read": sum(series.read(b).shape[0] for b in series.tiles)}


def stage_analysis(size: int, work: Path) -> dict[str, Any]:
    from eo_tasks.core.aoi_sections import ChangeParams
    from eo_tasks.maps.annual_maps import next_year_map, read_labels

    previous = np.load(work / "previous.npy")
    inputs_loaded()
    series = read_labels(work / "labels", _grid(size), BLOCK)
    result = next_year_map(series, previous, ChangeParams(window=W))
    outputs = {
        k: getattr(result, k)
        for k in ("classes", "changed", "from_class", "to_class", "change_days", "change_composite")
    }
    return {
        "changed_px": int(result.changed.sum()),
        "outputs_mb": sum(a.nbytes for a in outputs.values()) / 2**20,
        "_save": outputs,
    }


def stage_dating(size: int, work: Path, workers: int = 1) -> dict[str, Any]:
    from eo_tasks.core.aoi_sections import ChangeParams
    from eo_tasks.core.cube import Cube
    from eo_tasks.maps.annual_maps import YearResult
    from eo_tasks.maps.region_dating import refine_dates

    r = np.load(work / "result.npz")
    result = YearResult(
        **{
            k: r[k]
            for k in ("classes", "changed", "from_class", "to_class", "change_days", "change_composite")
        }
    )
    cubes = [Cube.open(work / f"cube_{y}.h5") for y in (0, 1)]
    inputs_loaded()
    scale = np.full(len(cubes[0].band_names), 0.1, np.float32)
    refined, _ = refine_dates(result, cubes, scale, False, ChangeParams(window=W), workers=workers)
    return {"moved_px": int((refined.change_composite != result.change_composite).sum()), "workers": workers}


def stage_dating_parallel(size: int, work: Path) -> dict[str, Any]:
    """The dating stage in one worker process per core (``maps.dating_workers``), blocks spread over them.

    ``tree_peak_rss_mb``: the largest resident memory of this process and its workers together,
    sampled every 50 ms (the workers are not in this process's ``VmHWM``).
    """
    from benchmarks.machine import peak_tree_rss

    with peak_tree_rss(os.getpid()) as peak:
        figures = stage_dating(size, work, workers=os.cpu_count() or 1)
    return {**figures, "tree_peak_rss_mb": round(peak[0] / 2**20, 1)}


def stage_candidates(size: int, work: Path, year_before: bool = False) -> dict[str, Any]:
    """The lasting-anomaly candidates (platform rules) of the map year against the previous one.

    With ``year_before``, the previous year's late changes are looked for again too: a third cube
    is read and compared block by block. It is the first cube read a second time (the same reads
    and arithmetic as the year before's own cube).
    """
    from eo_tasks.core.cube import Cube
    from eo_tasks.maps.spectral_changes import lasting_anomaly_candidates

    previous = np.load(work / "previous.npy")
    cubes = [Cube.open(work / f"cube_{y}.h5") for y in (0, 1)]
    inputs_loaded()
    scale = np.full(len(cubes[0].band_names), 0.1, np.float32)
    before = cubes[0] if year_before else None
    found = lasting_anomaly_candidates(cubes, scale, False, previous, year_before=before)[0]
    return {"candidate_px": int(found.sum()), "year_before": year_before}


def stage_candidates_year_before(size: int, work: Path) -> dict[str, Any]:
    """:func:`stage_candidates` with the year before the previous one (three cubes read)."""
    return stage_candidates(size, work, year_before=True)


def cubes_once(size: int, work: Path) -> None:
    """:func:`make_cubes`, unless an earlier stage of this size wrote them."""
    if not (work / "cube_1.h5").is_file():
        make_cubes(size, work)


def stage_change_regions(size: int, work: Path) -> dict[str, Any]:
    from eo_tasks.maps.outputs import change_regions

    r = dict(np.load(work / "result.npz"))
    inputs_loaded()
    regions = change_regions(r["changed"], r["from_class"], r["to_class"], r["change_days"], _grid(size))
    return {"regions": len(regions)}


def stage_class_areas(size: int, work: Path) -> dict[str, Any]:
    from eo_tasks.maps.outputs import class_areas

    classes = np.load(work / "result.npz")["classes"]
    inputs_loaded()
    return {"hectares": round(sum(class_areas(classes, 10.0).values()), 1)}


def stage_evaluation(size: int, work: Path) -> dict[str, Any]:
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.maps.evaluate import Truth, evaluate_aoi

    maps = {y: work / f"map_{y}.tif" for y in (2021, 2022)}
    report = evaluate_aoi(
        maps,
        {2022: work / "changes_2022.tif"},
        {"same": maps},
        Truth.load(work / "truth"),
        Calendar(PER_YEAR),
    )
    return {"f1": report["methods"][0]["change"]["f1"]}


def stage_cube(size: int, work: Path) -> dict[str, Any]:
    from benchmarks.preprocess.run import load_inputs
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.preprocess.cluster import dask_client
    from eo_tasks.preprocess.datacube import CubeSpec, build_cube

    aoi, scenes, _ = load_inputs(work / "archive")
    spec = CubeSpec(aoi=aoi.name, grid=aoi.grid, year=2022, calendar=Calendar(PER_YEAR), block_size=128)
    workers = min(2, os.cpu_count() or 1)
    with dask_client(workers) as client:
        t0 = time.monotonic()
        report = build_cube(scenes, spec, work / "cube.h5", client=client)
        seconds = time.monotonic() - t0
        worker_peak = max(client.run(vm_hwm_mb).values())
    return {
        "blocks": report.blocks,
        "workers": workers,
        "blocks_per_s_per_worker": report.blocks / seconds / workers,
        "seconds_without_cluster_start": seconds,
        "largest_worker_peak_rss_mb": worker_peak,
    }


def stage_infer_device(size: int, work: Path) -> dict[str, Any]:
    """The PyTorch device path against the numpy path on one block (CPU only here: no GPU was lent)."""
    import torch

    from eo_tasks.maps.infer import sliding_window_predict
    from eo_tasks.models import ModelSpec, Predictor
    from eo_tasks.models.torch_models import build_model, load_forward, load_window_labeller

    torch.set_num_threads(1)
    spec = ModelSpec("lstm", 10, 9, layers=2, hidden=64)
    torch.save(build_model(spec).state_dict(), work / "model.pt")
    card = {
        "normalization": {"mean": [0.0] * 10, "std": [1.0] * 10},
        "classes": [{"code": c} for c in range(1, 10)],
    }
    series = np.random.default_rng(0).normal(size=(2 * PER_YEAR, size * size, 10)).astype(np.float32)
    predictor = Predictor(card, load_forward(work / "model.pt", spec))
    codes = np.arange(1, 10, dtype=np.uint8)
    t0 = time.perf_counter()
    old, _ = sliding_window_predict(series, W, lambda b: predictor(b, batch_size=65536), codes)
    t1 = time.perf_counter()
    new, _ = load_window_labeller(work / "model.pt", spec, card, device="cpu")(series, W, 65536)
    t2 = time.perf_counter()
    windows = old.size
    return {
        "model": "LSTM 2 x 64, 10 features, 9 classes, one thread",
        "pixel_windows": windows,
        "numpy_path_windows_per_s": round(windows / (t1 - t0)),
        "device_path_windows_per_s": round(windows / (t2 - t1)),
        "labels_identical": bool((old == new).all()),
        "gpu": "unmeasured (no GPU machine was lent to this task)",
    }


STAGES = {
    "read_labels": (stage_read_labels, None),
    "analysis": (stage_analysis, None),
    "dating": (stage_dating, make_cubes),
    "dating_parallel": (stage_dating_parallel, make_cubes),
    "candidates": (stage_candidates, cubes_once),
    "candidates_year_before": (stage_candidates_year_before, cubes_once),
    "change_regions": (stage_change_regions, None),
    "class_areas": (stage_class_areas, None),
    "evaluation": (stage_evaluation, make_evaluation_inputs),
    "cube": (stage_cube, make_archive),
    "infer_device": (stage_infer_device, None),
}
COMPUTE_STAGES = {"infer_device"}  # run by the compute environment's interpreter (PyTorch)


_MARK: dict[str, float] = {}


def inputs_loaded() -> None:
    """Called by a stage once its inputs are in memory: its figures count from here."""
    _MARK.update(hwm=vm_hwm_mb(), t=time.perf_counter())


def vm_hwm_mb() -> float:
    """This process's peak resident memory (``VmHWM``), in MiB.

    Not ``ru_maxrss``: Linux carries the parent's peak into a child across fork and exec, so a
    child of a large parent would report the parent's figure.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(stage: str, size: int, work: Path) -> None:
    """Runs one stage and prints its figures (memory in MiB above the process's peak before it)."""
    if stage in COMPUTE_STAGES:  # imports are part of the baseline, not the stage
        import torch  # noqa: F401

        import eo_tasks.maps.infer
    else:
        import h5py  # noqa: F401
        import scipy.ndimage
        import scipy.sparse.csgraph  # noqa: F401
        from osgeo import gdal, gdal_array, ogr  # noqa: F401

        import eo_tasks.maps.annual_maps  # noqa: F401

    before = vm_hwm_mb()
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    figures = STAGES[stage][0](size, work)
    before, t0 = _MARK.get("hwm", before), _MARK.get("t", t0)
    seconds = time.perf_counter() - t0
    peak = vm_hwm_mb()
    save = figures.pop("_save", None)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "peak_rss_mb": peak,
                "added_rss_mb": peak - before,
                "load_1min": [load, os.getloadavg()[0]],
                **figures,
            }
        )
    )
    if save is not None:
        np.savez(work / "result.npz", **save)


def run_child(stage: str, size: int, work: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[2])}
    python = (
        str(HERE.parents[2] / ".venv-compute" / "bin" / "python")
        if stage in COMPUTE_STAGES
        else sys.executable
    )
    cmd = [python, str(HERE), "--child", stage, "--size", str(size), "--work", str(work)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{stage} at {size}: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def idle_interpreter_mb() -> float:
    code = "print([int(x.split()[1]) / 1024 for x in open('/proc/self/status') if x.startswith('VmHWM')][0])"
    return float(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )


def exponent(px: list[int], values: list[float], floor: float) -> float:
    """Slope of log(value) against log(pixels) (values below ``floor`` count as ``floor``)."""
    return float(np.polyfit(np.log(px), np.log(np.maximum(values, floor)), 1)[0])


def extrapolate(px: list[int], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Growth exponents, and the figures at one tile-year and a 10-tile region (one 256 GB / 64-core node).

    The exponents are the log-log slopes. The extrapolation is deliberately conservative: time
    grows at least linearly with the pixels (the fitted slope is lower where fixed costs dominate
    the small sizes), and the process's peak memory is fitted as ``fixed + bytes × pixels`` (a
    per-pixel share that is negligible at 2048² px can still dominate a tile).
    """
    seconds = [r["seconds"] for r in runs]
    added = [r["added_rss_mb"] for r in runs]
    peak = [r["peak_rss_mb"] for r in runs]
    b_time, b_rss = exponent(px, seconds, 1e-3), exponent(px, added, 1.0)
    ratio = TILE_PX / px[-1]
    tile_s = seconds[-1] * ratio ** max(b_time, 1.0)
    per_px, fixed = np.polyfit(px, peak, 1)
    per_px = max(float(per_px), 0.0)
    tile_gb = (max(float(fixed), min(peak)) + per_px * TILE_PX) / 1024
    parallel = max(1, min(REGION_TILES, NODE_CORES, int(NODE_GB / max(tile_gb, 1e-3))))
    return {
        "exponent_time": round(b_time, 2),
        "exponent_added_rss": round(b_rss, 2),
        "peak_rss_fit": {"fixed_mb": round(float(fixed), 1), "bytes_per_px": round(per_px * 2**20, 2)},
        "tile_year": {"seconds_one_process": round(tile_s), "peak_rss_gb": round(tile_gb, 2)},
        "region_10_tiles_on_node": {
            "tiles_at_once": parallel,
            "wall_hours": round(tile_s * -(-REGION_TILES // parallel) / 3600, 2),
            "peak_rss_gb": round(tile_gb * parallel, 1),
            "fits_in_256_gb": tile_gb * parallel <= NODE_GB,
        },
    }


def cube_on_node(runs: dict[str, Any]) -> dict[str, Any]:
    """Cube building of a tile-year on the 64-core node, from the measured blocks/s per worker.

    The simulated archive has 12 scenes a year (8 S2 + 4 Landsat); a real tile-year has about
    90 (73 S2 revisits + Landsat), and a block's cost is proportional to the scenes it reads.
    """
    largest = runs[max(runs, key=int)]
    per_worker = largest["blocks_per_s_per_worker"] * 12 / 90
    blocks = TILE_PX / 128**2
    seconds = blocks / (per_worker * NODE_CORES)
    return {
        "assumed_scenes_per_tile_year": 90,
        "blocks_128px": round(blocks),
        "tile_year_hours_64_workers": round(seconds / 3600, 2),
        "region_10_tiles_hours_64_workers": round(REGION_TILES * seconds / 3600, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[256, 512, 1024, 2048])
    parser.add_argument("--cube-sizes", type=int, nargs="*", default=[256, 512, 1024])
    parser.add_argument("--dating-sizes", type=int, nargs="*", default=[256, 512, 1024, 2048])
    parser.add_argument("--infer-sizes", type=int, nargs="*", default=[32])
    parser.add_argument("--stages", nargs="+", default=list(STAGES))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale.json"))
    parser.add_argument("--child")
    parser.add_argument("--size", type=int)
    parser.add_argument("--work", type=Path)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.size, args.work)
        return
    from benchmarks.machine import describe_machine

    t_start = time.monotonic()
    results: dict[str, Any] = {stage: {"runs": {}} for stage in args.stages}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        for size in sorted(set(args.sizes + args.cube_sizes + args.infer_sizes)):
            work = Path(tmp) / str(size)
            work.mkdir()
            for stage in args.stages:
                special = {
                    "cube": args.cube_sizes,
                    "dating": args.dating_sizes,
                    "dating_parallel": args.dating_sizes,
                    "infer_device": args.infer_sizes,
                }
                sizes = special.get(stage, args.sizes)
                if size not in sizes:
                    continue
                if stage not in ("cube", "infer_device") and not (work / "labels").exists():
                    make_labels(size, work)
                prepare = STAGES[stage][1]
                if prepare is not None:
                    prepare(size, work)
                run = run_child(stage, size, work)
                results[stage]["runs"][str(size)] = run
                figures = f"{run['seconds']:8.2f} s, +{run['added_rss_mb']:7.1f} MiB"
                print(f"{stage:15s} {size:5d}² px: {figures} (load {run['load_1min'][0]:.1f})", flush=True)
    for figures in results.values():
        sizes = sorted(int(s) for s in figures["runs"])
        if len(sizes) >= 2:
            figures.update(extrapolate([s * s for s in sizes], [figures["runs"][str(s)] for s in sizes]))
    if results.get("cube", {}).get("runs"):
        results["cube"]["node"] = cube_on_node(results["cube"]["runs"])
    report = {
        "machine": describe_machine(),
        "idle_interpreter_rss_mb": idle_interpreter_mb(),
        "tile_year_px": TILE_PX,
        "window_positions": POSITIONS,
        "node": {"memory_gb": NODE_GB, "cores": NODE_CORES, "region_tiles": REGION_TILES},
        "total_seconds": round(time.monotonic() - t_start),
        "stages": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results: {args.out} ({report['total_seconds']} s)")


if __name__ == "__main__":
    main()
