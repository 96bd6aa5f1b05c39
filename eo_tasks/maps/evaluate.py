"""Accuracy of maps and detected changes against truth rasters (the simulator's, or field data).

The figures the method is judged by (Sedona et al. 2023): change precision / recall / F1 / IoU,
the change-date error in composites, the agreement of consecutive annual maps on pixels that did
not change, and per-class accuracy — the same functions score the method and its baselines.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.calendar import Calendar
from eo_tasks.core.classes import CLASSES
from eo_tasks.core.errors import ConfigError

EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class ChangeScores:
    """Pixel-level change-detection scores."""

    precision: float
    recall: float
    f1: float
    iou: float
    true_positives: int
    false_positives: int
    false_negatives: int

    def as_dict(self) -> dict[str, float]:
        """The scores as a JSON-friendly dict."""
        return asdict(self)


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den else 0.0


def change_scores(predicted: np.ndarray, truth: np.ndarray) -> ChangeScores:
    """Precision, recall, F1 and IoU of a predicted change mask against the true one."""
    predicted, truth = predicted.astype(bool), truth.astype(bool)
    tp = int(np.sum(predicted & truth))
    fp = int(np.sum(predicted & ~truth))
    fn = int(np.sum(~predicted & truth))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    return ChangeScores(
        precision=precision,
        recall=recall,
        f1=_ratio(2 * precision * recall, precision + recall),
        iou=_ratio(tp, tp + fp + fn),
        true_positives=tp,
        false_positives=fp,
        false_negatives=fn,
    )


def date_errors(predicted: np.ndarray, truth: np.ndarray, where: np.ndarray) -> dict[str, float]:
    """How far detected change dates are from the true ones, in composites, over ``where``.

    Returns:
        ``within_one`` (share dated within one composite), ``mean_abs`` and ``pixels``.
    """
    errors = np.abs(predicted[where].astype(np.int64) - truth[where].astype(np.int64))
    if errors.size == 0:
        return {"within_one": 0.0, "mean_abs": 0.0, "pixels": 0}
    return {
        "within_one": float(np.mean(errors <= 1)),
        "mean_abs": float(errors.mean()),
        "pixels": int(errors.size),
    }


def map_agreement(first: np.ndarray, second: np.ndarray, unchanged: np.ndarray) -> float:
    """Share of the unchanged pixels that two annual maps label alike."""
    return _ratio(np.sum((first == second) & unchanged), np.sum(unchanged))


def class_scores(predicted: np.ndarray, truth: np.ndarray, classes: Sequence[int]) -> dict[str, object]:
    """Overall accuracy and per-class precision / recall / F1 of a map against the true one."""
    per_class = {}
    for code in classes:
        scores = change_scores(predicted == code, truth == code)
        per_class[int(code)] = {
            "precision": scores.precision,
            "recall": scores.recall,
            "f1": scores.f1,
            "pixels": int(np.sum(truth == code)),
        }
    return {"overall_accuracy": float(np.mean(predicted == truth)), "per_class": per_class}


# --- a whole AOI against truth rasters: the method and the paper's baselines ----------------------
# Streamed by blocks: every raster is read a block at a time (GDAL's cache kept small: each block is
# read once) and the figures are accumulated as counts, so memory depends on the block, not the AOI.

BLOCK_PX = 256  # one COG tile
GDAL_CACHE_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class Truth:
    """Truth rasters on the AOI grid (the simulator's ``truth/`` folder, or field data in that layout).

    Attributes:
        landcover: Year → raster of class codes on December 31.
        change_days: Raster of permanent-change dates, days since 1970-01-01 (0: none).
    """

    landcover: dict[int, Path]
    change_days: Path

    @classmethod
    def load(cls, folder: Path) -> Truth:
        """Finds ``landcover_<year>.tif`` and ``change_date.tif`` in ``folder``."""
        files = sorted(folder.glob("landcover_*.tif"))
        landcover = {int(p.stem.rsplit("_", 1)[1]): p for p in files}
        if not landcover or not (folder / "change_date.tif").is_file():
            raise ConfigError(f"{folder} holds no landcover_<year>.tif / change_date.tif truth rasters")
        return cls(landcover, folder / "change_date.tif")


def composite_index(days: np.ndarray, first_year: int, calendar: Calendar) -> np.ndarray:
    """Dates (days since 1970-01-01; 0 = none) as composite indices of a series starting in ``first_year``."""
    out = np.full(days.shape, -1, dtype=np.int64)
    for value in np.unique(days[days > 0]):
        day = EPOCH + dt.timedelta(days=int(value))
        out[days == value] = (day.year - first_year) * calendar.n_composites + calendar.window_of(day)
    return out


def in_initial_map(truth_composite: np.ndarray, calendar: Calendar) -> np.ndarray:
    """Truly changed pixels dated before the middle of the first year: part of the first map, not scored.

    Args:
        truth_composite: True change dates as composite indices (:func:`composite_index`; −1: none).
        calendar: The composite calendar.
    """
    return (truth_composite >= 0) & (truth_composite < calendar.n_composites // 2)


def first_detection(days: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Change dates merged year by year: a pixel keeps the date of its first report (0: none yet).

    A pixel reported in two years (a clear-cut, then its regrowth to grass) is dated by the first:
    the truth holds one date per pixel, the start of the event.
    """
    return np.where((days == 0) & (found > 0), found, days)


class _Rasters:
    """Open rasters read a window at a time."""

    def __init__(self) -> None:
        self._open: dict[Path, Any] = {}
        self.window = (0, 0, 1, 1)  # col0, row0, cols, rows of the next reads

    def read(self, path: Path) -> np.ndarray:
        from osgeo import gdal

        gdal.UseExceptions()
        dataset = self._open.get(path) or self._open.setdefault(path, gdal.Open(str(path)))
        return np.asarray(dataset.GetRasterBand(1).ReadAsArray(*self.window))

    def shape(self, path: Path) -> tuple[int, int]:
        self.read(path)
        return self._open[path].RasterYSize, self._open[path].RasterXSize


@dataclass
class _Tally:
    """One method's counts over the bands seen so far."""

    change: np.ndarray  # tp, fp, fn
    agree: np.ndarray  # per consecutive pair of years: agreeing unchanged pixels, unchanged pixels
    confusion: dict[int, np.ndarray]  # year → (truth, predicted) counts
    dates: np.ndarray | None  # within one composite, sum of absolute errors, pixels

    @classmethod
    def empty(cls, years: list[int], dated: bool) -> _Tally:
        return cls(
            np.zeros(3, np.int64),
            np.zeros((max(len(years) - 1, 0), 2), np.int64),
            {y: np.zeros((256, 256), np.int64) for y in years},
            np.zeros(3, np.int64) if dated else None,
        )

    def add(self, maps: dict[int, np.ndarray], changed: np.ndarray, band: dict[str, Any]) -> None:
        scored, truth_changed = band["scored"], band["truth_changed"]
        p, t = changed[scored], truth_changed[scored]
        self.change += [np.sum(p & t), np.sum(p & ~t), np.sum(~p & t)]
        for k, (a, b) in enumerate(itertools.pairwise(sorted(maps))):
            self.agree[k] += [np.sum((maps[a] == maps[b]) & ~truth_changed), np.sum(~truth_changed)]
        for year, classes in maps.items():
            if year in band["landcover"]:
                pairs = band["landcover"][year].astype(np.int64) * 256 + classes
                self.confusion[year] += np.bincount(pairs.ravel(), minlength=256 * 256).reshape(256, 256)
        if self.dates is not None:
            where = changed & truth_changed & scored
            errors = np.abs(band["composite"][where] - band["truth_composite"][where])
            self.dates += [np.sum(errors <= 1), errors.sum(), errors.size]

    def report(self, name: str) -> dict[str, Any]:
        tp, fp, fn = (int(x) for x in self.change)
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        change = ChangeScores(
            precision,
            recall,
            _ratio(2 * precision * recall, precision + recall),
            _ratio(tp, tp + fp + fn),
            tp,
            fp,
            fn,
        )
        dates = None
        if self.dates is not None:
            within, total, n = (int(x) for x in self.dates)
            dates = {"within_one": _ratio(within, n), "mean_abs": _ratio(total, n), "pixels": n}
        return {
            "method": name,
            "change": change.as_dict(),
            "agreement_unchanged": min(_ratio(a, n) for a, n in self.agree) if len(self.agree) else None,
            "dates": dates,
            "maps": {str(y): _map_accuracy(c) for y, c in sorted(self.confusion.items()) if c.any()},
        }


def _map_accuracy(confusion: np.ndarray) -> dict[str, Any]:
    """Overall accuracy and per-class F1 from a (truth, predicted) count matrix (as :func:`class_scores`)."""
    f1 = {}
    for c in CLASSES:
        tp, pixels, predicted = confusion[c.code, c.code], confusion[c.code].sum(), confusion[:, c.code].sum()
        if pixels:
            precision, recall = _ratio(tp, predicted), _ratio(tp, pixels)
            f1[c.name] = round(_ratio(2 * precision * recall, precision + recall), 4)
    return {"overall_accuracy": _ratio(np.trace(confusion), confusion.sum()), "f1": f1}


def evaluate_aoi(
    maps: dict[int, Path],
    change_rasters: dict[int, Path],
    baselines: dict[str, dict[int, Path]],
    truth: Truth,
    calendar: Calendar,
) -> dict[str, Any]:
    """Scores the platform's maps and changes, and the baselines' per-year maps, against the truth.

    Scored pixels: a change dated before the middle of the first year is part of the initial map
    (the first map is the per-year label of the whole year, i.e. its majority), so its pixels are
    left out of the change scores of every method; everything else counts. A baseline's changes
    are the pixels whose class differs between any two consecutive maps (no-data never changes).
    A pixel the platform reports changed in two years (a clear-cut, then its regrowth to grass) is
    dated by its first report: the truth holds one date per pixel, the start of the event.

    Args:
        maps: Year → the platform's map COG.
        change_rasters: Year → its change COG (date, from, to) for the years after the first.
        baselines: Baseline name → year → map (e.g. the per-year random forest's).
        truth: The truth rasters.
        calendar: The composite calendar (for dating errors in composites).

    Returns:
        ``{"years", "scored_pixels", "truth_changed_pixels", "methods": [...]}``.
    """
    from osgeo import gdal

    years = sorted(maps)
    rasters = _Rasters()
    rows, cols = rasters.shape(truth.change_days)
    ours = _Tally.empty(years, dated=True)
    theirs = {name: _Tally.empty(sorted(paths), dated=False) for name, paths in baselines.items()}
    scored_pixels = truth_changed_pixels = 0
    cache = gdal.GetCacheMax()
    gdal.SetCacheMax(GDAL_CACHE_BYTES)
    try:
        for row0 in range(0, rows, BLOCK_PX):
            for col0 in range(0, cols, BLOCK_PX):
                rasters.window = (col0, row0, min(BLOCK_PX, cols - col0), min(BLOCK_PX, rows - row0))
                counts = _score_window(
                    rasters, maps, change_rasters, baselines, truth, calendar, ours, theirs
                )
                scored_pixels += counts[0]
                truth_changed_pixels += counts[1]
    finally:
        gdal.SetCacheMax(cache)
    return {
        "years": years,
        "scored_pixels": scored_pixels,
        "truth_changed_pixels": truth_changed_pixels,
        "methods": [ours.report("sequence analysis (this platform)")]
        + [tally.report(name) for name, tally in theirs.items()],
    }


def _score_window(
    rasters: _Rasters,
    maps: dict[int, Path],
    change_rasters: dict[int, Path],
    baselines: dict[str, dict[int, Path]],
    truth: Truth,
    calendar: Calendar,
    ours: _Tally,
    theirs: dict[str, _Tally],
) -> tuple[int, int]:
    """Adds one window's counts to the tallies; returns its scored and truly changed scored pixels."""
    first = min(maps)
    truth_days = rasters.read(truth.change_days).astype(np.int64)
    truth_composite = composite_index(truth_days, first, calendar)
    band: dict[str, Any] = {
        "truth_changed": truth_days > 0,
        "scored": ~in_initial_map(truth_composite, calendar),
        "truth_composite": truth_composite,
        "landcover": {y: rasters.read(p) for y, p in truth.landcover.items()},
    }
    days = np.zeros(truth_days.shape, dtype=np.int64)
    for year in sorted(change_rasters):
        found = rasters.read(change_rasters[year]).astype(np.int64)
        days = first_detection(days, found)
    band["composite"] = composite_index(days, first, calendar)
    ours.add({y: rasters.read(p) for y, p in maps.items()}, days > 0, band)
    for name, paths in baselines.items():
        their = {y: rasters.read(p) for y, p in paths.items()}
        theirs[name].add(their, _year_pair_changes(their), band)
    return int(band["scored"].sum()), int((band["truth_changed"] & band["scored"]).sum())


def _year_pair_changes(maps: dict[int, np.ndarray]) -> np.ndarray:
    """Pixels whose class differs between any two consecutive maps (no-data pixels never change)."""
    years = sorted(maps)
    changed = np.zeros(maps[years[0]].shape, dtype=bool)
    for a, b in itertools.pairwise(years):
        changed |= (maps[a] != maps[b]) & (maps[a] != 0) & (maps[b] != 0)
    return changed
