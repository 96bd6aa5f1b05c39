"""The platform's land-cover classes and the legends that map reference products onto them.

Nine classes, the granularity of ESA WorldCover's main classes (and of the published method's
experiments); CORINE's finer codes fold into them. A legend is a YAML file in ``legends/``:
reference code → platform class name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from eo_tasks.core.errors import ConfigError

LEGENDS_DIR = Path(__file__).resolve().parent / "legends"


@dataclass(frozen=True)
class LandCoverClass:
    """One class of the platform's maps.

    Attributes:
        code: The pixel value in maps (1..255; 0 is no data).
        name: Machine name (``[0-9A-Za-z_-]``: STAC classification ``name``, JSON keys, SQL rows).
        color: ``#rrggbb``, used by colour tables, quicklooks, QGIS styles and STAC ``color_hint``.
        title: What people read: GDAL category names, QGIS legends, the review UI, plots.
    """

    code: int
    name: str
    color: str
    title: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        """The colour as ``(r, g, b)`` bytes."""
        return int(self.color[1:3], 16), int(self.color[3:5], 16), int(self.color[5:7], 16)


CLASSES: tuple[LandCoverClass, ...] = (
    LandCoverClass(1, "artificial", "#fa0000", "Artificial surfaces"),
    LandCoverClass(2, "cropland", "#f096ff", "Cropland"),
    LandCoverClass(3, "grassland", "#ffff4c", "Grassland"),
    LandCoverClass(4, "tree_cover", "#006400", "Tree cover"),
    LandCoverClass(5, "shrubland", "#ffbb22", "Shrubland"),
    LandCoverClass(6, "bare", "#b4b4b4", "Bare / sparse vegetation"),
    LandCoverClass(7, "snow_ice", "#f0f0f0", "Snow and ice"),
    LandCoverClass(8, "water", "#0064c8", "Permanent water bodies"),
    LandCoverClass(9, "wetland", "#0096a0", "Herbaceous wetland"),
)
NODATA_CLASS = 0
CLASS_BY_NAME = {c.name: c for c in CLASSES}
CLASS_BY_CODE = {c.code: c for c in CLASSES}
NODATA_TITLE = "No data"


def category_names() -> list[str]:
    """Names indexed by pixel value, 0 .. the highest code (GDAL category names; gaps are empty)."""
    names = [""] * (max(CLASS_BY_CODE) + 1)
    names[NODATA_CLASS] = NODATA_TITLE
    for cls in CLASSES:
        names[cls.code] = cls.title
    return names


@dataclass(frozen=True)
class Legend:
    """Maps a reference product's codes to platform class codes.

    Attributes:
        name: The product, e.g. ``worldcover``.
        mapping: Reference code → platform class code.
        nodata: The reference code meaning "no data" (becomes class 0), if any.
    """

    name: str
    mapping: dict[int, int]
    nodata: int | None = None

    @classmethod
    def load(cls, name_or_path: str) -> Legend:
        """Loads a shipped legend by name (``worldcover``, ``corine``) or a YAML file by path."""
        path = LEGENDS_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            path = Path(name_or_path)
        if not path.is_file():
            shipped = sorted(p.stem for p in LEGENDS_DIR.glob("*.yaml"))
            raise ConfigError(f"legend {name_or_path!r} not found (shipped legends: {', '.join(shipped)})")
        data = yaml.safe_load(path.read_text())
        mapping: dict[int, int] = {}
        for code, class_name in data["codes"].items():
            if class_name not in CLASS_BY_NAME:
                raise ConfigError(f"{path}: codes.{code}: unknown class {class_name!r}")
            mapping[int(code)] = CLASS_BY_NAME[class_name].code
        nodata = data.get("nodata")
        return cls(
            name=str(data.get("name", path.stem)),
            mapping=mapping,
            nodata=None if nodata is None else int(nodata),
        )

    def to_platform(self, codes: np.ndarray) -> np.ndarray:
        """Translates an array of reference codes to platform class codes.

        Args:
            codes: Reference codes (the legend's ``nodata`` code becomes class 0).

        Returns:
            uint8 array of platform class codes.

        Raises:
            ConfigError: If the array holds a code the legend does not know.
        """
        values = np.unique(codes)
        unknown = [int(v) for v in values if int(v) not in self.mapping and v != self.nodata]
        if unknown:
            raise ConfigError(f"legend {self.name!r} has no entry for reference code(s) {unknown}")
        lut = np.zeros(int(values.max()) + 1, dtype=np.uint8)
        for code, cls_code in self.mapping.items():
            if code < lut.size:
                lut[code] = cls_code
        return lut[codes]

    def code_for(self, class_code: int) -> int:
        """The first reference code that maps to ``class_code`` (for writing reference maps)."""
        for code, mapped in self.mapping.items():
            if mapped == class_code:
                return code
        raise ConfigError(f"legend {self.name!r} has no code for class {class_code}")
