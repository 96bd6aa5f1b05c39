"""The STAC catalog of outputs: readable by pystac, one item per year, links back to model and cubes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pystac

from eo_tasks.core.grid import GridSpec
from eo_tasks.maps.outputs import MapPaths
from eo_tasks.maps.stac import write_year_item

GRID = GridSpec(epsg=32632, bounds=(600000.0, 5099360.0, 600640.0, 5100000.0), resolution=10.0)


def test_items_resolve_and_link_back(tmp_path: Path) -> None:
    provenance = {
        "model_card": "/models/m1/model_card.json",
        "cubes": ["/cubes/a_2021.h5", "/cubes/a_2022.h5"],
        "scenes": ["S2A_1", "LC08_2"],
    }
    for year in (2021, 2022):
        paths = MapPaths.for_year(tmp_path, "alps", year)
        write_year_item(tmp_path, "alps", year, GRID, paths, "m1", provenance, n_changes=year - 2020)
    catalog = pystac.Catalog.from_file(str(tmp_path / "maps" / "alps" / "catalog.json"))
    items = sorted(catalog.get_items(), key=lambda i: i.id)
    assert [i.id for i in items] == ["alps_2021", "alps_2022"]
    item = items[1]
    assert item.properties["eo_platform:changes"] == 2 and item.properties["eo_platform:scenes"] == [
        "S2A_1",
        "LC08_2",
    ]
    assert str(item.common_metadata.start_datetime)[:10] == "2022-01-01"
    assert (
        Path(item.assets["map"].get_absolute_href() or "")
        == MapPaths.for_year(tmp_path, "alps", 2022).classes
    )
    derived = [link.href for link in item.links if link.rel == "derived_from"]
    assert derived == ["/models/m1/model_card.json", "/cubes/a_2021.h5", "/cubes/a_2022.h5"]
    lon, lat = np.array(item.geometry["coordinates"][0]).mean(axis=0)
    assert 10.2 < lon < 10.4 and 46.0 < lat < 46.1  # UTM 32N, 600 km E, 5100 km N: the Alps near Trento
