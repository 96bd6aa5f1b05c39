"""The STAC catalog of outputs, opened with pystac: schema-valid offline, relocatable, linking back.

Validation uses pystac's JSON-schema validator with the schemas shipped in
``tests/fixtures/stac_schemas`` (STAC 1.1 core, projection, classification, file, processing,
label), so it runs without internet.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pystac
import pytest
from pystac.extensions.classification import ClassificationExtension
from pystac.extensions.file import FileExtension
from pystac.extensions.label import LabelExtension
from pystac.extensions.projection import ProjectionExtension

from eo_tasks.core.classes import CLASSES
from eo_tasks.core.files import file_digest
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.quicklook import change_quicklook, class_quicklook
from eo_tasks.maps.outputs import MapPaths, change_regions, write_change_cog, write_class_cog
from eo_tasks.maps.stac import refresh_item_files, write_year_item
from tests.fixtures.stac_offline import OfflineValidator, validate_catalog

GRID = GridSpec(epsg=32632, bounds=(600000.0, 5099360.0, 600640.0, 5100000.0), resolution=10.0)
YEARS = (2021, 2022)


def _write_year(data: Path, year: int) -> MapPaths:
    """A year's COGs (tree cover with a cropland band and one 5x5 change to artificial) and its item."""
    paths = MapPaths.for_year(data, "alps", year)
    classes = np.full(GRID.shape, 4, dtype=np.uint8)
    classes[:10] = 2
    kept = np.zeros(GRID.shape, dtype=bool)
    kept[20:25, 20:25] = True
    days = np.where(kept, 18700 + 365 * (year - 2021), 0)
    before, after = np.full(GRID.shape, 4), np.full(GRID.shape, 1)
    write_class_cog(paths.classes, classes, GRID)
    write_class_cog(paths.annual_baseline, classes, GRID)
    write_change_cog(paths.changes, days, before, after, GRID)
    class_quicklook(classes, paths.classes_png)
    change_quicklook(classes, kept, paths.changes_png)
    regions = change_regions(kept, before, after, days, GRID)
    provenance = {
        "model_card": str(data / "models" / "m1" / "model_card.json"),
        "cubes": [str(data / "cubes" / "alps" / f"alps_{year}.h5")],
        "scenes": ["S2A_1", "LC08_2"],
    }
    write_year_item(data, "alps", year, GRID, paths, "m1", provenance, len(regions), regions=regions)
    return paths


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for year in YEARS:
        _write_year(tmp_path, year)
    return tmp_path


def _collection(data: Path) -> pystac.Collection:
    collection = pystac.read_file(str(data / "maps" / "alps" / "catalog.json"))
    assert isinstance(collection, pystac.Collection)
    return collection


def test_catalog_validates_against_the_stac_and_extension_schemas(data: Path) -> None:
    collection = _collection(data)
    assert validate_catalog(collection) == 1 + len(YEARS)
    item = next(collection.get_items())
    used = set(item.stac_extensions)
    assert {s.split("/")[3] for s in used} == {"projection", "processing", "file", "classification", "label"}
    # the validator really checks: a class colour that is no hex colour fails the classification schema
    broken = item.to_dict()
    broken["assets"]["map"]["classification:classes"][0]["color_hint"] = "red"
    with pytest.raises(pystac.STACValidationError, match="classification"):
        pystac.validation.validate_dict(broken, validator=OfflineValidator())


def test_items_describe_the_maps_classes_projection_files_and_lineage(data: Path) -> None:
    collection = _collection(data)
    summary = ClassificationExtension.summaries(collection).classes or []
    assert [(c.value, c.name, f"#{c.color_hint}".lower()) for c in summary] == [
        (c.code, c.name, c.color) for c in CLASSES
    ]
    items = sorted(collection.get_items(), key=lambda i: i.id)
    assert [i.id for i in items] == ["alps_2021", "alps_2022"]
    item = items[1]
    proj = ProjectionExtension.ext(item)
    assert proj.code == "EPSG:32632" and proj.shape == [64, 64]
    assert proj.transform == [10.0, 0.0, 600000.0, 0.0, -10.0, 5100000.0]
    cog = MapPaths.for_year(data, "alps", 2022).classes
    asset = item.assets["map"]
    assert Path(asset.get_absolute_href() or "") == cog
    assert FileExtension.ext(asset).size == cog.stat().st_size
    assert FileExtension.ext(asset).checksum == "1220" + file_digest(cog)
    counts = {c.name: c.count for c in ClassificationExtension.ext(asset).classes or []}
    assert counts["cropland"] == 640 and counts["tree_cover"] == 64 * 64 - 640
    assert item.properties["processing:software"]["eo-platform"]
    assert "m1" in item.properties["processing:lineage"] and item.properties["eo_platform:model_id"] == "m1"
    assert item.properties["eo_platform:scenes"] == ["S2A_1", "LC08_2"]
    assert str(item.common_metadata.start_datetime)[:10] == "2022-01-01"
    lon, lat = np.array(item.geometry["coordinates"][0]).mean(axis=0)
    assert 10.2 < lon < 10.4 and 46.0 < lat < 46.1  # UTM 32N, 600 km E, 5100 km N: the Alps near Trento


