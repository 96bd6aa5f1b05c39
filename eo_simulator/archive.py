"""Writing the simulated archive: COGs, STAC items, truth rasters and the AOI file, atomically.

The archive follows the platform's local archive contract to the letter (static STAC catalog,
Earth Search v1 asset keys and metadata, checksums), so ingest code developed against it works
unchanged on a real catalogue. It is built in a staging directory next to the target and renamed
into place at the end, so a crash never leaves a half-written archive that looks complete.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pystac
import yaml
from osgeo import gdal

from eo_simulator.config import ScenarioConfig
from eo_simulator.events import (
    MIN_EVENT_PIXELS,
    PlantedEvent,
    change_rasters,
    landcover,
    plant_events,
)
from eo_simulator.grid import Grid, footprint, snapped_grid, spatial_reference, transform_point
from eo_simulator.landscape import Landscape, build_landscape
from eo_simulator.lookalikes import lookalike_records, plant_lookalikes
from eo_simulator.processes import MIN_CHANGE_PIXELS, process_cycle
from eo_simulator.records import event_records
from eo_simulator.reference import REFERENCE_BLOCK_PX, REFERENCE_PLANTED_ERROR, degrade_reference
from eo_simulator.sensors import (
    L8_OFFSET,
    L8_SCALE,
    QA,
    S2_BOA_OFFSET_DN,
    S2_SCALE,
    SCL,
    SHADOW_OFFSET_M,
    SUN_AZIMUTH_DEG,
    CloudTruth,
    L8Scene,
    S2Scene,
    simulate_l8,
    simulate_s2,
)
from eo_simulator.spectra import L8_BANDS, S2_BANDS, Band
from eo_tasks.core.classes import CLASS_BY_CODE, CLASSES, Legend
from eo_tasks.core.errors import ConfigError
from eo_tasks.preprocess.harmonize import HLS_MSI_TO_OLI

gdal.UseExceptions()

S2_COLLECTION = "sentinel-2-l2a"
L8_COLLECTION = "landsat-c2-l2"
S2_CADENCE = (date(2017, 1, 2), 5)  # phase and step (days) of the A/B revisit; Sentinel-2A on even steps
L8_CADENCE = (date(2013, 4, 11), 16)
BASELINE_04_00 = date(2022, 1, 25)
BASELINE_05_09 = date(2022, 12, 6)
AOI_CLOUD_COVER_MAX = 40
# Random streams: each part of the scenario draws from its own, so changing one part (say, the
# number of Landsat scenes) leaves every other part identical.
STREAM_LANDSCAPE, STREAM_EVENTS, STREAM_REFERENCE, STREAM_SCHEDULE, STREAM_S2, STREAM_L8 = range(6)
STREAM_LOOKALIKES = 6  # appended: the default scenario never draws from it
STAC_EXTENSIONS = [
    "https://stac-extensions.github.io/eo/v1.1.0/schema.json",
    "https://stac-extensions.github.io/projection/v1.1.0/schema.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json",
    "https://stac-extensions.github.io/view/v1.0.0/schema.json",
    "https://stac-extensions.github.io/classification/v1.1.0/schema.json",
]
S2_EXTENSIONS = [*STAC_EXTENSIONS, "https://stac-extensions.github.io/mgrs/v1.0.0/schema.json"]
L8_EXTENSIONS = [*STAC_EXTENSIONS, "https://landsat.usgs.gov/stac/landsat-extension/v1.1.1/schema.json"]
GDAL_TYPES = {
    np.dtype(np.uint8): gdal.GDT_Byte,
    np.dtype(np.uint16): gdal.GDT_UInt16,
    np.dtype(np.int32): gdal.GDT_Int32,
}

ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate` wrote; every path derives from ``root`` (the layout lives here).

    Attributes:
        root: The archive's root directory.
        years: The simulated years.
        n_s2_items: Sentinel-2 items written.
        n_l8_items: Landsat-8 items written.
        n_permanent_changes: Permanent changes planted (also listed in ``changes``).
    """

    root: Path
    years: tuple[int, ...]
    n_s2_items: int
    n_l8_items: int
    n_permanent_changes: int

    @property
    def catalog(self) -> Path:
        """The STAC catalog."""
        return self.root / "catalog.json"

    @property
    def aoi_yaml(self) -> Path:
        """The AOI description of this scenario."""
        return self.root / "aoi.yaml"

    @property
    def scenario(self) -> Path:
        """All parameters, grids and acquisitions."""
        return self.root / "scenario.json"

    @property
    def reference(self) -> Path:
        """The reference map (WorldCover codes)."""
        return self.root / "reference" / "worldcover.tif"

    @property
    def reference_error(self) -> Path:
        """0 correct, 1 planted mislabel, 2 wrong through boundary coarsening."""
        return self.root / "truth" / "reference_error.tif"

    @property
    def landcover(self) -> dict[int, Path]:
        """Year → true land cover on December 31 (platform codes)."""
        return {year: self.root / "truth" / f"landcover_{year}.tif" for year in self.years}

    @property
    def change_mask(self) -> Path:
        """1 where a permanent change was planted."""
        return self.root / "truth" / "change_mask.tif"

    @property
    def change_date(self) -> Path:
        """Days since 1970-01-01 of the permanent change, 0 = none."""
        return self.root / "truth" / "change_date.tif"

    @property
    def changes(self) -> Path:
        """Every planted event, permanent and seasonal (JSON list)."""
        return self.root / "truth" / "changes.json"

    @property
    def cloud_truth(self) -> Path:
        """Directory of per-acquisition cloud truth rasters, ``<item_id>.tif`` (CloudTruth codes)."""
        return self.root / "truth" / "clouds"


