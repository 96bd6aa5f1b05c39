"""The fixed compositing calendar of a year: every cube, model and map counts time in its composites."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from eo_tasks.core.errors import ConfigError


@dataclass(frozen=True)
class Calendar:
    """``n_composites`` equal day-of-year windows per year.

    Attributes:
        n_composites: Windows per year (e.g. 24: about 15 days each).
    """

    n_composites: int = 24

    def __post_init__(self) -> None:
        if not 1 <= self.n_composites <= 365:
            raise ConfigError(f"calendar: n_composites must be 1..365, got {self.n_composites}")

    def window_of(self, when: dt.date) -> int:
        """Index of the window containing ``when`` (day 366 of leap years joins the last window)."""
        day = min(when.timetuple().tm_yday, 365) - 1
        return day * self.n_composites // 365

    def centers(self, year: int) -> list[dt.date]:
        """The representative date of each window of ``year``."""
        start = dt.date(year, 1, 1)
        return [
            start + dt.timedelta(days=(2 * k + 1) * 365 // (2 * self.n_composites))
            for k in range(self.n_composites)
        ]
