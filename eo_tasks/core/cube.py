"""The HDF5 datacube contract: its layout, int16 scaling, paths, and the reader every stage uses."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SCALE = 1e-4
FILL = -32768


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
        import h5py

        with h5py.File(self.path, "r") as f:
            return from_int16(f["reflectance"][:, rows, cols, :]), f["valid"][:, rows, cols].astype(bool)


def cube_path(data_dir: Path, aoi: str, year: int) -> Path:
    """Where the cube of an AOI and year lives: ``<data>/cubes/<aoi>/<aoi>_<year>.h5``."""
    return data_dir / "cubes" / aoi / f"{aoi}_{year}.h5"
