"""Small GDAL helpers every stage shares: a raster band as an array, an EPSG code as WKT."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_raster(path: str | Path, band: int = 1) -> np.ndarray:
    """One band of a raster file as an array."""
    from osgeo import gdal

    gdal.UseExceptions()
    dataset = gdal.Open(str(path))  # held: a band outliving its dataset crashes GDAL
    return np.asarray(dataset.GetRasterBand(band).ReadAsArray())


def srs_wkt(epsg: int) -> str:
    """The WKT of an EPSG code's coordinate reference system."""
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    return str(srs.ExportToWkt())
