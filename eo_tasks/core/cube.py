"""The HDF5 datacube contract: its layout, int16 scaling, paths, and the reader every stage uses.

Besides the platform's own layout (``reflectance``, ``valid``, ``dates``, file attributes; see
:mod:`eo_tasks.preprocess.datacube`), a cube follows the CF conventions as netCDF-4 readers expect
them (:func:`write_cf_layout`): dimension scales ``time``/``y``/``x``/``band`` attached to every
dataset, ``x``/``y`` cell centres in the grid's CRS, ``time`` in days since 1970-01-01, and a
``spatial_ref`` grid mapping named by ``grid_mapping``, so ``xarray.open_dataset(path,
engine="h5netcdf")`` or QGIS place the cube on the map.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCALE = 1e-4
FILL = -32768
CF_EPOCH = dt.date(1970, 1, 1)
CF_TIME_UNITS = "days since 1970-01-01"


def to_int16(reflectance: np.ndarray) -> np.ndarray:
    """Reflectance → the cube's scaled int16 (NaN → ``FILL``)."""
    scaled = np.round(np.clip(reflectance / SCALE, -32767, 32767))
    return np.where(np.isfinite(reflectance), scaled, FILL).astype(np.int16)


def from_int16(stored: np.ndarray) -> np.ndarray:
    """The cube's scaled int16 → float32 reflectance (``FILL`` → NaN)."""
    return np.where(stored == FILL, np.nan, stored * np.float32(SCALE)).astype(np.float32)


