"""The scenario: every knob of a simulation, validated once and recorded in scenario.json.

A scenario is reproducible from this object alone (the seed decides every random draw), so the
same config always yields byte-identical archives and a failing test can be replayed exactly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from eo_simulator.landscapes import LANDSCAPES
from eo_simulator.lookalikes import LOOKALIKES
from eo_simulator.processes import CHANGE_PROCESSES
from eo_tasks.core.errors import ConfigError

MIN_SIZE_PX = 32
MAX_SIZE_PX = 2048  # 20 km: one acquisition then needs well under 2 GB of memory
FIRST_YEAR = 2017  # Sentinel-2A/B and Landsat-8 all flying
LAST_YEAR = 2100
MAX_S2_PER_YEAR = 73  # one every 5 days
MAX_L8_PER_YEAR = 22  # one every 16 days
MAX_CHANGES = 20


def utm_zone(epsg: int) -> int | None:
    """The UTM zone of a WGS 84 / UTM EPSG code (326zz north, 327zz south), else None."""
    if 32601 <= epsg <= 32660 or 32701 <= epsg <= 32760:
        return epsg % 100
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fail(field: str, message: str, value: object) -> ConfigError:
    return ConfigError(f"scenario field {field!r}: {message} (got {value!r})")


@dataclass(frozen=True)
class ScenarioConfig:
    """Parameters of a simulated scenario.

    Attributes:
        seed: Decides every random draw.
        epsg: CRS of the AOI grid (a WGS 84 / UTM zone; Sentinel-2 scenes use it too).
        origin: Upper-left corner ``(xmin, ymax)`` of the AOI in ``epsg`` (multiples of 10 m).
            The default is the corner of MGRS tile 32TPR in the Italian Alps, the AOI of
            ``aois/demo.yaml``.
        width: AOI width in 10 m pixels (even, so the 20 m bands divide it).
        height: AOI height in 10 m pixels (even).
        years: Consecutive years to simulate; the default spans the Sentinel-2 processing
            baseline 04.00 switch (+1000 DN offset from 2022-01-25).
        s2_per_year: Sentinel-2 acquisitions per year.
        l8_per_year: Landsat-8 acquisitions per year.
        landsat_epsg: CRS of the Landsat grid; None means the UTM zone east of ``epsg``.
        cloud_free_probability: Share of acquisitions without any cloud.
        overcast_probability: Share of acquisitions 70–100 % cloudy.
        max_partial_cloud_cover: Upper cloud fraction of the remaining, partly cloudy ones.
        cirrus_probability: Share of cloudy acquisitions that also have cirrus.
        n_changes: Permanent changes to plant.
        noise_sigma: Standard deviation of the sensor noise, in reflectance.
        reference_error_fraction: Share of reference-map pixels to mislabel in patches.
        wrs_path: Landsat WRS-2 path of the scenes.
        wrs_row: Landsat WRS-2 row of the scenes.
        landscape: The landscape (landscapes.py): ``alpine`` (the demo valley), ``lowland``,
            ``forest``, ``mediterranean`` or ``wetland``.
        change_processes: Kinds of permanent change to cycle through (processes.REGISTRY);
            empty: the demo's clear-cut, construction, new water and landslide cycle.
        lookalikes: Seasonal look-alikes to plant (lookalikes.LOOKALIKES); empty: the demo's
            flood, winter snow and crop rotation.
    """

    seed: int = 1
    epsg: int = 32632
    origin: tuple[float, float] = (600000.0, 5100000.0)
    width: int = 256
    height: int = 256
    years: tuple[int, ...] = (2021, 2022)
    s2_per_year: int = 24
    l8_per_year: int = 12
    landsat_epsg: int | None = None
    cloud_free_probability: float = 0.3
    overcast_probability: float = 0.15
    max_partial_cloud_cover: float = 0.6
    cirrus_probability: float = 0.2
    n_changes: int = 5
    noise_sigma: float = 0.006
    reference_error_fraction: float = 0.07
    wrs_path: int = 193
    wrs_row: int = 28
    landscape: str = "alpine"
    change_processes: tuple[str, ...] = ()
    lookalikes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Validates every field; the error names the field."""
        self._check_integers()
        self._check_grid()
        self._check_years()
        self._check_fractions()
        self._check_names()

    def _check_integers(self) -> None:
        bounds = {
            "seed": (0, 2**63 - 1),
            "width": (MIN_SIZE_PX, MAX_SIZE_PX),
            "height": (MIN_SIZE_PX, MAX_SIZE_PX),
            "s2_per_year": (1, MAX_S2_PER_YEAR),
            "l8_per_year": (0, MAX_L8_PER_YEAR),
            "n_changes": (0, MAX_CHANGES),
            "wrs_path": (1, 233),
            "wrs_row": (1, 248),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not _is_int(value) or not low <= value <= high:
                raise _fail(name, f"must be an integer from {low} to {high}", value)
        for name in ("width", "height"):
            if getattr(self, name) % 2:
                raise _fail(name, "must be even (the 20 m bands halve it)", getattr(self, name))

    def _check_grid(self) -> None:
        if not _is_int(self.epsg) or utm_zone(self.epsg) is None:
            raise _fail("epsg", "must be a WGS 84 / UTM EPSG code (32601-32660, 32701-32760)", self.epsg)
        landsat = self.landsat_epsg
        if landsat is not None and (not _is_int(landsat) or utm_zone(landsat) is None):
            raise _fail("landsat_epsg", "must be null or a WGS 84 / UTM EPSG code", landsat)
        origin = self.origin
        if not (isinstance(origin, tuple) and len(origin) == 2 and all(_is_number(v) for v in origin)):
            raise _fail("origin", "must be two numbers [xmin, ymax]", origin)
        if any(float(v) % 10 for v in origin):
            raise _fail("origin", "must lie on the 10 m grid (multiples of 10)", origin)
        object.__setattr__(self, "origin", (float(origin[0]), float(origin[1])))

    def _check_years(self) -> None:
        years = self.years
        if not (isinstance(years, tuple) and years and all(_is_int(y) for y in years)):
            raise _fail("years", "must be a non-empty list of integers", years)
        if list(years) != list(range(years[0], years[0] + len(years))):
            raise _fail("years", "must be consecutive and ascending", years)
        if years[0] < FIRST_YEAR or years[-1] > LAST_YEAR:
            raise _fail("years", f"must lie in {FIRST_YEAR}..{LAST_YEAR}", years)

    def _check_fractions(self) -> None:
        limits = {
            "cloud_free_probability": (0.0, 1.0),
            "overcast_probability": (0.0, 1.0),
            "max_partial_cloud_cover": (0.03, 1.0),
            "cirrus_probability": (0.0, 1.0),
            "noise_sigma": (0.0, 0.1),
            "reference_error_fraction": (0.0, 0.5),
        }
        for name, (low, high) in limits.items():
            value = getattr(self, name)
            if not _is_number(value) or not low <= value <= high:
                raise _fail(name, f"must be a number from {low} to {high}", value)
        total = self.cloud_free_probability + self.overcast_probability
        if total > 1.0:
            raise _fail("overcast_probability", "plus cloud_free_probability must not exceed 1", total)

    def _check_names(self) -> None:
        if self.landscape not in LANDSCAPES:
            raise _fail("landscape", f"must be one of {', '.join(LANDSCAPES)}", self.landscape)
        for name, known in (("change_processes", CHANGE_PROCESSES), ("lookalikes", LOOKALIKES)):
            value = getattr(self, name)
            if not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
                raise _fail(name, "must be a list (tuple) of names", value)
            unknown = [v for v in value if v not in known]
            if unknown:
                raise _fail(
                    name, f"unknown {', '.join(map(repr, unknown))}; known: {', '.join(known)}", value
                )
            if len(set(value)) != len(value):
                raise _fail(name, "must not repeat a name", value)

    @property
    def landsat_grid_epsg(self) -> int:
        """The Landsat CRS: ``landsat_epsg``, or the UTM zone east of ``epsg`` (60 wraps to 1)."""
        if self.landsat_epsg is not None:
            return self.landsat_epsg
        return self.epsg + 1 if self.epsg % 100 != 60 else self.epsg - 59

    @property
    def name(self) -> str:
        """The scenario's name (AOI name in aoi.yaml)."""
        return f"sim_seed{self.seed}"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScenarioConfig:
        """Builds a validated config from plain data (JSON/YAML): lists become tuples.

        Args:
            data: Field name → value; missing fields take their defaults.

        Returns:
            The config.

        Raises:
            ConfigError: On an unknown field or an invalid value (the message names the field).
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"scenario: unknown field(s) {', '.join(map(repr, unknown))}")
        values: dict[str, Any] = {
            name: tuple(value) if isinstance(value, list) else value for name, value in data.items()
        }
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data (tuples as lists, ``landsat_epsg`` resolved)."""
        data = dataclasses.asdict(self)
        data.update(origin=list(self.origin), years=list(self.years), landsat_epsg=self.landsat_grid_epsg)
        data.update(change_processes=list(self.change_processes), lookalikes=list(self.lookalikes))
        return data