@dataclass(frozen=True)
class Acquisition:
    """One scheduled overpass."""

    item_id: str
    platform: str
    when: datetime


def _rng(config: ScenarioConfig, stream: int, index: int = 0) -> np.random.Generator:
    return np.random.default_rng([config.seed, stream, index])


def processing_baseline(day: date) -> str:
    """The Sentinel-2 L2A processing baseline of a (reprocessed) product acquired on ``day``."""
    if day < BASELINE_04_00:
        return "02.14"
    return "04.00" if day < BASELINE_05_09 else "05.09"


def has_boa_offset(baseline: str) -> bool:
    """Whether DNs of this processing baseline carry the +1000 BOA offset (baseline ≥ 04.00)."""
    major, minor = (int(part) for part in baseline.split("."))
    return (major, minor) >= (4, 0)


def mgrs_tile(epsg: int, x: float, y: float, latitude: float) -> str:
    """The MGRS 100 km square (``32TPS``) containing a UTM point.

    Args:
        epsg: WGS 84 / UTM EPSG code.
        x: Easting.
        y: Northing.
        latitude: The point's latitude (for the latitude band).

    Returns:
        Zone, latitude band and the two square letters.
    """
    zone = epsg % 100
    band = "CDEFGHJKLMNPQRSTUVWX"[min(19, max(0, int((latitude + 80) // 8)))]
    columns = ("ABCDEFGH", "JKLMNPQR", "STUVWXYZ")[(zone - 1) % 3]
    column = columns[min(7, max(0, int(x // 100000) - 1))]
    row = "ABCDEFGHJKLMNPQRSTUV"[(int(y // 100000) + (5 if zone % 2 == 0 else 0)) % 20]
    return f"{zone:02d}{band}{column}{row}"


def _cadence_days(rng: np.random.Generator, year: int, cadence: tuple[date, int], count: int) -> list[int]:
    """``count`` overpass numbers in ``year``, one drawn from each of ``count`` equal stretches."""
    if count == 0:  # no acquisitions of this sensor (l8_per_year 0): no draws either
        return []
    epoch, step = cadence
    first = math.ceil((date(year, 1, 1) - epoch).days / step)
    last = (date(year, 12, 31) - epoch).days // step
    return [int(rng.choice(stretch)) for stretch in np.array_split(np.arange(first, last + 1), count)]


def s2_schedule(config: ScenarioConfig, tile: str) -> list[Acquisition]:
    """The Sentinel-2 overpasses, alternating S2A/S2B on the 5-day cadence."""
    rng = _rng(config, STREAM_SCHEDULE, 2)
    acquisitions = []
    for year in config.years:
        for number in _cadence_days(rng, year, S2_CADENCE, config.s2_per_year):
            day = S2_CADENCE[0] + timedelta(days=S2_CADENCE[1] * number)
            unit = "a" if number % 2 == 0 else "b"
            when = datetime.combine(day, time(10, 10), UTC) + timedelta(seconds=int(rng.integers(900)))
            acquisitions.append(
                Acquisition(f"S2{unit.upper()}_{tile}_{day:%Y%m%d}_0_L2A", f"sentinel-2{unit}", when)
            )
    return acquisitions


def l8_schedule(config: ScenarioConfig) -> list[Acquisition]:
    """The Landsat-8 overpasses on the 16-day cadence of the scenario's WRS-2 path."""
    rng = _rng(config, STREAM_SCHEDULE, 8)
    epoch = L8_CADENCE[0] + timedelta(days=config.wrs_path % L8_CADENCE[1])
    path_row = f"{config.wrs_path:03d}{config.wrs_row:03d}"
    acquisitions = []
    for year in config.years:
        for number in _cadence_days(rng, year, (epoch, L8_CADENCE[1]), config.l8_per_year):
            day = epoch + timedelta(days=L8_CADENCE[1] * number)
            processed = day + timedelta(days=int(rng.integers(5, 17)))
            item_id = f"LC08_L2SP_{path_row}_{day:%Y%m%d}_{processed:%Y%m%d}_02_T1"
            when = datetime.combine(day, time(9, 55), UTC) + timedelta(seconds=int(rng.integers(300)))
            acquisitions.append(Acquisition(item_id, "landsat-8", when))
    return acquisitions


def write_cog(
    path: Path,
    values: np.ndarray,
    grid: Grid,
    *,
    nodata: float | None,
    categorical: bool = True,
    colors: Mapping[int, str] | None = None,
) -> None:
    """Writes one band as a DEFLATE-compressed Cloud Optimized GeoTIFF.

    Args:
        path: Output file (its directory must exist).
        values: 2-D uint8, uint16 or int32 array of ``grid``'s shape.
        grid: Georeferencing.
        nodata: The band's no-data value, if any.
        categorical: Codes or bit flags (nearest-neighbour overviews) rather than measurements
            (averaged overviews).
        colors: Optional colour table, code → ``#rrggbb``.
    """
    memory = gdal.GetDriverByName("MEM").Create("", grid.width, grid.height, 1, GDAL_TYPES[values.dtype])
    memory.SetGeoTransform(grid.geotransform)
    memory.SetProjection(spatial_reference(grid.epsg).ExportToWkt())
    band = memory.GetRasterBand(1)
    band.WriteArray(values)
    if nodata is not None:
        band.SetNoDataValue(nodata)
    if colors:
        table = gdal.ColorTable()
        for code, color in colors.items():
            table.SetColorEntry(code, (*(int(color[i : i + 2], 16) for i in (1, 3, 5)), 255))
        band.SetRasterColorTable(table)
    options = [
        "COMPRESS=DEFLATE",
        "PREDICTOR=YES",
        f"OVERVIEW_RESAMPLING={'NEAREST' if categorical else 'AVERAGE'}",
    ]
    gdal.GetDriverByName("COG").CreateCopy(str(path), memory, options=options)


def _file_asset(path: Path, grid: Grid, title: str, roles: list[str], fields: dict[str, Any]) -> pystac.Asset:
    """A COG asset with projection and file (checksum, size) metadata."""
    content = path.read_bytes()
    extra = {
        "gsd": grid.resolution,
        "proj:shape": [grid.height, grid.width],
        "proj:transform": [grid.resolution, 0.0, grid.xmin, 0.0, -grid.resolution, grid.ymax],
        "file:checksum": "1220" + hashlib.sha256(content).hexdigest(),
        "file:size": len(content),
        **fields,
    }
    return pystac.Asset(
        href=str(path), media_type=pystac.MediaType.COG, title=title, roles=roles, extra_fields=extra
    )


def _eo_band(band: Band) -> dict[str, Any]:
    return {
        "name": band.asset,
        "common_name": band.common_name,
        "description": band.description,
        "center_wavelength": band.center_um,
        "full_width_half_max": band.fwhm_um,
    }


def _item(
    acquisition: Acquisition, grid: Grid, properties: dict[str, Any], extensions: list[str]
) -> pystac.Item:
    """An item whose geometry is the scene grid's outline in WGS 84."""
    ring = np.round(footprint(grid, 4326), 7)
    return pystac.Item(
        id=acquisition.item_id,
        geometry={"type": "Polygon", "coordinates": [ring.tolist()]},
        bbox=[*ring.min(axis=0).tolist(), *ring.max(axis=0).tolist()],
        datetime=acquisition.when,
        properties={"platform": acquisition.platform, "proj:epsg": grid.epsg, **properties},
        stac_extensions=extensions,
    )


def _write_s2_item(
    directory: Path, acquisition: Acquisition, scene: S2Scene, grid: Grid, tile: str, baseline: str
) -> pystac.Item:
    directory.mkdir(parents=True)
    grids = {10: grid, 20: grid.coarsened(2)}
    offset = -S2_BOA_OFFSET_DN / S2_SCALE if has_boa_offset(baseline) else 0.0
    item = _item(
        acquisition,
        grid,
        {
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "eo:cloud_cover": scene.cloud_cover,
            "s2:mgrs_tile": tile,
            "mgrs:utm_zone": int(tile[:2]),
            "mgrs:latitude_band": tile[2],
            "mgrs:grid_square": tile[3:],
            "s2:processing_baseline": baseline,
            "s2:product_type": "S2MSI2A",
            "s2:nodata_pixel_percentage": scene.nodata_percentage,
            "earthsearch:boa_offset_applied": False,
            "view:sun_azimuth": SUN_AZIMUTH_DEG,
        },
        S2_EXTENSIONS,
    )
    for band in S2_BANDS:
        path = directory / f"{band.asset}.tif"
        write_cog(path, scene.dn[band.asset], grids[band.gsd], nodata=0, categorical=False)
        raster = {"nodata": 0, "data_type": "uint16", "spatial_resolution": band.gsd, "scale": 1 / S2_SCALE}
        fields = {"eo:bands": [_eo_band(band)], "raster:bands": [{**raster, "offset": offset}]}
        title = f"{band.description} - {band.gsd}m"
        item.add_asset(band.asset, _file_asset(path, grids[band.gsd], title, ["data", "reflectance"], fields))
    path = directory / "scl.tif"
    write_cog(path, scene.scl, grids[20], nodata=int(SCL.NO_DATA))
    classes = [{"value": int(code), "name": code.name.lower()} for code in SCL]
    fields = {
        "raster:bands": [{"nodata": 0, "data_type": "uint8", "spatial_resolution": 20}],
        "classification:classes": classes,
    }
    item.add_asset("scl", _file_asset(path, grids[20], "Scene classification map (SCL)", ["data"], fields))
    return item


def _qa_bitfields() -> list[dict[str, Any]]:
    fields = []
    for flag in QA:
        length = 2 if flag >= QA.CLOUD_CONFIDENCE else 1
        fields.append({"name": flag.name.lower(), "offset": int(flag), "length": length})
    return fields


def _write_l8_item(
    directory: Path, acquisition: Acquisition, scene: L8Scene, grid: Grid, config: ScenarioConfig
) -> pystac.Item:
    directory.mkdir(parents=True)
    item = _item(
        acquisition,
        grid,
        {
            "instruments": ["oli", "tirs"],
            "eo:cloud_cover": scene.cloud_cover,
            "landsat:wrs_path": f"{config.wrs_path:03d}",
            "landsat:wrs_row": f"{config.wrs_row:03d}",
            "landsat:collection_category": "T1",
            "landsat:collection_number": "02",
            "landsat:correction": "L2SP",
            "view:sun_azimuth": SUN_AZIMUTH_DEG,
        },
        L8_EXTENSIONS,
    )
    raster = {
        "nodata": 0,
        "data_type": "uint16",
        "spatial_resolution": 30,
        "scale": L8_SCALE,
        "offset": L8_OFFSET,
    }
    for band in L8_BANDS:
        path = directory / f"{band.asset}.tif"
        write_cog(path, scene.dn[band.asset], grid, nodata=0, categorical=False)
        fields = {"eo:bands": [_eo_band(band)], "raster:bands": [raster]}
        title = f"{band.description} surface reflectance"
        item.add_asset(band.asset, _file_asset(path, grid, title, ["data", "reflectance"], fields))
    path = directory / "qa_pixel.tif"
    write_cog(path, scene.qa_pixel, grid, nodata=1 << QA.FILL)
    fields = {
        "raster:bands": [{"nodata": 1, "data_type": "uint16", "spatial_resolution": 30, "unit": "bit index"}],
        "classification:bitfields": _qa_bitfields(),
    }
    item.add_asset("qa_pixel", _file_asset(path, grid, "Pixel quality assessment band", ["cloud"], fields))
    return item


def _empty_collection(collection_id: str, description: str) -> pystac.Collection:
    start = datetime(2000, 1, 1, tzinfo=UTC)
    extent = pystac.Extent(
        pystac.SpatialExtent([[-180.0, -90.0, 180.0, 90.0]]), pystac.TemporalExtent([[start, None]])
    )
    return pystac.Collection(collection_id, description, extent, title=collection_id, license="other")


def _scene_margin(aoi: Grid, landsat_grid: Grid) -> int:
    """Pixels to add around the AOI so the 10 m ground covers the whole Landsat grid (even)."""
    outline = footprint(landsat_grid, aoi.epsg)
    xmin, ymin, xmax, ymax = aoi.bounds
    overhang = max(
        xmin - outline[:, 0].min(),
        outline[:, 0].max() - xmax,
        ymin - outline[:, 1].min(),
        outline[:, 1].max() - ymax,
    )
    margin = max(math.ceil(overhang / aoi.resolution) + 2, math.ceil(0.1 * max(aoi.width, aoi.height)) + 8)
    return margin + margin % 2


def _grid_record(grid: Grid) -> dict[str, Any]:
    return {
        "epsg": grid.epsg,
        "bounds": list(grid.bounds),
        "resolution": grid.resolution,
        "shape": list(grid.shape),
    }


def _write_truth(
    layout: SimulationResult,
    config: ScenarioConfig,
    landscape: Landscape,
    events: list[PlantedEvent],
    aoi: Grid,
) -> dict[str, float]:
    """Writes the truth rasters, changes.json and the reference map; returns reference error shares."""
    layout.cloud_truth.mkdir(parents=True)
    layout.reference.parent.mkdir(parents=True)
    class_colors = {c.code: c.color for c in CLASSES}
    for year, path in layout.landcover.items():
        write_cog(path, landcover(landscape, events, year), aoi, nodata=0, colors=class_colors)
    mask, days = change_rasters(landscape, events)
    write_cog(layout.change_mask, mask, aoi, nodata=None)
    write_cog(layout.change_date, days, aoi, nodata=None)
    records = event_records(landscape, events, config.years) + lookalike_records(landscape, config.years)
    layout.changes.write_text(json.dumps(records, indent=2) + "\n")

    truth = landcover(landscape, events, config.years[0])
    reference, errors = degrade_reference(
        _rng(config, STREAM_REFERENCE), truth, config.reference_error_fraction
    )
    legend = Legend.load("worldcover")
    to_worldcover = np.zeros(max(CLASS_BY_CODE) + 1, dtype=np.uint8)
    for code in CLASS_BY_CODE:
        to_worldcover[code] = legend.code_for(code)
    colors = {code: CLASS_BY_CODE[platform].color for code, platform in legend.mapping.items()}
    write_cog(layout.reference, to_worldcover[reference], aoi, nodata=0, colors=colors)
    write_cog(layout.reference_error, errors, aoi, nodata=None)
    return {
        "planted_error_fraction": round(float((errors == REFERENCE_PLANTED_ERROR).mean()), 4),
        "total_error_fraction": round(float((errors > 0).mean()), 4),
    }


def _write_aoi_yaml(path: Path, final: SimulationResult, config: ScenarioConfig, aoi: Grid) -> None:
    description = {
        "name": config.name,
        "grid": {"epsg": aoi.epsg, "bounds": list(aoi.bounds), "resolution": int(aoi.resolution)},
        "first_year": config.years[0],
        "last_year": config.years[-1],
        "sources": [
            {"provider": "local", "path": str(final.catalog), "collections": [S2_COLLECTION, L8_COLLECTION]}
        ],
        "cloud_cover_max": AOI_CLOUD_COVER_MAX,
        "reference": {"path": str(final.reference), "legend": "worldcover"},
    }
    path.write_text(yaml.safe_dump(description, sort_keys=False))


def _acquisition_record(item: pystac.Item) -> dict[str, Any]:
    keys = ("platform", "eo:cloud_cover", "s2:processing_baseline")
    return {"id": item.id, "datetime": item.properties["datetime"]} | {
        key: item.properties[key] for key in keys if key in item.properties
    }


@dataclass(frozen=True, eq=False)
class _Plan:
    """Everything decided before the first file is written."""

    aoi: Grid
    landsat_grid: Grid
    landscape: Landscape
    events: list[PlantedEvent]
    tile: str
    s2: list[Acquisition]
    l8: list[Acquisition]

    @property
    def steps(self) -> int:
        return len(self.s2) + len(self.l8) + 2


def _plan(config: ScenarioConfig) -> _Plan:
    aoi = Grid(config.epsg, config.origin[0], config.origin[1], 10.0, config.width, config.height)
    landsat_epsg = config.landsat_grid_epsg
    landsat_grid = snapped_grid(footprint(aoi, landsat_epsg), landsat_epsg, 30.0, 15.0, margin_px=2)
    margin = _scene_margin(aoi, landsat_grid)
    landscape = build_landscape(
        _rng(config, STREAM_LANDSCAPE),
        aoi.padded(margin),
        margin,
        config.years,
        config.landscape,
        deciduous_shrubs="deciduous_shrubs" in config.lookalikes,
    )
    events = plant_events(
        _rng(config, STREAM_EVENTS),
        landscape,
        config.years,
        config.n_changes,
        process_cycle(config.change_processes) if config.change_processes else None,
        min_pixels=MIN_CHANGE_PIXELS if config.change_processes else MIN_EVENT_PIXELS,
        flood=not config.lookalikes or "seasonal_flood" in config.lookalikes,
    )
    if config.lookalikes:
        rng = _rng(config, STREAM_LOOKALIKES)
        landscape, ploughed = plant_lookalikes(rng, landscape, events, config.years, config.lookalikes)
        events = events + ploughed
    center = (aoi.bounds[0] + aoi.bounds[2]) / 2, (aoi.bounds[1] + aoi.bounds[3]) / 2
    tile = mgrs_tile(aoi.epsg, center[0], center[1], transform_point(aoi.epsg, 4326, *center)[1])
    return _Plan(aoi, landsat_grid, landscape, events, tile, s2_schedule(config, tile), l8_schedule(config))


def _write_s2_collection(
    plan: _Plan, config: ScenarioConfig, layout: SimulationResult, report: ProgressCallback
) -> pystac.Collection:
    collection = _empty_collection(
        S2_COLLECTION, "Simulated Sentinel-2 L2A scenes (Earth Search v1 conventions)"
    )
    grid = plan.landscape.grid
    for i, acquisition in enumerate(plan.s2):
        day, baseline = acquisition.when.date(), processing_baseline(acquisition.when.date())
        rng = _rng(config, STREAM_S2, i)
        scene = simulate_s2(rng, plan.landscape, plan.events, day, has_boa_offset(baseline), config)
        write_cog(layout.cloud_truth / f"{acquisition.item_id}.tif", scene.cloud_truth, grid, nodata=255)
        directory = layout.root / S2_COLLECTION / acquisition.item_id
        collection.add_item(_write_s2_item(directory, acquisition, scene, grid, plan.tile, baseline))
        report(2 + i, plan.steps, acquisition.item_id)
    return collection


def _write_l8_collection(
    plan: _Plan, config: ScenarioConfig, layout: SimulationResult, report: ProgressCallback
) -> pystac.Collection:
    collection = _empty_collection(L8_COLLECTION, "Simulated Landsat-8 Collection 2 Level-2 scenes")
    grid = plan.landsat_grid
    for i, acquisition in enumerate(plan.l8):
        rng = _rng(config, STREAM_L8, i)
        scene = simulate_l8(rng, plan.landscape, plan.events, acquisition.when.date(), grid, config)
        write_cog(layout.cloud_truth / f"{acquisition.item_id}.tif", scene.cloud_truth, grid, nodata=255)
        directory = layout.root / L8_COLLECTION / acquisition.item_id
        collection.add_item(_write_l8_item(directory, acquisition, scene, grid, config))
        report(2 + len(plan.s2) + i, plan.steps, acquisition.item_id)
    return collection


def _scenario_record(
    config: ScenarioConfig, plan: _Plan, collections: list[pystac.Collection], reference: dict[str, float]
) -> dict[str, Any]:
    return {
        "generator": "eo_simulator",
        "config": config.to_dict(),
        "aoi_grid": _grid_record(plan.aoi),
        "scene_grid": _grid_record(plan.landscape.grid),
        "landsat_grid": _grid_record(plan.landsat_grid),
        "mgrs_tile": plan.tile,
        "shadow_offset_m": list(SHADOW_OFFSET_M),
        "sun_azimuth_deg": SUN_AZIMUTH_DEG,
        "hls_msi_to_oli": {band: list(coefficients) for band, coefficients in HLS_MSI_TO_OLI.items()},
        "cloud_truth_codes": {code.name.lower(): int(code) for code in CloudTruth},
        "reference": {"legend": "worldcover", "block_px": REFERENCE_BLOCK_PX, **reference},
        "events": [event.id for event in plan.events],
        "acquisitions": {c.id: [_acquisition_record(item) for item in c.get_items()] for c in collections},
    }


def _build(config: ScenarioConfig, staging: Path, final: SimulationResult, report: ProgressCallback) -> _Plan:
    """Writes the whole archive under ``staging`` (paths inside files point to ``final``)."""
    plan = _plan(config)
    layout = SimulationResult(staging, config.years, len(plan.s2), len(plan.l8), 0)
    reference_errors = _write_truth(layout, config, plan.landscape, plan.events, plan.aoi)
    report(1, plan.steps, "truth and reference map")
    collections = [
        _write_s2_collection(plan, config, layout, report),
        _write_l8_collection(plan, config, layout, report),
    ]
    catalog = pystac.Catalog(
        f"eo-sim-{config.seed}", f"Simulated Sentinel-2 and Landsat-8 archive ({config.name})"
    )
    catalog.add_children(collections)
    for collection in collections:
        if collection.get_items():
            collection.update_extent_from_items()
    catalog.normalize_hrefs(str(layout.catalog))  # a file href: pystac takes "x.tmp-1" for a file name
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    _write_aoi_yaml(layout.aoi_yaml, final, config, plan.aoi)
    record = _scenario_record(config, plan, collections, reference_errors)
    layout.scenario.write_text(json.dumps(record, indent=2) + "\n")
    report(plan.steps, plan.steps, "catalog")
    return plan


def _check_target(root: Path, overwrite: bool) -> None:
    if root.exists() and not root.is_dir():
        raise ConfigError(f"{root}: exists and is not a directory")
    if root.is_dir() and any(root.iterdir()) and not overwrite:
        raise ConfigError(
            f"{root}: exists and is not empty (pass overwrite=True / --overwrite to replace it)"
        )


def _move_into_place(staging: Path, root: Path) -> None:
    if not root.exists():
        staging.rename(root)
        return
    retired = root.with_name(f"{root.name}.old-{os.getpid()}")
    root.rename(retired)
    staging.rename(root)
    shutil.rmtree(retired)


def simulate(
    config: ScenarioConfig,
    root: Path,
    progress: ProgressCallback | None = None,
    *,
    overwrite: bool = False,
) -> SimulationResult:
    """Simulates a scenario and writes its archive, truth and AOI file under ``root``.

    The archive is built in ``<root>.tmp-<pid>`` and renamed into place when complete.

    Args:
        config: The scenario.
        root: Output directory; must not exist or be empty unless ``overwrite``.
        progress: Called as ``progress(done, total, message)`` after each step.
        overwrite: Replace an existing non-empty ``root``.

    Returns:
        The paths written and the item counts.

    Raises:
        ConfigError: If ``root`` holds something and ``overwrite`` is false.
    """
    root = Path(root).absolute()
    _check_target(root, overwrite)
    staging = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    final = SimulationResult(root, config.years, 0, 0, 0)  # only its paths are used
    try:
        plan = _build(config, staging, final, progress or (lambda done, total, message: None))
        _move_into_place(staging, root)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    n_permanent = sum(event.kind == "permanent" for event in plan.events)
    return SimulationResult(root, config.years, len(plan.s2), len(plan.l8), n_permanent)
