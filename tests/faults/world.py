"""A small AOI world for the fault suite: two yearly cubes, a model card and inference labels on disk.

64 x 64 pixels of forest; the labels of the 2022 run show three permanent changes: a clearing
``A`` early (dated in 2021), a clearing ``B`` and a meadow ``C`` in 2022. The cubes hold the
matching spectral breaks, so dates are refined as in production. Everything the maps stage reads
is real (HDF5 cubes and label blocks, a model card, PostGIS rows); only the inference job is
replaced by the label files it would write.

Run as a module, it assembles one year in a process of its own and stops at a chosen point, so
a test can SIGKILL it there: ``python -m tests.faults.world ROOT PG_JSON YEAR POINT``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.classes import CLASS_BY_NAME
from eo_tasks.core.cube import to_int16
from eo_tasks.core.grid import blocks
from eo_tasks.maps.infer import BLOCK_FILE, write_block

AOI = "faulty"
YEARS = (2021, 2022)
N = 12  # composites per year
W = 7
BLOCK = 32
BANDS = ["blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16", "swir22"]
TREE, BARE, GRASS, WATER = (CLASS_BY_NAME[n].code for n in ("tree_cover", "bare", "grassland", "water"))
# name: (rows, cols, new class, first window position showing it, composite of the spectral break)
CHANGES = {
    "A": (slice(4, 14), slice(4, 14), BARE, 4, 7),  # dated in 2021 (composite 7 of 0..11)
    "B": (slice(30, 40), slice(30, 45), BARE, 10, 13),
    "C": (slice(50, 60), slice(4, 14), GRASS, 10, 13),
}
DATES = [dt.date(year, 1, 15) + dt.timedelta(days=30 * k) for year in YEARS for k in range(N)]


def config(root: Path) -> AOIConfig:
    """The AOI (its sources and reference are never read here)."""
    return AOIConfig.from_dict(
        {
            "name": AOI,
            "grid": {"epsg": 32632, "bounds": [600000, 5099360, 600640, 5100000], "resolution": 10},
            "first_year": YEARS[0],
            "last_year": YEARS[-1],
            "composites_per_year": N,
            "sources": [{"provider": "local", "path": str(root / "archive" / "catalog.json")}],
            "reference": {"path": str(root / "reference.tif"), "legend": "worldcover"},
            "maps": {"window": W, "median": 3, "ath": 10, "block_px": BLOCK, "array_tasks": 1},
        }
    )


def cube_file(root: Path, year: int) -> Path:
    """Where the world's cube of ``year`` lies."""
    return root / "data" / "cubes" / AOI / f"{AOI}_{year}.h5"


def labels_dir(root: Path, year: int, key: str = "k1") -> Path:
    """The inference job's output folder of a run of ``year`` (``key``: its run key)."""
    return root / "data" / "maps" / AOI / str(year) / "labels" / key


def build(root: Path) -> None:
    """Writes the cubes, the model card and the label blocks of both years (idempotent)."""
    import h5py

    grid = config(root).grid
    rows, cols = grid.shape
    for i, year in enumerate(YEARS):
        path = cube_file(root, year)
        if path.exists():
            continue
        reflectance = np.full((N, rows, cols, len(BANDS)), 0.3, np.float32)
        for r, c, _, _, brk in CHANGES.values():
            local = max(0, brk - i * N)
            if brk < (i + 1) * N:
                reflectance[local:, r, c, :] = 0.05
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(path, "w") as f:
            f.create_dataset("reflectance", data=to_int16(reflectance))
            f.create_dataset("valid", data=np.ones((N, rows, cols), np.uint8))
            f.create_dataset("dates", data=[d.isoformat().encode() for d in DATES[i * N : (i + 1) * N]])
            f.attrs.update(
                band_names=BANDS,
                epsg=grid.epsg,
                geotransform=grid.geotransform,
                year=year,
                aoi=AOI,
                scenes=json.dumps([f"S2_{year}_1"]),
            )
    model = root / "model"
    model.mkdir(exist_ok=True)
    card = {
        "schema": "eo-platform/model-card",
        "schema_version": 1,
        "model_id": "m1",
        "backend": "pytorch",
        "architecture": {"architecture": "transformer"},
        "training_set": {"path": str(root / "trainset.h5")},
        "features": BANDS,
        "normalization": {"std": [1.0] * len(BANDS)},
        "model_file": "model.pt",
    }
    (model / "model_card.json").write_text(json.dumps(card))
    write_labels(root, YEARS[0])
    write_labels(root, YEARS[1])


