"""Map and change COGs name their classes as GIS tools read them: GDAL categories, RAT, QGIS style."""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from osgeo import gdal

from eo_tasks.core.classes import CLASSES
from eo_tasks.core.grid import GridSpec
from eo_tasks.maps.outputs import write_change_cog, write_class_cog
from eo_tasks.maps.styles import qml_path

GRID = GridSpec(epsg=32632, bounds=(600000.0, 5099360.0, 600640.0, 5100000.0), resolution=10.0)
TITLES = [c.title for c in CLASSES]


def _classes() -> np.ndarray:
    classes = np.zeros(GRID.shape, dtype=np.uint8)
    for cls in CLASSES:
        classes[cls.code * 6 : cls.code * 6 + 6] = cls.code
    return classes


def test_gdalinfo_reports_the_class_names_of_a_map(tmp_path: Path) -> None:
    cog = write_class_cog(tmp_path / "lc_a_2021.tif", _classes(), GRID)

    info = json.loads(subprocess.run(["gdalinfo", "-json", str(cog)], capture_output=True, check=True).stdout)
    band = info["bands"][0]
    assert band["categories"] == ["No data", *TITLES]
    assert info["metadata"]["IMAGE_STRUCTURE"]["LAYOUT"] == "COG"
    rows = {r["f"][0]: r["f"][1:3] for r in info["rat"]["row"]}
    assert rows == {c.code: [c.name, c.title] for c in CLASSES}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "lc_a_2021.qml",
        "lc_a_2021.tif",
        "lc_a_2021.tif.aux.xml",
    ]

    dataset = gdal.Open(str(cog))
    band = dataset.GetRasterBand(1)
    # GDAL 3.6.2's GTiff band loads the .aux.xml lazily, and GetCategoryNames alone does not trigger
    # it; anything else read first does (gdalinfo and QGIS read the description, the colour table).
    assert band.GetDescription() == "land cover class"
    assert band.GetCategoryNames()[1:] == TITLES
    np.testing.assert_array_equal(dataset.GetRasterBand(1).ReadAsArray(), _classes())


def test_palette_entries_past_the_classes_are_white_not_black(tmp_path: Path) -> None:
    """A TIFF palette has no alpha (GDAL reads 255): unused entries are white, value 0 is no data."""
    cog = write_class_cog(tmp_path / "lc.tif", _classes(), GRID)
    dataset = gdal.Open(str(cog))
    table = dataset.GetRasterBand(1).GetColorTable()
    assert table.GetCount() == 256
    assert table.GetColorEntry(4) == (0, 100, 0, 255)
    assert dataset.GetRasterBand(1).GetNoDataValue() == 0
    unused = {table.GetColorEntry(v) for v in range(len(CLASSES) + 1, 256)}
    assert unused == {(255, 255, 255, 255)}


def test_the_qgis_style_is_a_paletted_renderer_with_names_and_colours(tmp_path: Path) -> None:
    cog = write_class_cog(tmp_path / "lc.tif", _classes(), GRID)
    style = ET.parse(qml_path(cog)).getroot()
    renderer = style.find("pipe/rasterrenderer")
    assert renderer is not None and renderer.get("type") == "paletted" and renderer.get("band") == "1"
    entries = [
        (int(e.get("value", "")), e.get("color"), e.get("label")) for e in renderer.iter("paletteEntry")
    ]
    assert entries == [(c.code, c.color, c.title) for c in CLASSES]


def test_the_change_cog_names_the_classes_before_and_after(tmp_path: Path) -> None:
    days = np.zeros(GRID.shape, dtype=np.int32)
    days[10:20, 10:20] = 19000
    cog = write_change_cog(tmp_path / "changes.tif", days, np.full_like(days, 4), np.full_like(days, 1), GRID)

    dataset = gdal.Open(str(cog))
    before, after = dataset.GetRasterBand(2), dataset.GetRasterBand(3)
    assert (before.GetDescription(), after.GetDescription()) == ("class before", "class after")
    assert (
        before.GetCategoryNames()[4] == "Tree cover" and after.GetCategoryNames()[1] == "Artificial surfaces"
    )
    assert dataset.GetRasterBand(1).GetUnitType() == "days since 1970-01-01"
    assert after.ReadAsArray()[15, 15] == 1 and after.ReadAsArray()[0, 0] == 0
    renderer = ET.parse(qml_path(cog)).getroot().find("pipe/rasterrenderer")
    assert renderer is not None and renderer.get("band") == "3"
    assert next(renderer.iter("paletteEntry")).get("label") == "→ Artificial surfaces"


def test_polygons_are_numbered_in_one_rasterization_the_first_winning_where_they_overlap() -> None:
    from eo_tasks.maps.review import polygon_mask, polygon_numbers

    grid = GridSpec(epsg=32632, bounds=(0.0, 0.0, 100.0, 100.0), resolution=10.0)  # 10 x 10, row 0 north

    def square(x0: float, y0: float, x1: float, y1: float) -> str:
        return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"

    first, second = square(0, 60, 40, 100), square(20, 40, 60, 80)  # overlapping on 20-40 x 60-80
    numbers = polygon_numbers([first, second], grid)
    assert numbers.dtype == np.int32 and numbers.shape == (10, 10)
    assert (numbers == 1).sum() == 16 and (numbers == 2).sum() == 16 - 4
    assert numbers[3, 2] == 1 and numbers[3, 4] == 2 and numbers[9, 9] == 0  # the overlap is the first's
    assert polygon_mask(second, grid).sum() == 16  # alone, all of it
    assert not polygon_numbers([], grid).any()
