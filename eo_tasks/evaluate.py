"""Accuracy of maps and detected changes against truth rasters (the simulator's, or field data).

The figures the method is judged by (Sedona et al. 2023): change precision / recall / F1 / IoU,
the change-date error in composites, the agreement of consecutive annual maps on pixels that did
not change, and per-class accuracy — the same functions score the method and its baselines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np


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
        per_class[int(code)] = {"precision": scores.precision, "recall": scores.recall, "f1": scores.f1,
                                "pixels": int(np.sum(truth == code))}  # fmt: skip
    return {"overall_accuracy": float(np.mean(predicted == truth)), "per_class": per_class}