def write_labels(root: Path, year: int, key: str = "k1") -> Path:
    """The label blocks the inference job writes for a run of ``year``."""
    grid = config(root).grid
    first = year == YEARS[0]
    dates = DATES[:N] if first else DATES
    positions = len(dates) - W + 1
    labels = np.full((positions, *grid.shape), TREE, np.uint8)
    if not first:
        for r, c, to, start, _ in CHANGES.values():
            labels[start:, r, c] = to
    annual = np.full(grid.shape, TREE, np.uint8)
    attrs = {"window": W, "model_id": "m1", "composite_dates": json.dumps([d.isoformat() for d in dates])}
    out = labels_dir(root, year, key)
    for b in blocks(grid, BLOCK):
        window = (slice(b.row0, b.row0 + b.rows), slice(b.col0, b.col0 + b.cols))
        arrays = {
            "labels": labels[(slice(None), *window)],
            "confidence": np.full((positions, b.rows, b.cols), 90, np.uint8),
            "annual": annual[window],
        }
        write_block(out / BLOCK_FILE.format(row0=b.row0, col0=b.col0), arrays, attrs)
    return out


def register(conn: Any, root: Path) -> None:
    """Registers both cubes (with their checksums) and the model in the test's schema."""
    from eo_tasks.store.models import record_model, set_model_status
    from eo_tasks.store.scenes import SceneCatalog

    catalog = SceneCatalog(conn)
    for year in YEARS:
        catalog.record_datacube(AOI, year, str(cube_file(root, year)), f"fp{year}", [], {}, N)
    card = json.loads((root / "model" / "model_card.json").read_text())
    record_model(conn, "m1", AOI, str(root / "model"), card, None)
    set_model_status(conn, "m1", "approved", "test")


def values(root: Path, year: int, key: str = "k1") -> dict[str, Any]:
    """The inference job's values of a run of ``year``, as assemble_year takes them."""
    years = [year] if year == YEARS[0] else [year - 1, year]
    return {
        "year": year,
        "out_dir": str(labels_dir(root, year, key)),
        "cubes": [str(cube_file(root, y)) for y in years],
        "model_dir": str(root / "model"),
        "model_id": "m1",
    }


def assemble(conn: Any, root: Path, year: int, key: str = "k1", **kwargs: Any) -> Any:
    """Runs the maps stage's assemble step of ``year`` on ``conn``."""
    from eo_tasks.maps.pipeline import assemble_year

    return assemble_year(conn, config(root), values(root, year, key), root / "data", **kwargs)


def _stop_at(point: str) -> None:
    """Makes this process announce ``point`` on stdout when it gets there, then hang (to be killed)."""
    import eo_tasks.maps.stac as stac
    import eo_tasks.maps.versions as versions

    def hang() -> None:
        print(point, flush=True)
        time.sleep(600)

    if point == "files-written":  # inside the transaction, the new version's files complete
        write_files = versions.write_files

        def after_files(*args: Any, **kwargs: Any) -> None:
            write_files(*args, **kwargs)
            hang()

        versions.write_files = after_files  # type: ignore[assignment]
    elif point == "committed":  # after the commit, before the STAC item and pointer are switched
        stac.write_year_item = lambda *args, **kwargs: hang()  # type: ignore[assignment]


def main(argv: list[str]) -> None:
    """``ROOT PG_JSON YEAR POINT``: assembles ``YEAR`` and hangs at ``POINT``."""
    import psycopg2

    root, pg, year, point = Path(argv[0]), json.loads(argv[1]), int(argv[2]), argv[3]
    _stop_at(point)
    with closing(psycopg2.connect(**pg)) as conn:
        assemble(conn, root, year)
    print("finished", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
