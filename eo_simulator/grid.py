"""Raster grids and their coordinates: the AOI, the scene and the Landsat grids, and CRS transforms."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from osgeo import osr

osr.UseExceptions()


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: CRS, upper-left corner, pixel size and shape."""

    epsg: int
    xmin: float
    ymax: float
    resolution: float
    width: int
    height: int

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """The GDAL geotransform."""
        return (self.xmin, self.resolution, 0.0, self.ymax, 0.0, -self.resolution)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` in the grid's CRS."""
        return (
            self.xmin,
            self.ymax - self.height * self.resolution,
            self.xmin + self.width * self.resolution,
            self.ymax,
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)``."""
        return (self.height, self.width)

    def coarsened(self, factor: int) -> Grid:
        """The same extent with pixels ``factor`` times larger (shape must divide)."""
        return Grid(
            self.epsg,
            self.xmin,
            self.ymax,
            self.resolution * factor,
            self.width // factor,
            self.height // factor,
        )

    def padded(self, pixels: int) -> Grid:
        """The grid grown by ``pixels`` on every side."""
        pad = pixels * self.resolution
        return Grid(
            self.epsg,
            self.xmin - pad,
            self.ymax + pad,
            self.resolution,
            self.width + 2 * pixels,
            self.height + 2 * pixels,
        )

    def cell_bounds(self, rows: np.ndarray, cols: np.ndarray) -> list[float]:
        """Bounds ``[xmin, ymin, xmax, ymax]`` of the pixels at ``rows``/``cols`` (non-empty)."""
        res = self.resolution
        return [
            self.xmin + float(cols.min()) * res,
            self.ymax - float(rows.max() + 1) * res,
            self.xmin + float(cols.max() + 1) * res,
            self.ymax - float(rows.min()) * res,
        ]


def spatial_reference(epsg: int) -> osr.SpatialReference:
    """An osr SRS in x/y (lon/lat) axis order, whatever the EPSG definition says."""
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
    return srs


def transform_point(source_epsg: int, target_epsg: int, x: float, y: float) -> tuple[float, float]:
    """One point from one CRS to another (x/y, lon/lat order)."""
    transform = osr.CoordinateTransformation(spatial_reference(source_epsg), spatial_reference(target_epsg))
    tx, ty = transform.TransformPoint(x, y)[:2]
    return float(tx), float(ty)


def footprint(grid: Grid, epsg: int, points_per_side: int = 8) -> np.ndarray:
    """The grid's outline (densified) transformed to another CRS.

    Args:
        grid: The grid.
        epsg: Target CRS (4326 gives lon/lat).
        points_per_side: Points per edge, so curved edges are followed.

    Returns:
        (n, 2) array of x/y (lon/lat) points, closed ring, counter-clockwise.
    """
    xmin, ymin, xmax, ymax = grid.bounds
    steps = np.linspace(0.0, 1.0, points_per_side, endpoint=False)
    ring = [(xmin + s * (xmax - xmin), ymin) for s in steps]
    ring += [(xmax, ymin + s * (ymax - ymin)) for s in steps]
    ring += [(xmax - s * (xmax - xmin), ymax) for s in steps]
    ring += [(xmin, ymax - s * (ymax - ymin)) for s in steps]
    ring.append(ring[0])
    if epsg == grid.epsg:
        return np.array(ring)
    transform = osr.CoordinateTransformation(spatial_reference(grid.epsg), spatial_reference(epsg))
    return np.array([transform.TransformPoint(x, y)[:2] for x, y in ring])


def snapped_grid(points: np.ndarray, epsg: int, resolution: float, origin: float, margin_px: int) -> Grid:
    """The smallest grid aligned on ``origin + k·resolution`` that covers points plus a margin.

    Args:
        points: (n, 2) x/y points in ``epsg``.
        epsg: The grid's CRS.
        resolution: Pixel size.
        origin: Grid lines lie at ``origin + k·resolution`` (Landsat: 15 m off the 30 m multiples).
        margin_px: Extra pixels on every side.

    Returns:
        The grid.
    """
    x0 = math.floor((points[:, 0].min() - origin) / resolution) - margin_px
    x1 = math.ceil((points[:, 0].max() - origin) / resolution) + margin_px
    y0 = math.floor((points[:, 1].min() - origin) / resolution) - margin_px
    y1 = math.ceil((points[:, 1].max() - origin) / resolution) + margin_px
    return Grid(epsg, origin + x0 * resolution, origin + y1 * resolution, resolution, x1 - x0, y1 - y0)
