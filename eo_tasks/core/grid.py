"""The AOI grid (EPSG, bounds, resolution) and its spatial blocks: where every raster of an AOI lies."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.validate import check_known_keys, require_key


@dataclass(frozen=True)
class Block:
    """A window of the AOI grid: rows ``row0:row0+rows``, columns ``col0:col0+cols``."""

    row0: int
    col0: int
    rows: int
    cols: int

    def bounds(self, grid: GridSpec) -> tuple[float, float, float, float]:
        """``(xmin, ymin, xmax, ymax)`` of the block in the grid's CRS."""
        xmin, _, _, ymax = grid.bounds
        r = grid.resolution
        return (
            xmin + self.col0 * r,
            ymax - (self.row0 + self.rows) * r,
            xmin + (self.col0 + self.cols) * r,
            ymax - self.row0 * r,
        )


def blocks(grid: GridSpec, size: int) -> list[Block]:
    """Tiles the grid into blocks of at most ``size`` × ``size`` pixels, row by row."""
    rows, cols = grid.shape
    return [
        Block(r, c, min(size, rows - r), min(size, cols - c))
        for r in range(0, rows, size)
        for c in range(0, cols, size)
    ]


def epsg_is_known(code: int) -> bool:
    """Whether GDAL/PROJ knows the EPSG code as a projected or geographic CRS."""
    from osgeo import osr

    srs = osr.SpatialReference()
    try:
        return srs.ImportFromEPSG(code) == 0
    except RuntimeError:  # GDAL raises when exceptions are enabled
        return False


@dataclass(frozen=True)
class GridSpec:
    """The AOI's output grid.

    Attributes:
        epsg: Projected CRS of the grid.
        bounds: ``(xmin, ymin, xmax, ymax)`` in that CRS, multiples of ``resolution``.
        resolution: Pixel size in CRS units (10 m: the Sentinel-2 grid).
    """

    epsg: int
    bounds: tuple[float, float, float, float]
    resolution: float = 10.0

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "grid", check_crs: bool = True) -> GridSpec:
        """Validates and builds the grid (``check_crs`` asks GDAL whether the EPSG code exists)."""
        check_known_keys(data, {"epsg", "bounds", "resolution"}, where)
        try:
            epsg = int(require_key(data, "epsg", where))
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}.epsg: not an integer: {data['epsg']!r}") from err
        if check_crs and not epsg_is_known(epsg):
            raise ConfigError(f"{where}.epsg: EPSG:{epsg} is not a known coordinate reference system")
        bounds = require_key(data, "bounds", where)
        if not isinstance(bounds, list | tuple) or len(bounds) != 4:
            raise ConfigError(f"{where}.bounds: expected [xmin, ymin, xmax, ymax]")
        xmin, ymin, xmax, ymax = (float(b) for b in bounds)
        if not (xmin < xmax and ymin < ymax):
            raise ConfigError(f"{where}.bounds: min must be below max (got {list(bounds)})")
        resolution = float(data.get("resolution", 10.0))
        if resolution <= 0:
            raise ConfigError(f"{where}.resolution: must be positive")
        for value in (xmin, ymin, xmax, ymax):
            if abs(value / resolution - round(value / resolution)) > 1e-6:
                raise ConfigError(f"{where}.bounds: {value} is not a multiple of the resolution {resolution}")
        return cls(epsg=epsg, bounds=(xmin, ymin, xmax, ymax), resolution=resolution)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the grid."""
        xmin, ymin, xmax, ymax = self.bounds
        return round((ymax - ymin) / self.resolution), round((xmax - xmin) / self.resolution)

    @property
    def geotransform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL geotransform of the grid (north up)."""
        xmin, _, _, ymax = self.bounds
        return (xmin, self.resolution, 0.0, ymax, 0.0, -self.resolution)

    def footprint_wgs84(self) -> tuple[float, float, float, float]:
        """The grid's bounding box in WGS84 longitude/latitude (for catalogue searches)."""
        from osgeo import osr

        src = osr.SpatialReference()
        src.ImportFromEPSG(self.epsg)
        dst = osr.SpatialReference()
        dst.ImportFromEPSG(4326)
        for srs in (src, dst):
            srs.SetAxisMappingStrategy(osr.OAMS_TRADITIONAL_GIS_ORDER)
        transform = osr.CoordinateTransformation(src, dst)
        xmin, ymin, xmax, ymax = self.bounds
        lon_min, lat_min, lon_max, lat_max = transform.TransformBounds(xmin, ymin, xmax, ymax, 21)
        return (lon_min, lat_min, lon_max, lat_max)
