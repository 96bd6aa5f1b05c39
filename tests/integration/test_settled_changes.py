"""The previous year's changes are not looked for again where the stored maps already hold them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.grid import GridSpec
from eo_tasks.maps import pipeline
from eo_tasks.maps.outputs import write_class_cog
from eo_tasks.store.maps import replace_year

GRID = GridSpec(epsg=32632, bounds=(600000.0, 5099840.0, 600160.0, 5100000.0), resolution=10.0)
CONFIG = AOIConfig.from_dict(
    {
        "name": "settled",
        "grid": {"epsg": 32632, "bounds": list(GRID.bounds), "resolution": 10},
        "first_year": 2020,
        "sources": [{"provider": "local", "path": "/archive/catalog.json"}],
        "reference": {"path": "/ref/worldcover.tif", "legend": "worldcover"},
    }
)


def _store(conn: Any, folder: Path, year: int, classes: np.ndarray) -> None:
    cog = write_class_cog(folder / f"map_{year}.tif", classes, GRID)
    replace_year(conn, CONFIG.name, year, str(cog), None, {}, GRID, [])


def test_settled_is_where_the_stored_maps_differ_and_everywhere_without_the_older_map(
    conn: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    forest = np.full(GRID.shape, 4, np.uint8)
    cleared = forest.copy()
    cleared[:4, :4] = 3  # a clear-cut the map of 2021 holds
    _store(conn, tmp_path, 2021, cleared)
    with caplog.at_level(logging.WARNING, logger=pipeline.__name__):
        assert pipeline._settled(conn, CONFIG, 2021, cleared).all()  # 2020 has no map: nothing looked for
    assert "settled has no map of 2020" in caplog.text and "not looked for again" in caplog.text
    _store(conn, tmp_path, 2020, forest)
    settled = pipeline._settled(conn, CONFIG, 2021, cleared)
    assert settled[:4, :4].all() and settled.sum() == 16
