"""A static, self-contained STAC catalog of the platform's outputs, written with pystac.

``<data>/maps/<aoi>/catalog.json`` is the AOI's root: a Collection (the classification extension
with class values, names, titles, colours; the extent of the years present) linking one Item per
map year, wherever the maps stage wrote it (``MapPaths.stac_item``). Each item carries:

- the map, baseline and change COGs, their quicklooks and QGIS styles as assets, with the file
  extension (``file:size``, ``file:checksum`` as a sha2-256 multihash) and, on the class maps, the
  classification extension with each class's pixel count and percentage;
- the projection extension v2 (``proj:code``, ``proj:transform``, ``proj:shape``);
- processing lineage (``processing:software`` with the platform's version, the model id);
- ``derived_from`` links to the model card and the datacubes, relative to the item;
- the change polygons as a label-extension vector asset (GeoJSON next to the item, EPSG:4326).

Every href is relative, so the folder can be copied or served anywhere. Each file is written
under a temporary name and renamed. :func:`refresh_item_files` re-describes an item's files after
a review rewrote one of them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pystac
from pystac.extensions.classification import Classification, ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.label import LabelClasses, LabelCount, LabelExtension, LabelOverview, LabelType
from pystac.extensions.projection import ProjectionExtension
from pystac.stac_io import DefaultStacIO

import eo_tasks
from eo_tasks.core.classes import CLASS_BY_CODE, CLASSES
from eo_tasks.core.files import atomic_path, file_digest, write_json
from eo_tasks.core.grid import GridSpec
from eo_tasks.maps.outputs import MapPaths
from eo_tasks.maps.styles import qml_path
from eo_tasks.store.maps import ChangeRegion

PROCESSING_EXT = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
FILE_EXT = FileExtension.get_schema_uri()
COG = pystac.MediaType.COG
QML = "application/xml"
SHA256_MULTIHASH = "1220"  # multihash prefix: sha2-256, 32 bytes


class AtomicStacIO(DefaultStacIO):
    """pystac's file I/O, writing each document under a temporary name then renaming it."""

    def write_text_to_href(self, href: str, txt: str) -> None:
        """Writes ``txt`` to the local file ``href`` atomically."""
        with atomic_path(Path(href)) as tmp:
            tmp.write_text(txt)


def footprint_lonlat(grid: GridSpec) -> list[list[float]]:
    """The grid's outline as a closed lon/lat ring (EPSG:4326, corners transformed)."""
    transform = _to_lonlat(grid.epsg)
    xmin, ymin, xmax, ymax = grid.bounds
    corners = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)]
    return [[round(v, 7) for v in transform.TransformPoint(x, y)[:2]] for x, y in corners]


def _to_lonlat(epsg: int) -> Any:
    from osgeo import osr

    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromEPSG(epsg)
    target.ImportFromEPSG(4326)
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return osr.CoordinateTransformation(source, target)


def labels_path(paths: MapPaths) -> Path:
    """The year's change polygons as GeoJSON, next to the change COG."""
    return paths.changes.with_suffix(".geojson")


def write_change_labels(path: Path, regions: Sequence[ChangeRegion], grid: GridSpec) -> Path:
    """Writes change polygons as a GeoJSON FeatureCollection in EPSG:4326 (RFC 7946), atomically.

    Each feature's properties: ``from_class``/``to_class`` (class names), their codes, the change
    date and the area in m².
    """
    from osgeo import ogr

    transform = _to_lonlat(grid.epsg)
    features = []
    for region in regions:
        geom = ogr.CreateGeometryFromWkt(region.wkt)
        geom.Transform(transform)
        features.append(
            {
                "type": "Feature",
                "geometry": json.loads(geom.ExportToJson(["COORDINATE_PRECISION=7"])),
                "properties": {
                    "from_class": CLASS_BY_CODE[region.from_class].name,
                    "to_class": CLASS_BY_CODE[region.to_class].name,
                    "from_code": region.from_class,
                    "to_code": region.to_class,
                    "change_date": region.change_date.isoformat(),
                    "area_m2": round(region.area_m2, 1),
                },
            }
        )
    return write_json(path, {"type": "FeatureCollection", "features": features}, sort_keys=False)


