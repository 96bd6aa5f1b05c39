"""A static STAC catalog of the platform's outputs: one item per AOI and map year.

``<data>/maps/<aoi>/catalog.json`` links the items ``<year>/<aoi>_<year>.json``; each item carries
the map and change COGs and their quicklooks as assets, and links back to what made it (the
model card, the datacubes, the scenes), so QGIS, STAC Browser or pystac can find and trace every
map without the database. Each file is written under a temporary name and renamed.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from eo_tasks.core.files import write_json
from eo_tasks.core.grid import GridSpec
from eo_tasks.maps.outputs import MapPaths

STAC_VERSION = "1.0.0"
PROJECTION_EXT = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"


def footprint_lonlat(grid: GridSpec) -> list[list[float]]:
    """The grid's outline as a closed lon/lat ring (EPSG:4326, corners transformed)."""
    from osgeo import osr

    source, target = osr.SpatialReference(), osr.SpatialReference()
    source.ImportFromEPSG(grid.epsg)
    target.ImportFromEPSG(4326)
    target.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    transform = osr.CoordinateTransformation(source, target)
    xmin, ymin, xmax, ymax = grid.bounds
    corners = [(xmin, ymin), (xmax, ymin), (xmax, ymax), (xmin, ymax), (xmin, ymin)]
    return [[round(v, 7) for v in transform.TransformPoint(x, y)[:2]] for x, y in corners]


def _asset(path: Path, item_dir: Path, title: str, media: str, roles: list[str]) -> dict[str, Any]:
    return {"href": os.path.relpath(path, item_dir), "type": media, "title": title, "roles": roles}


def write_year_item(
    data_dir: Path,
    aoi: str,
    year: int,
    grid: GridSpec,
    paths: MapPaths,
    model_id: str | None,
    provenance: dict[str, Any],
    n_changes: int,
) -> Path:
    """Writes (or replaces) the item of an AOI-year and refreshes the AOI's catalog.

    Args:
        data_dir: The platform's data directory.
        aoi: AOI name.
        year: Map year.
        grid: The AOI grid.
        paths: The year's output files.
        model_id: The model the map came from.
        provenance: ``model_card`` (path), ``cubes`` (paths) and ``scenes`` (ids).
        n_changes: Change polygons found in the year.

    Returns:
        The item's path.
    """
    ring = footprint_lonlat(grid)
    lons, lats = [p[0] for p in ring], [p[1] for p in ring]
    cog = "image/tiff; application=geotiff; profile=cloud-optimized"
    item_dir = paths.stac_item.parent
    links: list[dict[str, Any]] = [
        {"rel": "root", "href": "../catalog.json", "type": "application/json"},
        {"rel": "parent", "href": "../catalog.json", "type": "application/json"},
    ]
    if provenance.get("model_card"):
        links.append(
            {"rel": "derived_from", "href": str(provenance["model_card"]), "title": f"model {model_id}"}
        )
    links += [
        {"rel": "derived_from", "href": str(c), "title": "datacube (HDF5)"}
        for c in provenance.get("cubes", [])
    ]
    item = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": [PROJECTION_EXT],
        "id": f"{aoi}_{year}",
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "bbox": [min(lons), min(lats), max(lons), max(lats)],
        "properties": {
            "datetime": None,
            "start_datetime": f"{year}-01-01T00:00:00Z",
            "end_datetime": f"{year}-12-31T23:59:59Z",
            "created": dt.datetime.now(dt.UTC).isoformat(),
            "proj:epsg": grid.epsg,
            "proj:shape": list(grid.shape),
            "eo_platform:aoi": aoi,
            "eo_platform:model_id": model_id,
            "eo_platform:changes": n_changes,
            "eo_platform:scenes": list(provenance.get("scenes", [])),
        },
        "assets": {
            "map": _asset(paths.classes, item_dir, f"Land cover {year}", cog, ["data"]),
            "changes": _asset(
                paths.changes, item_dir, "Permanent changes: date, from-class, to-class", cog, ["data"]
            ),
            "map_quicklook": _asset(paths.classes_png, item_dir, "Map quicklook", "image/png", ["overview"]),
            "changes_quicklook": _asset(
                paths.changes_png, item_dir, "Changes quicklook", "image/png", ["overview"]
            ),
            "baseline": _asset(
                paths.annual_baseline,
                item_dir,
                "Per-year classifier without sequence analysis",
                cog,
                ["data", "baseline"],
            ),
        },
        "links": [*links, {"rel": "self", "href": paths.stac_item.name, "type": "application/json"}],
    }
    write_json(paths.stac_item, item, sort_keys=False)
    write_catalog(data_dir, aoi)
    return paths.stac_item


def write_catalog(data_dir: Path, aoi: str) -> Path:
    """Rewrites ``<data>/maps/<aoi>/catalog.json`` to link every year's item present."""
    root = data_dir / "maps" / aoi
    items = sorted(root.glob(f"*/{aoi}_*.json"))
    catalog = {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": f"{aoi}-land-cover",
        "description": f"Yearly land-cover maps and permanent changes of {aoi} (eo-platform)",
        "links": [
            {"rel": "root", "href": "./catalog.json", "type": "application/json"},
            {"rel": "self", "href": "./catalog.json", "type": "application/json"},
            *({"rel": "item", "href": f"./{p.relative_to(root)}", "type": "application/json"} for p in items),
        ],
    }
    write_json(root / "catalog.json", catalog, sort_keys=False)
    return root / "catalog.json"
