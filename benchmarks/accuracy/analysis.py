"""The cached labels of a scenario → yearly maps and changes under a rule set → scores against the truth.

The maps are made by :func:`eo_tasks.maps.pipeline.year_result`, the function ``maps_<aoi>``'s
assemble step calls, and scored by :func:`eo_tasks.maps.evaluate.evaluate_aoi`, the function behind
``eo-tasks evaluate``; the baselines are the per-year random forests of the training-set stage and the
same Transformer labelling each year's whole series on its own (no sequence analysis).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.accuracy.chain import BLOCK_PX, ScenarioRun
from eo_tasks.core.aoi_sections import ChangeParams


def assemble(run: ScenarioRun, params: ChangeParams, out: Path) -> dict[str, dict[int, Path]]:
    """Writes the yearly maps, change rasters and the per-year Transformer maps of one rule set.

    Returns:
        ``{"maps": year → map, "changes": year → change raster, "annual": year → per-year label map}``.
    """
    from eo_tasks.core.cube import Cube
    from eo_tasks.maps.annual_maps import YearResult, read_labels, without
    from eo_tasks.maps.confirmation import LastChanges
    from eo_tasks.maps.outputs import write_change_cog, write_class_cog
    from eo_tasks.maps.pipeline import year_result
    from eo_tasks.models import read_card

    grid = run.aoi().grid
    card = read_card(run.model_dir)
    results: dict[int, YearResult] = {}
    annual: dict[int, np.ndarray] = {}
    for year in run.years:
        series = read_labels(run.labels(year), grid, BLOCK_PX)
        cubes = [Cube.open(p) for p in run.cubes_of(year)]
        before = Cube.open(run.cube(year - 2)) if year - 2 in run.years else None
        last = results.get(year - 1)
        previous = None if last is None else last.classes
        changes = None if last is None or year - 1 == run.years[0] else LastChanges.from_result(last)
        older = results.get(year - 2)
        settled = None if older is None or previous is None else previous != older.classes
        results[year], numbers = year_result(
            series, previous, cubes, card, params, before, changes, settled=settled
        )
        if numbers and last is not None and changes is not None:  # as the store's rejection does
            results[year - 1] = without(last, np.isin(changes.regions, numbers))
        annual[year] = series.annual
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[int, Path]] = {"maps": {}, "changes": {}, "annual": {}}
    for year, result in results.items():
        written["maps"][year] = write_class_cog(out / f"map_{year}.tif", result.classes, grid)
        written["annual"][year] = write_class_cog(out / f"annual_{year}.tif", annual[year], grid)
        if year != run.years[0]:
            written["changes"][year] = write_change_cog(
                out / f"changes_{year}.tif", result.change_days, result.from_class, result.to_class, grid
            )
    return written


def score(run: ScenarioRun, params: ChangeParams, out: Path) -> dict[str, Any]:
    """The method under ``params`` and both baselines, scored against the scenario's truth."""
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.maps.evaluate import Truth, evaluate_aoi
    from eo_tasks.trainset.pipeline import TrainingPaths

    started = time.monotonic()
    written = assemble(run, params, out)
    training = TrainingPaths(run.training)
    report = evaluate_aoi(
        written["maps"],
        written["changes"],
        {
            "random_forest": {y: training.rf_map(y) for y in run.years},
            "per_year_transformer": written["annual"],
        },
        Truth.load(run.archive / "truth"),
        Calendar(run.aoi().composites_per_year),
    )
    report["per_change_type"] = per_change_type(run, written["changes"])
    report["analysis_seconds"] = round(time.monotonic() - started, 1)
    return report


def per_change_type(run: ScenarioRun, changes: dict[int, Path]) -> dict[str, dict[str, Any]]:
    """Per planted change type: its scored pixels, the share detected and the share of those dated ±1.

    Events are told apart by their dates (the simulator gives every permanent change its own day);
    changes dated before the middle of the first year are part of the initial map and not scored.
    """
    import datetime as dt
    import json

    import numpy as np

    from eo_tasks.core.calendar import Calendar
    from eo_tasks.core.raster import read_raster
    from eo_tasks.maps.evaluate import EPOCH, composite_index, first_detection, in_initial_map

    calendar = Calendar(run.aoi().composites_per_year)
    first = min(run.years)
    truth_days = read_raster(run.archive / "truth" / "change_date.tif").astype(np.int64)
    found = np.zeros_like(truth_days)
    for year in sorted(changes):
        found = first_detection(found, read_raster(changes[year]).astype(np.int64))
    truth_c, found_c = composite_index(truth_days, first, calendar), composite_index(found, first, calendar)
    process = {
        (dt.date.fromisoformat(e["date"]) - EPOCH).days: e["process"]
        for e in json.loads((run.archive / "truth" / "changes.json").read_text())
        if e["kind"] == "permanent"
    }
    tally: dict[str, np.ndarray] = {}
    for day in np.unique(truth_days[truth_days > 0]):
        event = truth_days == day
        if in_initial_map(truth_c[event][:1], calendar)[0]:
            continue
        detected = event & (found > 0)
        within = int(np.sum(np.abs(found_c[detected] - truth_c[detected]) <= 1))
        counts = np.array([event.sum(), detected.sum(), within])
        name = process.get(int(day), "unknown")
        tally[name] = tally.get(name, np.zeros(3, np.int64)) + counts
    return {
        name: {
            "pixels": int(n),
            "detected": round(float(d / n), 4),
            "dated_within_1": round(float(w / d), 4) if d else None,
        }
        for name, (n, d, w) in sorted(tally.items())
    }