@dataclass(frozen=True)
class Cube:
    """A datacube opened for reading (lazy: data stays in the file)."""

    path: Path
    dates: list[dt.date]
    band_names: list[str]
    epsg: int
    geotransform: tuple[float, ...]
    shape: tuple[int, int, int, int]
    attrs: dict[str, Any]

    @classmethod
    def open(cls, path: Path) -> Cube:
        """Reads the cube's metadata."""
        import h5py

        with h5py.File(path, "r") as f:
            return cls(
                path=path,
                dates=[dt.date.fromisoformat(d.decode()) for d in f["dates"][:]],
                band_names=list(f.attrs["band_names"]),
                epsg=int(f.attrs["epsg"]),
                geotransform=tuple(float(v) for v in f.attrs["geotransform"]),
                shape=tuple(f["reflectance"].shape),
                attrs={k: f.attrs[k] for k in f.attrs},
            )

    def read(self, rows: slice = slice(None), cols: slice = slice(None)) -> tuple[np.ndarray, np.ndarray]:
        """``(reflectance, valid)`` of a window, all dates, reflectance as float32 (NaN: never observed)."""
        stored, valid = self.read_stored(rows, cols)
        return from_int16(stored), valid

    def read_stored(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """``(reflectance, valid)`` of a window as stored: scaled int16 (``FILL``: never observed)."""
        import h5py

        with h5py.File(self.path, "r") as f:
            return f["reflectance"][:, rows, cols, :], f["valid"][:, rows, cols].astype(bool)

    def read_pixels(self, rows: slice, cols: slice, where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(reflectance, valid)`` of the pixels ``where`` of a window: ``(dates, pixels, bands)``.

        Only the chosen pixels are converted to float32: a change region's ring of stable ground
        is a few hundred pixels of a box of thousands.
        """
        stored, valid = self.read_stored(rows, cols)
        return from_int16(stored[:, where]), valid[:, where]


@dataclass(frozen=True, eq=False)
class HeldWindow(Cube):
    """A cube with one window of it held in memory: reads inside the window are slices of it.

    Reads that reach outside the window go to ``source``, so a caller need not know the window.
    """

    source: Cube
    rows: slice
    cols: slice
    stored: np.ndarray
    valid: np.ndarray

    @classmethod
    def read_from(cls, cube: Cube, rows: slice, cols: slice) -> HeldWindow:
        """Reads the window ``rows`` × ``cols`` (slices with explicit, in-grid bounds) of ``cube``."""
        stored, valid = cube.read_stored(rows, cols)
        fields = {k: getattr(cube, k) for k in Cube.__dataclass_fields__}
        return cls(**fields, source=cube, rows=rows, cols=cols, stored=stored, valid=valid)

    def read_stored(self, rows: slice, cols: slice) -> tuple[np.ndarray, np.ndarray]:
        """As :meth:`Cube.read_stored`; a slice of the held window where the window holds it all."""
        inside = (
            rows.start is not None
            and cols.start is not None
            and self.rows.start <= rows.start <= rows.stop <= self.rows.stop
            and self.cols.start <= cols.start <= cols.stop <= self.cols.stop
        )
        if not inside:
            return self.source.read_stored(rows, cols)
        r = slice(rows.start - self.rows.start, rows.stop - self.rows.start)
        c = slice(cols.start - self.cols.start, cols.stop - self.cols.start)
        return self.stored[:, r, c], self.valid[:, r, c]


def cube_path(data_dir: Path, aoi: str, year: int) -> Path:
    """Where the cube of an AOI and year lives: ``<data>/cubes/<aoi>/<aoi>_<year>.h5``."""
    return data_dir / "cubes" / aoi / f"{aoi}_{year}.h5"


def _grid_mapping(epsg: int) -> dict[str, Any]:
    """CF grid-mapping attributes of an EPSG CRS: ``crs_wkt`` always, CF parameters where known."""
    from osgeo import osr

    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    wkt = srs.ExportToWkt()
    attrs: dict[str, Any] = {"crs_wkt": wkt, "spatial_ref": wkt, "epsg_code": f"EPSG:{epsg}"}
    if srs.IsGeographic():
        attrs["grid_mapping_name"] = "latitude_longitude"
    elif srs.GetAttrValue("PROJECTION") == "Transverse_Mercator":
        attrs.update(
            grid_mapping_name="transverse_mercator",
            scale_factor_at_central_meridian=srs.GetProjParm(osr.SRS_PP_SCALE_FACTOR, 1.0),
            longitude_of_central_meridian=srs.GetProjParm(osr.SRS_PP_CENTRAL_MERIDIAN, 0.0),
            latitude_of_projection_origin=srs.GetProjParm(osr.SRS_PP_LATITUDE_OF_ORIGIN, 0.0),
            false_easting=srs.GetProjParm(osr.SRS_PP_FALSE_EASTING, 0.0),
            false_northing=srs.GetProjParm(osr.SRS_PP_FALSE_NORTHING, 0.0),
        )
    attrs["semi_major_axis"] = srs.GetSemiMajor()
    attrs["inverse_flattening"] = srs.GetInvFlattening()
    return attrs


def write_cf_layout(
    f: Any, epsg: int, geotransform: tuple[float, ...], dates: list[dt.date], band_names: list[str]
) -> None:
    """Adds the CF coordinates, dimension scales and grid mapping to an open cube file (``h5py.File``).

    Args:
        f: The cube, open for writing, with ``reflectance`` (time, y, x, band) and ``valid``
            (time, y, x) and the per-time datasets already written.
        epsg: The grid's CRS.
        geotransform: GDAL geotransform of the grid (north up).
        dates: The composites' centre dates (the time axis).
        band_names: The band axis.
    """
    n_time, rows, cols, _ = f["reflectance"].shape
    x0, dx, _, y0, _, dy = geotransform
    projected = epsg != 4326
    coords = {
        "time": (
            np.array([(d - CF_EPOCH).days for d in dates], dtype=np.int32),
            {
                "standard_name": "time",
                "long_name": "composite window centre",
                "units": CF_TIME_UNITS,
                "calendar": "proleptic_gregorian",
                "axis": "T",
            },
        ),
        "y": (
            y0 + dy * (np.arange(rows) + 0.5),
            {
                "standard_name": "projection_y_coordinate" if projected else "latitude",
                "long_name": "y coordinate of cell centre",
                "units": "m" if projected else "degrees_north",
                "axis": "Y",
            },
        ),
        "x": (
            x0 + dx * (np.arange(cols) + 0.5),
            {
                "standard_name": "projection_x_coordinate" if projected else "longitude",
                "long_name": "x coordinate of cell centre",
                "units": "m" if projected else "degrees_east",
                "axis": "X",
            },
        ),
        "band": (np.array([b.encode() for b in band_names]), {"long_name": "spectral band"}),
    }
    for name, (values, attrs) in coords.items():
        scale = f.create_dataset(name, data=values)
        scale.attrs.update(attrs)
        scale.make_scale(name)
    mapping = f.create_dataset("spatial_ref", data=np.int32(0))
    mapping.attrs.update(_grid_mapping(epsg))
    mapping.attrs["GeoTransform"] = " ".join(repr(float(v)) for v in geotransform)
    for name, dims in {"reflectance": ("time", "y", "x", "band"), "valid": ("time", "y", "x")}.items():
        for axis, dim in enumerate(dims):
            f[name].dims[axis].attach_scale(f[dim])
        f[name].attrs["grid_mapping"] = "spatial_ref"
    f["reflectance"].attrs["scale_factor"] = np.float32(SCALE)  # CF: unpacks to the attribute's type
    for name in ("band", "dates", "sensors"):
        if name in f:
            f[name].attrs["_Encoding"] = "utf-8"  # CF readers decode the byte strings to text
    f["reflectance"].attrs.update(
        {"long_name": "surface reflectance, gap-filled composite", "units": "1", "coordinates": "spatial_ref"}
    )
    f["valid"].attrs.update(
        {
            "long_name": "observed (1) or gap-filled (0)",
            "flag_values": np.array([0, 1], dtype=np.uint8),
            "flag_meanings": "gap_filled observed",
            "coordinates": "spatial_ref",
        }
    )
    for name in f:
        dataset = f[name]
        if dataset.ndim == 1 and dataset.shape[0] == n_time and name != "time":
            dataset.dims[0].attach_scale(f["time"])
    f.attrs["Conventions"] = "CF-1.8"
