"""Quicklooks are valid paletted PNGs carrying the platform's class colours, read back byte by byte."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from osgeo import gdal

from eo_tasks.core.classes import CLASSES
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.quicklook import class_quicklook, raster_quicklook
from eo_tasks.trainset import write_class_raster

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(data: bytes) -> dict[bytes, bytes]:
    """The PNG's chunks by type (each CRC checked)."""
    assert data[:8] == PNG_SIGNATURE
    chunks, offset = {}, 8
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, body = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + body) == crc, kind
        chunks.setdefault(kind, b"")
        chunks[kind] += body
        offset += 12 + length
    return chunks


def _class_map() -> np.ndarray:
    classes = np.zeros((40, 50), dtype=np.uint8)
    for cls in CLASSES:
        classes[cls.code * 4 : cls.code * 4 + 4, :] = cls.code  # a stripe per class, row 0-3 no data
    return classes


def test_quicklook_is_a_paletted_png_with_the_class_colours(tmp_path: Path) -> None:
    path = class_quicklook(_class_map(), tmp_path / "map.png")

    chunks = _chunks(path.read_bytes())
    width, height, depth, colour_type = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (width, height, depth, colour_type) == (50, 40, 8, 3)  # colour type 3: palette
    palette = chunks[b"PLTE"]
    for cls in CLASSES:
        rgb = tuple(palette[3 * cls.code : 3 * cls.code + 3])
        assert "#{:02x}{:02x}{:02x}".format(*rgb) == cls.color, cls.name
    assert chunks[b"tRNS"][0] == 0  # no data is transparent
    pixels = zlib.decompress(chunks[b"IDAT"])
    rows = [pixels[r * 51 + 1 : (r + 1) * 51] for r in range(40)]  # one filter byte per row
    assert [row[0] for row in rows] == _class_map()[:, 0].tolist()
    assert list(tmp_path.iterdir()) == [path]  # no temporary file, no .aux.xml left behind


def test_gdal_reads_the_quicklook_back_as_the_same_classes(tmp_path: Path) -> None:
    path = class_quicklook(_class_map(), tmp_path / "map.png")
    dataset = gdal.Open(str(path))
    band = dataset.GetRasterBand(1)
    assert dataset.GetDriver().ShortName == "PNG"
    assert band.GetColorInterpretation() == gdal.GCI_PaletteIndex
    np.testing.assert_array_equal(band.ReadAsArray(), _class_map())


def test_large_maps_are_decimated_by_nearest_neighbour_from_the_geotiff(tmp_path: Path) -> None:
    classes = np.repeat(np.repeat(_class_map(), 10, axis=0), 10, axis=1)  # 400 x 500
    grid = GridSpec(epsg=32632, bounds=(600000.0, 5096000.0, 605000.0, 5100000.0), resolution=10.0)
    tif = write_class_raster(tmp_path / "map.tif", classes, grid)

    png = raster_quicklook(tif, tmp_path / "map.png", max_px=100)

    small = gdal.Open(str(png)).ReadAsArray()  # a dataset's own ReadAsArray keeps it alive
    assert small.shape == (80, 100)
    assert set(np.unique(small).tolist()) == set(np.unique(classes).tolist())  # no blended codes
    geotiff = gdal.Open(str(tif))  # held: a band must not outlive its dataset
    assert geotiff.GetRasterBand(1).GetColorTable().GetColorEntry(4)[:3] == (0, 100, 0)