def test_changes_are_a_label_asset_of_polygons_in_lonlat(data: Path) -> None:
    item = sorted(_collection(data).get_items(), key=lambda i: i.id)[1]
    label = LabelExtension.ext(item)
    assert label.label_type == "vector" and label.label_properties == ["to_class"]
    assert [(c.name, c.count) for c in (label.label_overviews or [])[0].counts or []] == [("artificial", 1)]
    asset = item.assets["change_polygons"]
    assert "labels" in (asset.roles or [])
    features = json.loads(Path(asset.get_absolute_href() or "").read_text())["features"]
    assert len(features) == 1
    props = features[0]["properties"]
    assert (props["from_class"], props["to_class"], props["area_m2"]) == ("tree_cover", "artificial", 2500.0)
    lon, lat = np.array(features[0]["geometry"]["coordinates"][0][0]).mean(axis=0)
    assert 10.29 < lon < 10.31 and 46.04 < lat < 46.05


def test_catalog_is_relocatable_and_derived_from_links_are_relative(
    data: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("copy") / "somewhere" / "else"
    shutil.copytree(data / "maps", elsewhere)
    text = "".join(p.read_text() for p in elsewhere.rglob("*.json"))
    assert str(data) not in text  # no absolute path of the original location
    collection = pystac.read_file(str(elsewhere / "alps" / "catalog.json"))
    assert isinstance(collection, pystac.Collection)
    assert validate_catalog(collection) == 3
    for item in collection.get_items():
        for asset in item.assets.values():
            assert Path(asset.get_absolute_href() or "").is_file(), asset.href
    item = pystac.Item.from_file(str(MapPaths.for_year(data, "alps", 2022).stac_item))
    derived = {link.href: link.get_absolute_href() for link in item.links if link.rel == "derived_from"}
    assert set(derived) == {"../../../models/m1/model_card.json", "../../../cubes/alps/alps_2022.h5"}
    assert str(data / "models" / "m1" / "model_card.json") in derived.values()


def test_rewriting_a_year_replaces_its_item_and_keeps_the_others(data: Path) -> None:
    _write_year(data, 2022)
    _write_year(data, 2023)
    collection = _collection(data)
    assert sorted(i.id for i in collection.get_items()) == ["alps_2021", "alps_2022", "alps_2023"]
    years = collection.extent.temporal.intervals[0]
    assert (years[0].year, years[1].year) == (2021, 2023)  # type: ignore[union-attr]
    assert validate_catalog(collection) == 4


def test_a_reviewed_cog_gets_its_size_and_checksum_refreshed(data: Path) -> None:
    paths = MapPaths.for_year(data, "alps", 2021)
    classes = np.full(GRID.shape, 8, dtype=np.uint8)  # the reviewer turned everything into water
    write_class_cog(paths.classes, classes, GRID)
    stale = json.loads(paths.stac_item.read_text())["assets"]["map"]["file:checksum"]
    assert stale != "1220" + file_digest(paths.classes)

    refresh_item_files(paths.stac_item)

    item = pystac.Item.from_file(str(paths.stac_item))
    assert FileExtension.ext(item.assets["map"]).checksum == "1220" + file_digest(paths.classes)
    assert FileExtension.ext(item.assets["map"]).size == paths.classes.stat().st_size
    assert item.properties["updated"]
    counts = {c.name: c.count for c in ClassificationExtension.ext(item.assets["map"]).classes or []}
    assert counts["water"] == 64 * 64 and counts["tree_cover"] == 0
    assert validate_catalog(_collection(data)) == 1 + len(YEARS)
