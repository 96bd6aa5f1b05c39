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
from eo_tasks.core.raster import read_raster

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


@dataclass(frozen=True)
class Truth:
    """Truth rasters on the AOI grid (the simulator's ``truth/`` folder, or field data in that layout).

    Attributes:
        landcover: Year → ``(rows, cols)`` class codes on December 31.
        change_days: ``(rows, cols)`` permanent-change dates, days since 1970-01-01 (0: none).
    """

    landcover: dict[int, np.ndarray]
    change_days: np.ndarray

    @classmethod
    def load(cls, folder: Path) -> Truth:
        """Reads ``landcover_<year>.tif`` and ``change_date.tif`` from ``folder``."""
        files = sorted(folder.glob("landcover_*.tif"))
        landcover = {int(p.stem.rsplit("_", 1)[1]): read_raster(p) for p in files}
        if not landcover or not (folder / "change_date.tif").is_file():
            raise ConfigError(f"{folder} holds no landcover_<year>.tif / change_date.tif truth rasters")
        return cls(landcover, read_raster(folder / "change_date.tif").astype(np.int64))


def composite_index(days: np.ndarray, first_year: int, calendar: Calendar) -> np.ndarray:
    """Dates (days since 1970-01-01; 0 = none) as composite indices of a series starting in ``first_year``."""
    out = np.full(days.shape, -1, dtype=np.int64)
    for value in np.unique(days[days > 0]):
        day = EPOCH + dt.timedelta(days=int(value))
        out[days == value] = (day.year - first_year) * calendar.n_composites + calendar.window_of(day)
    return out


def _year_pair_changes(maps: dict[int, np.ndarray]) -> np.ndarray:
    """Pixels whose class differs between any two consecutive maps (no-data pixels never change)."""
    years = sorted(maps)
    changed = np.zeros(maps[years[0]].shape, dtype=bool)
    for a, b in itertools.pairwise(years):
        changed |= (maps[a] != maps[b]) & (maps[a] != 0) & (maps[b] != 0)
    return changed


def _agreement(maps: dict[int, np.ndarray], unchanged: np.ndarray) -> float | None:
    pairs = list(itertools.pairwise(sorted(maps)))
    return min(map_agreement(maps[a], maps[b], unchanged) for a, b in pairs) if pairs else None


def _map_accuracy(classes: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    scores = class_scores(classes, truth, [c.code for c in CLASSES])
    per_class: dict[int, dict[str, float]] = scores["per_class"]  # type: ignore[assignment]
    return {
        "overall_accuracy": scores["overall_accuracy"],
        "f1": {c.name: round(per_class[c.code]["f1"], 4) for c in CLASSES if per_class[c.code]["pixels"]},
    }


def score_method(
    name: str,
    maps: dict[int, np.ndarray],
    changed: np.ndarray,
    scored: np.ndarray,
    truth: Truth,
    change_composite: np.ndarray | None = None,
    truth_composite: np.ndarray | None = None,
) -> dict[str, Any]:
    """The figures of one method: change scores over ``scored`` pixels, dating, agreement, map accuracy."""
    truth_changed = truth.change_days > 0
    report: dict[str, Any] = {
        "method": name,
        "change": change_scores(changed[scored], truth_changed[scored]).as_dict(),
        "agreement_unchanged": _agreement(maps, ~truth_changed),
        "dates": None,
        "maps": {
            str(year): _map_accuracy(classes, truth.landcover[year])
            for year, classes in sorted(maps.items())
            if year in truth.landcover
        },
    }
    if change_composite is not None and truth_composite is not None:
        report["dates"] = date_errors(change_composite, truth_composite, changed & truth_changed & scored)
    return report


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
    left out of the change scores of every method; everything else counts.

    Args:
        maps: Year → the platform's map COG.
        change_rasters: Year → its change COG (date, from, to) for the years after the first.
        baselines: Baseline name → year → map (e.g. the per-year random forest's).
        truth: The truth rasters.
        calendar: The composite calendar (for dating errors in composites).

    Returns:
        ``{"years", "scored_pixels", "truth_changed_pixels", "methods": [...]}``.
    """
    years = sorted(maps)
    first = years[0]
    truth_comp = composite_index(truth.change_days, first, calendar)
    scored = ~((truth.change_days > 0) & (truth_comp < calendar.n_composites // 2))
    days = np.zeros(truth.change_days.shape, dtype=np.int64)
    for year in sorted(change_rasters):
        found = read_raster(change_rasters[year]).astype(np.int64)
        days = np.where(found > 0, found, days)  # a later year's detection of the same pixel wins
    ours = {year: read_raster(path) for year, path in maps.items()}
    methods = [
        score_method(
            "sequence analysis (this platform)",
            ours,
            days > 0,
            scored,
            truth,
            composite_index(days, first, calendar),
            truth_comp,
        )
    ]
    for name, paths in baselines.items():
        their = {year: read_raster(path) for year, path in paths.items()}
        methods.append(score_method(name, their, _year_pair_changes(their), scored, truth))
    return {
        "years": years,
        "scored_pixels": int(scored.sum()),
        "truth_changed_pixels": int(((truth.change_days > 0) & scored).sum()),
        "methods": methods,
    }