def _class_objects(counts: Sequence[int] | None = None) -> list[Classification]:
    total = sum(counts[c.code] for c in CLASSES) if counts else 0
    out = []
    for cls in CLASSES:
        extra: dict[str, Any] = {}
        if counts and total:
            extra = {"count": int(counts[cls.code]), "percentage": round(100 * counts[cls.code] / total, 4)}
        out.append(
            Classification.create(
                value=cls.code, name=cls.name, title=cls.title, color_hint=cls.color[1:].upper(), **extra
            )
        )
    return out


def _histogram(cog: Path) -> list[int] | None:
    """Pixel count per value 0..255 of a class COG (None if it is not there)."""
    if not cog.is_file():
        return None
    from osgeo import gdal

    dataset = gdal.Open(str(cog))
    return [int(v) for v in dataset.GetRasterBand(1).GetHistogram(-0.5, 255.5, 256, False, False)]


def _describe_file(asset: pystac.Asset, path: Path) -> None:
    if path.is_file():
        FileExtension.ext(asset, add_if_missing=True).apply(
            size=path.stat().st_size, checksum=SHA256_MULTIHASH + file_digest(path)
        )


def _asset(item: pystac.Item, key: str, path: Path, title: str, media: str, roles: list[str]) -> pystac.Asset:
    item_dir = Path(item.get_self_href() or "").parent
    asset = pystac.Asset(href=os.path.relpath(path, item_dir), title=title, media_type=media, roles=roles)
    item.add_asset(key, asset)
    _describe_file(asset, path)
    return asset


def _add_assets(item: pystac.Item, paths: MapPaths, year: int) -> None:
    maps = {
        "map": (paths.classes, f"Land cover {year}", ["data"]),
        "baseline": (paths.annual_baseline, "Per-year classifier without sequence analysis", ["data"]),
    }
    for key, (path, title, roles) in maps.items():
        asset = _asset(item, key, path, title, COG, roles)
        ClassificationExtension.ext(asset, add_if_missing=True).classes = _class_objects(_histogram(path))
        if qml_path(path).is_file():
            _asset(item, f"{key}_qgis_style", qml_path(path), f"QGIS style of {key}", QML, ["style"])
    _asset(item, "changes", paths.changes, "Permanent changes: date, from-class, to-class", COG, ["data"])
    if qml_path(paths.changes).is_file():
        _asset(item, "changes_qgis_style", qml_path(paths.changes), "QGIS style of changes", QML, ["style"])
    _asset(item, "map_quicklook", paths.classes_png, "Map quicklook", pystac.MediaType.PNG, ["overview"])
    _asset(
        item, "changes_quicklook", paths.changes_png, "Changes quicklook", pystac.MediaType.PNG, ["overview"]
    )


def _add_labels(item: pystac.Item, path: Path, regions: Sequence[ChangeRegion]) -> None:
    _asset(
        item,
        "change_polygons",
        path,
        "Permanent-change polygons (EPSG:4326)",
        pystac.MediaType.GEOJSON,
        ["labels", "labels-vector"],
    )
    counts: dict[str, int] = {}
    for region in regions:
        name = CLASS_BY_CODE[region.to_class].name
        counts[name] = counts.get(name, 0) + 1
    LabelExtension.ext(item, add_if_missing=True).apply(
        label_description="Regions whose land cover changed for good in the year, by their new class",
        label_type=LabelType.VECTOR,
        label_properties=["to_class"],
        label_classes=[LabelClasses.create(classes=[c.name for c in CLASSES], name="to_class")],
        label_tasks=["classification", "change-detection"],
        label_methods=["automated"],
        label_overviews=[
            LabelOverview.create(
                "to_class", counts=[LabelCount.create(k, v) for k, v in sorted(counts.items())]
            )
        ],
    )


