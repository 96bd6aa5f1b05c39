"""A PNG summary per AOI: class areas per map year and permanent changes per month.

Drawn from the AOI's STAC catalog alone (the class counts of each year's map asset, the change
polygons' dates in the label GeoJSON), so it can be redrawn from a copied catalog. Written with
the quicklook tooling (GDAL's PNG driver, no plotting library): left, one stacked bar per year in
the class colours; right, one bar per month stacked by the class the land changed to. Years label
the bars; the numbers at the top left of each panel are the scale (hectares, changes).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.classes import CLASS_BY_CODE, CLASS_BY_NAME, CLASSES
from eo_tasks.core.quicklook import write_rgb_png
from eo_tasks.maps.stac import catalog_root, summary_plot_path, write_catalog

WIDTH, HEIGHT = 960, 400
TOP, BOTTOM = 40, 340  # plot area rows
PANELS = ((50, 450), (530, 930))  # plot area columns: class areas, changes per month
BACKGROUND, AXIS, TEXT = (255, 255, 255), (120, 120, 120), (40, 40, 40)
GLYPHS = {  # 3 x 5 digits
    "0": "111101101101111",
    "1": "010110010010111",
    "2": "111001111100111",
    "3": "111001111001111",
    "4": "101101111001001",
    "5": "111100111001111",
    "6": "111100111101111",
    "7": "111001001001001",
    "8": "111101111101111",
    "9": "111101111001111",
}


def _text(image: np.ndarray, x: int, y: int, text: str, scale: int = 2) -> None:
    for i, char in enumerate(text):
        glyph = GLYPHS.get(char)
        for k, bit in enumerate(glyph or ""):
            if bit == "1":
                r, c = y + (k // 3) * scale, x + (i * 4 + k % 3) * scale
                image[r : r + scale, c : c + scale] = TEXT


def _bars(
    image: np.ndarray, panel: tuple[int, int], stacks: list[list[tuple[float, tuple[int, int, int]]]]
) -> float:
    """Draws stacked bars (``(value, rgb)`` from the bottom) across a panel; returns the scale's top."""
    left, right = panel
    image[TOP:BOTTOM, left - 1] = AXIS
    image[BOTTOM, left - 1 : right] = AXIS
    top = max((sum(v for v, _ in stack) for stack in stacks), default=0.0) or 1.0
    slot = (right - left) / max(len(stacks), 1)
    width = max(1, min(80, int(slot * 0.75)))
    for i, stack in enumerate(stacks):
        x0 = left + int(i * slot + (slot - width) / 2)
        y = float(BOTTOM)
        for value, rgb in stack:
            height = value / top * (BOTTOM - TOP)
            image[round(y - height) : round(y), x0 : x0 + width] = rgb
            y -= height
    return top


def _read_catalog(root: Path) -> list[tuple[int, dict[str, Any], Path]]:
    catalog = json.loads((root / "catalog.json").read_text())
    items = []
    for link in catalog.get("links", []):
        if link.get("rel") == "item" and (root / link["href"]).is_file():
            path = (root / link["href"]).resolve()
            item = json.loads(path.read_text())
            items.append((int(item["properties"]["start_datetime"][:4]), item, path))
    return sorted(items, key=lambda t: t[0])


def write_summary_plot(data_dir: Path, aoi: str) -> Path:
    """Draws the AOI's class areas per year and changes per month from its catalog; call after each year.

    Returns:
        The PNG (:func:`~eo_tasks.maps.stac.summary_plot_path`), linked from the AOI's collection as
        its ``summary_plot`` asset.
    """
    items = _read_catalog(catalog_root(data_dir, aoi))
    image = np.full((HEIGHT, WIDTH, 3), BACKGROUND, dtype=np.uint8)
    areas: list[list[tuple[float, tuple[int, int, int]]]] = []
    changes: dict[tuple[int, int], dict[int, int]] = {}
    for _, item, path in items:
        pixel_ha = (
            abs(item["properties"]["proj:transform"][0] * item["properties"]["proj:transform"][4]) / 1e4
        )
        counts = {
            c["value"]: c.get("count", 0) for c in item["assets"]["map"].get("classification:classes", [])
        }
        areas.append([(counts.get(c.code, 0) * pixel_ha, c.rgb) for c in CLASSES])
        labels = item["assets"].get("change_polygons")
        if labels and (path.parent / labels["href"]).is_file():
            for feature in json.loads((path.parent / labels["href"]).read_text())["features"]:
                when = dt.date.fromisoformat(feature["properties"]["change_date"])
                to = CLASS_BY_NAME[feature["properties"]["to_class"]]
                month = changes.setdefault((when.year, when.month), {})
                month[to.code] = month.get(to.code, 0) + 1
    years = [year for year, _, _ in items]
    top = _bars(image, PANELS[0], areas)
    _text(image, PANELS[0][0], 12, str(round(top)))
    slot = (PANELS[0][1] - PANELS[0][0]) / max(len(years), 1)
    for i, year in enumerate(years):
        _text(image, int(PANELS[0][0] + (i + 0.5) * slot) - 15, BOTTOM + 12, str(year))
    if years:
        months = [(y, m) for y in range(min(years), max(years) + 1) for m in range(1, 13)]
        stacks = [
            [(float(n), CLASS_BY_CODE[code].rgb) for code, n in sorted(changes.get(month, {}).items())]
            for month in months
        ]
        top = _bars(image, PANELS[1], stacks)
        _text(image, PANELS[1][0], 12, str(round(top)))
        slot = (PANELS[1][1] - PANELS[1][0]) / len(months)
        for i, (tick_year, tick_month) in enumerate(months):
            if tick_month == 1:
                image[BOTTOM : BOTTOM + 6, int(PANELS[1][0] + i * slot)] = AXIS
                _text(image, int(PANELS[1][0] + i * slot) + 2, BOTTOM + 12, str(tick_year))
    path = write_rgb_png(image, summary_plot_path(data_dir, aoi))
    write_catalog(data_dir, aoi)  # links the plot
    return path
