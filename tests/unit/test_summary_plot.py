"""The per-AOI summary PNG: class areas per year and changes per month, drawn from the catalog."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pystac
from osgeo import gdal

from eo_tasks.core.classes import CLASS_BY_NAME
from eo_tasks.maps.plots import BOTTOM, PANELS, TOP, write_summary_plot
from eo_tasks.maps.stac import summary_plot_path
from tests.fixtures.stac_offline import validate_catalog
from tests.unit.test_map_catalog import YEARS, _write_year


def test_summary_plot_draws_areas_and_changes_and_is_linked(tmp_path: Path) -> None:
    for year in YEARS:
        _write_year(tmp_path, year)

    path = write_summary_plot(tmp_path, "alps")

    assert path == summary_plot_path(tmp_path, "alps")
    dataset = gdal.Open(str(path))
    assert dataset.GetDriver().ShortName == "PNG" and dataset.RasterCount == 3
    image = np.stack([dataset.GetRasterBand(b).ReadAsArray() for b in (1, 2, 3)], axis=-1)
    left = image[TOP:BOTTOM, PANELS[0][0] : PANELS[0][1]].reshape(-1, 3)
    colours = {tuple(int(v) for v in px) for px in left}
    tree, crop = CLASS_BY_NAME["tree_cover"].rgb, CLASS_BY_NAME["cropland"].rgb
    assert tree in colours and crop in colours  # both years' class areas in their colours
    tree_px = int((left == tree).all(axis=1).sum())
    crop_px = int((left == crop).all(axis=1).sum())
    assert 4.5 < tree_px / crop_px < 6.5  # the map is 84.4 % tree cover, 15.6 % cropland: ratio 5.4
    right = image[TOP:BOTTOM, PANELS[1][0] : PANELS[1][1]].reshape(-1, 3)
    artificial = CLASS_BY_NAME["artificial"].rgb
    assert (right == artificial).all(axis=1).sum() > 0  # the changes (to artificial), one per year

    collection = pystac.read_file(str(tmp_path / "maps" / "alps" / "catalog.json"))
    assert isinstance(collection, pystac.Collection)
    assert Path(collection.assets["summary_plot"].get_absolute_href() or "") == path
    assert validate_catalog(collection) == 1 + len(YEARS)
    # the next year's catalog rewrite keeps the plot linked
    _write_year(tmp_path, 2023)
    assert "summary_plot" in json.loads((tmp_path / "maps" / "alps" / "catalog.json").read_text())["assets"]
