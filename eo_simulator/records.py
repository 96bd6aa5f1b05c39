"""changes.json: every planted event, permanent or seasonal, as one entry with its class and dates.

Seasonal entries (snow, crop rotation, floods and the other look-alikes) record what the pixels
look like while they last (``to_class``) although their class never changes; permanent entries
are the truth the change detection is scored against.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import numpy as np

from eo_simulator.events import CLASS_CODE_OF_SURFACE, PlantedEvent
from eo_simulator.landscape import Landscape
from eo_simulator.spectra import CROPS, SNOW_TRANSITION, SURFACE_CLASS, Surface, snowline_rank
from eo_tasks.core.classes import CLASS_BY_NAME


def record(
    landscape: Landscape,
    mask: np.ndarray,
    *,
    event_id: str,
    kind: str,
    process: str,
    from_class: str,
    to_class: str,
    start: date,
    end: date | None,
    description: str,
) -> dict[str, Any]:
    """One changes.json entry for the pixels of ``mask`` (bbox in the AOI CRS)."""
    rows, cols = np.nonzero(mask)
    return {
        "id": event_id,
        "kind": kind,
        "process": process,
        "from_class": from_class,
        "to_class": to_class,
        "date": start.isoformat(),
        "end_date": None if end is None else end.isoformat(),
        "bbox": landscape.grid.cell_bounds(rows, cols),
        "n_pixels": int(rows.size),
        "description": description,
    }


def _snow_records(landscape: Landscape, years: tuple[int, ...]) -> list[dict[str, Any]]:
    """One seasonal event per winter and snow-covered class (the snow never changes the class)."""
    line = landscape.profile.snowline
    if line is None:
        return []
    in_aoi = landscape.aoi_mask()
    lowest_snowline = min(snowline_rank(doy, line) for doy in range(1, 367))
    covered = in_aoi & (landscape.elevation_rank >= lowest_snowline + SNOW_TRANSITION / 2)
    records = []
    for year in (years[0] - 1, *years):
        days = [date(year, 8, 1) + timedelta(days=d) for d in range(365)]
        lines = np.array([snowline_rank(day.timetuple().tm_yday, line) for day in days])
        for surface in landscape.profile.snowable:
            mask = covered & (landscape.surface == surface)
            if not mask.any():
                continue
            snowy = np.flatnonzero(lines <= landscape.elevation_rank[mask].max() - SNOW_TRANSITION / 2)
            class_name = SURFACE_CLASS[surface]
            records.append(
                record(
                    landscape,
                    mask,
                    event_id=f"snow-{year}-{surface.name.lower()}",
                    kind="seasonal",
                    process="snow",
                    from_class=class_name,
                    to_class="snow_ice",
                    start=days[snowy[0]],
                    end=days[snowy[-1]] + timedelta(days=1),
                    description=f"winter snow cover on {class_name} (the class does not change)",
                )
            )
    return records


def _rotation_records(
    landscape: Landscape, events: list[PlantedEvent], years: tuple[int, ...]
) -> list[dict[str, Any]]:
    """One seasonal event per year for the parcels whose crop differs from the year before."""
    records = []
    crop_pixels = landscape.aoi_mask() & (landscape.surface == Surface.CROPLAND)
    parcel_of_pixel = np.where(crop_pixels, landscape.units - len(Surface), 0)
    for year in years:
        column = year - landscape.first_crop_year
        rotated = landscape.crop_sequence[:, column] != landscape.crop_sequence[:, column - 1]
        still_cropland = CLASS_CODE_OF_SURFACE[landscape.surface] == CLASS_BY_NAME["cropland"].code
        for event in events:
            if event.kind == "permanent" and event.start.year <= year:
                still_cropland.flat[event.pixels] = False
        mask = crop_pixels & still_cropland & rotated[parcel_of_pixel]
        if mask.any():
            crops = ", ".join(c.name for c in CROPS)
            records.append(
                record(
                    landscape,
                    mask,
                    event_id=f"rotation-{year}",
                    kind="seasonal",
                    process="crop_rotation",
                    from_class="cropland",
                    to_class="cropland",
                    start=date(year, 1, 1),
                    end=None,
                    description=f"crop rotation into {year} among {crops} (still cropland)",
                )
            )
    return records


def event_records(
    landscape: Landscape, events: list[PlantedEvent], years: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Every planted event as a changes.json entry (bbox in the AOI CRS, pixels inside the AOI).

    Args:
        landscape: The landscape.
        events: The rendered events (permanent changes and the flood).
        years: The simulated years.

    Returns:
        Entries with ``id, kind, process, from_class, to_class, date, end_date, bbox, n_pixels,
        description``.
    """
    records = []
    for event in events:
        mask = np.zeros(landscape.grid.shape, dtype=bool)
        mask.flat[event.pixels] = True
        records.append(
            record(
                landscape,
                mask,
                event_id=event.id,
                kind=event.kind,
                process=event.process.name,
                from_class=event.process.from_class,
                to_class=event.process.to_class,
                start=event.start,
                end=event.end,
                description=event.process.description,
            )
        )
    return records + _snow_records(landscape, years) + _rotation_records(landscape, events, years)
