"""QGIS layer styles (``.qml``) shipped next to the map and change COGs.

QGIS loads ``<name>.qml`` automatically when it opens ``<name>.tif``, so a map opens with the
platform's class colours and names in its legend instead of numbers on a grey ramp. The style is
a paletted renderer (one entry per class, value → colour + label); the change raster's style
draws band 3 (class after the change) labelled "→ <class>", the other bands stay readable in
the identify tool (their descriptions name them).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from eo_tasks.core.classes import CLASSES
from eo_tasks.core.files import atomic_path

QGIS_VERSION = "3.28.0"  # the oldest LTR whose paletted renderer reads this layout


def qml_path(cog: Path) -> Path:
    """The style QGIS picks up for a COG (same name, ``.qml``)."""
    return cog.with_suffix(".qml")


def _paletted_style(band: int, labels: dict[int, str]) -> ET.Element:
    qgis = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology")
    pipe = ET.SubElement(qgis, "pipe")
    renderer = ET.SubElement(
        pipe, "rasterrenderer", type="paletted", band=str(band), opacity="1", alphaBand="-1", nodataColor=""
    )
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for cls in CLASSES:
        ET.SubElement(
            palette, "paletteEntry", value=str(cls.code), color=cls.color, alpha="255", label=labels[cls.code]
        )
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(qgis, "blendMode").text = "0"
    return qgis


def _write(path: Path, root: ET.Element) -> Path:
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    with atomic_path(path) as tmp:
        tmp.write_text(f"<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n{body}\n")
    return path


def write_class_style(cog: Path) -> Path:
    """Writes the QGIS style of a class map COG (paletted: class colours, class titles)."""
    return _write(qml_path(cog), _paletted_style(1, {c.code: c.title for c in CLASSES}))


def write_change_style(cog: Path) -> Path:
    """Writes the QGIS style of a change COG (band 3, the class after the change, in its colour)."""
    return _write(qml_path(cog), _paletted_style(3, {c.code: f"→ {c.title}" for c in CLASSES}))
