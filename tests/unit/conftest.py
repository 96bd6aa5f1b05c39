"""Helpers the unit tests share: tiny cube files of the platform's format."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import numpy as np

from eo_tasks.core.cube import SCALE, Cube, to_int16
from eo_tasks.preprocess.scene_prep import CUBE_BANDS

PER_YEAR = 24


def write_cube(path: Path, year: int, reflectance: np.ndarray) -> Cube:
    """A cube of one year, ``(24, rows, cols, bands)`` reflectance (NaN: unobserved), on a 10 m UTM grid."""
    dates = [dt.date(year, 1, 8) + dt.timedelta(days=int(15.2 * k)) for k in range(PER_YEAR)]
    with h5py.File(path, "w") as f:
        f.create_dataset("reflectance", data=to_int16(reflectance)).attrs.update(scale_factor=SCALE)
        f.create_dataset("valid", data=np.isfinite(reflectance[..., 0]).astype(np.uint8))
        f.create_dataset("dates", data=[d.isoformat().encode() for d in dates])
        f.attrs.update(
            epsg=32632,
            geotransform=(600000.0, 10.0, 0.0, 5100000.0, 0.0, -10.0),
            band_names=list(CUBE_BANDS),
            year=year,
        )
    return Cube.open(path)
