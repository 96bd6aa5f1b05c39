"""A year's outputs as versions: written to a new folder, switched to after the commit, old ones removed.

:func:`eo_tasks.maps.annual_maps.store_year` writes every file of a run into a fresh version
folder (:meth:`eo_tasks.maps.outputs.MapPaths.new_version`) inside the transaction that switches
``lc_map``/``lc_change`` to it; only after the commit do the year's STAC item and ``CURRENT``
pointer name it and the older versions go. A failure before the commit removes the new folder and
leaves the previous version's files, rows and STAC item as they were.

The pixels follow the reviews: :func:`apply_reviews` puts every reviewed change's decision into
the map a run computed (a rejected change stays out, an approved one carried back stays in).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Sequence
from typing import Any

import numpy as np

from eo_tasks.core.files import atomic_path
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.quicklook import change_quicklook, class_quicklook
from eo_tasks.maps.outputs import MapPaths, write_change_cog, write_class_cog
from eo_tasks.maps.review import held_class, polygon_mask

log = logging.getLogger(__name__)


def apply_reviews(
    classes: np.ndarray, reviewed: Sequence[dict[str, Any]], year: int, grid: GridSpec
) -> np.ndarray:
    """The map of ``year`` with every reviewed change's decision in its pixels.

    For each change, the pixels inside its polygon that hold the class the detection put there
    (as if still pending) get the class its review says, as :func:`eo_tasks.maps.review.apply_review`
    does: a rejected change returns to the class before, an approved change dated in an earlier
    year is carried back, a relabel sets its new class. Pixels holding any other class (a later
    change over the same place) are left alone.

    Args:
        classes: ``(rows, cols)`` the map the analysis made.
        reviewed: Reviewed changes of ``year`` and later (:func:`eo_tasks.store.maps.reviewed_changes`).
        year: The map year.
        grid: The AOI grid (the changes' WKT is in its CRS).

    Returns:
        A new array.
    """
    out = classes.copy()
    for change in reviewed:
        detected, decided = held_class("pending", change, year), held_class(change["status"], change, year)
        if detected == decided:
            continue
        where = polygon_mask(change["wkt"], grid) & (out == detected)
        out[where] = decided
    return out


def write_files(
    paths: MapPaths, classes: np.ndarray, changes: dict[str, np.ndarray], annual: np.ndarray, grid: GridSpec
) -> None:
    """Writes a version's COGs and quicklooks (the STAC item comes after the commit).

    Args:
        paths: The new version.
        classes: The map, reviews applied.
        changes: ``changed``, ``days``, ``from_class``, ``to_class`` of the detected changes.
        annual: The per-year classifier's map (baseline).
        grid: The AOI grid.
    """
    write_class_cog(paths.classes, classes, grid)
    write_class_cog(paths.annual_baseline, annual, grid)
    write_change_cog(paths.changes, changes["days"], changes["from_class"], changes["to_class"], grid)
    class_quicklook(classes, paths.classes_png)
    change_quicklook(classes, changes["changed"], paths.changes_png)


def switch_current(paths: MapPaths) -> None:
    """Names ``paths``' version in the year's ``CURRENT`` pointer (an atomic rename)."""
    with atomic_path(paths.current_file) as tmp:
        tmp.write_text(paths.version + "\n")


def remove_old_versions(paths: MapPaths) -> list[str]:
    """Removes every version of the year but ``paths``' (and the unversioned files of the old layout).

    Call it only after the switch was committed and under the year's lock: a half-written
    version a killed run left behind is removed too.

    Returns:
        The names removed.
    """
    removed = []
    for entry in paths.root.iterdir():
        if entry.is_dir() and entry.name.startswith("v") and entry.name != paths.version:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    if paths.version:
        for legacy in MapPaths(paths.root, paths.aoi, paths.year).files:
            if legacy.exists():
                legacy.unlink()
                removed.append(legacy.name)
    if removed:
        log.info("%s %d: removed older outputs %s", paths.aoi, paths.year, removed)
    return removed