def build_year_item(
    aoi: str,
    year: int,
    grid: GridSpec,
    paths: MapPaths,
    model_id: str | None,
    provenance: dict[str, Any],
    n_changes: int,
    regions: Sequence[ChangeRegion] | None = None,
) -> pystac.Item:
    """The STAC item of an AOI-year (files described as they are on disk now)."""
    ring = footprint_lonlat(grid)
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    now = dt.datetime.now(dt.UTC)
    item = pystac.Item(
        id=f"{aoi}_{year}",
        geometry={"type": "Polygon", "coordinates": [ring]},
        bbox=[min(lons), min(lats), max(lons), max(lats)],
        datetime=None,
        start_datetime=dt.datetime(year, 1, 1, tzinfo=dt.UTC),
        end_datetime=dt.datetime(year, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        properties={
            "eo_platform:aoi": aoi,
            "eo_platform:model_id": model_id,
            "eo_platform:changes": n_changes,
            "eo_platform:scenes": list(provenance.get("scenes", [])),
        },
    )
    item.common_metadata.created = now
    item.set_self_href(str(paths.stac_item))
    xmin, _, _, ymax = grid.bounds
    ProjectionExtension.ext(item, add_if_missing=True).apply(
        code=f"EPSG:{grid.epsg}",
        shape=list(grid.shape),
        transform=[grid.resolution, 0.0, xmin, 0.0, -grid.resolution, ymax],
        bbox=list(grid.bounds),
    )
    item.stac_extensions.append(PROCESSING_EXT)
    item.properties.update(
        {
            "processing:level": "L4",
            "processing:software": {"eo-platform": eo_tasks.__version__},
            "processing:lineage": (
                f"Per-pixel class sequences of {year} predicted by model {model_id} from the year's "
                "datacubes, then sequence analysis against the previous year's map"
            ),
            "processing:datetime": now.isoformat().replace("+00:00", "Z"),
        }
    )
    _add_assets(item, paths, year)
    if regions is not None:
        _add_labels(item, labels_path(paths), regions)
    item_dir = paths.stac_item.parent
    if provenance.get("model_card"):
        card = os.path.relpath(provenance["model_card"], item_dir)
        item.add_link(pystac.Link("derived_from", card, pystac.MediaType.JSON, f"model {model_id}"))
    for cube in provenance.get("cubes", []):
        item.add_link(
            pystac.Link(
                "derived_from", os.path.relpath(cube, item_dir), "application/x-hdf5", "datacube (HDF5)"
            )
        )
    return item


def write_year_item(
    data_dir: Path,
    aoi: str,
    year: int,
    grid: GridSpec,
    paths: MapPaths,
    model_id: str | None,
    provenance: dict[str, Any],
    n_changes: int,
    regions: Sequence[ChangeRegion] | None = None,
) -> Path:
    """Writes (or replaces) the item of an AOI-year and refreshes the AOI's collection (``catalog.json``).

    Call it after the year's COGs, quicklooks and styles are in place (their sizes and checksums
    go into the item).

    Args:
        data_dir: The platform's data directory.
        aoi: AOI name.
        year: Map year.
        grid: The AOI grid.
        paths: The year's output files (the item goes to ``paths.stac_item``).
        model_id: The model the map came from.
        provenance: ``model_card`` (path), ``cubes`` (paths) and ``scenes`` (ids).
        n_changes: Change polygons found in the year.
        regions: The change polygons (grid CRS); given, they are written as GeoJSON next to the
            change COG and become the item's label asset.

    Returns:
        The item's path.
    """
    if regions is not None:
        write_change_labels(labels_path(paths), regions, grid)
    item = build_year_item(aoi, year, grid, paths, model_id, provenance, n_changes, regions)
    write_catalog(data_dir, aoi, [item])
    return paths.stac_item


def catalog_root(data_dir: Path, aoi: str) -> Path:
    """The AOI's catalog folder (``catalog.json``, the years below)."""
    return data_dir / "maps" / aoi


def summary_plot_path(data_dir: Path, aoi: str) -> Path:
    """The AOI's summary plot (:func:`eo_tasks.maps.plots.write_summary_plot`), next to ``catalog.json``."""
    return catalog_root(data_dir, aoi) / f"summary_{aoi}.png"


def _current_items(root: Path, aoi: str) -> list[pystac.Item]:
    """The items the collection links now (or, for a catalog of an older layout, found below it)."""
    root_file = root / "catalog.json"
    if root_file.is_file():
        links = json.loads(root_file.read_text()).get("links", [])
        hrefs = [root / link["href"] for link in links if link.get("rel") == "item"]
    else:
        hrefs = sorted(root.glob(f"*/{aoi}_*.json"))
    return [pystac.Item.from_file(str(h.resolve())) for h in hrefs if h.is_file()]


def write_catalog(data_dir: Path, aoi: str, items: Sequence[pystac.Item] = ()) -> Path:
    """Rewrites the AOI's root collection, linking every current item (``items`` replace same ids).

    Returns:
        The root ``catalog.json`` (a STAC Collection).
    """
    root = catalog_root(data_dir, aoi)
    by_id = {i.id: i for i in _current_items(root, aoi)}
    by_id.update({i.id: i for i in items})
    current = [by_id[k] for k in sorted(by_id)]
    boxes = [i.bbox for i in current if i.bbox]
    bbox = (
        [
            [
                min(b[0] for b in boxes),
                min(b[1] for b in boxes),
                max(b[2] for b in boxes),
                max(b[3] for b in boxes),
            ]
        ]
        if boxes
        else []
    )
    starts = [d for i in current if (d := i.common_metadata.start_datetime)]
    ends = [d for i in current if (d := i.common_metadata.end_datetime)]
    interval: list[list[dt.datetime | None]] = [[min(starts), max(ends)] if starts and ends else [None, None]]
    collection = pystac.Collection(
        id=f"{aoi}-land-cover",
        title=f"Land cover of {aoi}",
        description=f"Yearly land-cover maps and permanent changes of {aoi} (eo-platform)",
        extent=pystac.Extent(
            pystac.SpatialExtent(bbox or [[-180.0, -90.0, 180.0, 90.0]]), pystac.TemporalExtent(interval)
        ),
        license="other",
        providers=[pystac.Provider("eo-platform", roles=[pystac.ProviderRole.PROCESSOR])],
    )
    ClassificationExtension.summaries(collection, add_if_missing=True).classes = _class_objects()
    plot = summary_plot_path(data_dir, aoi)
    if plot.is_file():
        title = "Class areas per year and permanent changes per month"
        collection.add_asset(
            "summary_plot",
            pystac.Asset(f"./{plot.name}", title, media_type=pystac.MediaType.PNG, roles=["overview"]),
        )
    collection.catalog_type = pystac.CatalogType.SELF_CONTAINED
    collection.set_self_href(str(root / "catalog.json"))
    for item in current:
        href = item.get_self_href()
        collection.add_item(item)
        item.set_self_href(href)
    collection.save(pystac.CatalogType.SELF_CONTAINED, stac_io=AtomicStacIO())
    return root / "catalog.json"


def refresh_item_files(item_path: Path) -> Path:
    """Re-describes an item's files after one was rewritten (a review): size, checksum, class counts.

    The item is edited as JSON (links, extensions and everything else kept as written) and gets
    an ``updated`` timestamp; assets whose file is gone are left as they are.

    Returns:
        ``item_path``.
    """
    item = json.loads(item_path.read_text())
    for asset in item.get("assets", {}).values():
        path = (item_path.parent / asset["href"]).resolve()
        if path.is_file():
            asset["file:size"] = path.stat().st_size
            asset["file:checksum"] = SHA256_MULTIHASH + file_digest(path)
            if FILE_EXT not in item.setdefault("stac_extensions", []):
                item["stac_extensions"].append(FILE_EXT)
            if "classification:classes" in asset:
                classes = _class_objects(_histogram(path))
                asset["classification:classes"] = [c.to_dict() for c in classes]
    item["properties"]["updated"] = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
    return write_json(item_path, item, sort_keys=False)
