"""Scores on small arrays whose answers can be counted by hand."""

from __future__ import annotations

import numpy as np
import pytest

from eo_tasks.evaluate import change_scores, class_scores, date_errors, map_agreement


def test_change_scores_by_hand() -> None:
    truth = np.array([1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    predicted = np.array([1, 1, 1, 0, 1, 0, 0, 0], dtype=bool)  # 3 TP, 1 FP, 1 FN
    scores = change_scores(predicted, truth)
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (3, 1, 1)
    assert scores.precision == pytest.approx(0.75) and scores.recall == pytest.approx(0.75)
    assert scores.f1 == pytest.approx(0.75) and scores.iou == pytest.approx(0.6)


def test_no_detections_scores_zero_not_nan() -> None:
    scores = change_scores(np.zeros(4, bool), np.array([1, 0, 0, 0], bool))
    assert scores.precision == 0.0 and scores.f1 == 0.0 and scores.recall == 0.0


def test_date_errors() -> None:
    truth = np.array([10, 20, 30, 40])
    predicted = np.array([10, 21, 33, 0])
    result = date_errors(predicted, truth, np.array([True, True, True, False]))
    assert result == {"within_one": pytest.approx(2 / 3), "mean_abs": pytest.approx(4 / 3), "pixels": 3}


def test_map_agreement_counts_only_unchanged_pixels() -> None:
    a, b = np.array([1, 2, 3, 4]), np.array([1, 2, 9, 9])
    assert map_agreement(a, b, np.array([True, True, True, False])) == pytest.approx(2 / 3)


def test_class_scores() -> None:
    truth = np.array([1, 1, 2, 2, 3])
    predicted = np.array([1, 2, 2, 2, 3])
    result = class_scores(predicted, truth, [1, 2, 3])
    assert result["overall_accuracy"] == pytest.approx(0.8)
    per_class = result["per_class"]
    assert per_class[1] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "pixels": 2}
    assert per_class[2]["precision"] == pytest.approx(2 / 3) and per_class[3]["f1"] == 1.0
