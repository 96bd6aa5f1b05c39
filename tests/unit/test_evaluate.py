"""Scores on small arrays whose answers can be counted by hand."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from eo_tasks.maps.evaluate import change_scores, class_scores, date_errors, map_agreement


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


def _days(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def test_an_aoi_is_scored_with_its_baselines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from eo_tasks.core.calendar import Calendar
    from eo_tasks.core.grid import GridSpec
    from eo_tasks.maps.evaluate import Truth, evaluate_aoi
    from eo_tasks.maps.outputs import write_change_cog, write_class_cog

    grid = GridSpec(epsg=32632, bounds=(600000.0, 5099800.0, 600200.0, 5100000.0), resolution=10.0)  # 20 x 20
    before = np.full(grid.shape, 4, dtype=np.uint8)
    after = before.copy()
    after[:5, :5] = 6  # cleared on 2022-06-20: to be found
    truth_days = np.where(after != before, _days(dt.date(2022, 6, 20)), 0)
    truth_days[15:, 15:] = _days(dt.date(2021, 3, 1))  # before mid-2021: part of the initial map, not scored
    truth_2021 = before.copy()
    truth_2021[15:, 15:] = 3
    truth_2022 = after.copy()
    truth_2022[15:, 15:] = 3
    write_class_cog(tmp_path / "truth" / "landcover_2021.tif", truth_2021, grid)
    write_class_cog(tmp_path / "truth" / "landcover_2022.tif", truth_2022, grid)
    write_change_cog(tmp_path / "truth" / "change_date.tif", truth_days, before, after, grid)  # band 1: dates
    ours = {
        2021: write_class_cog(tmp_path / "m21.tif", truth_2021, grid),
        2022: write_class_cog(tmp_path / "m22.tif", truth_2022, grid),
    }
    found = np.where(after != before, _days(dt.date(2022, 7, 5)), 0)  # one composite late (24 a year)
    changes = {2022: write_change_cog(tmp_path / "c22.tif", found, before, after, grid)}
    noisy = truth_2022.copy()
    noisy[10, :] = 2  # a baseline that flickers a row of pixels
    baseline = {2021: ours[2021], 2022: write_class_cog(tmp_path / "b22.tif", noisy, grid)}

    report = evaluate_aoi(ours, changes, {"flicker": baseline}, Truth.load(tmp_path / "truth"), Calendar(24))
    monkeypatch.setattr("eo_tasks.maps.evaluate.BLOCK_PX", 3)  # streamed in blocks of 3 x 3 px
    streamed = evaluate_aoi(ours, changes, {"flicker": baseline}, Truth.load(tmp_path / "truth"), Calendar())
    assert streamed == report

    assert report["scored_pixels"] == 400 - 25 and report["truth_changed_pixels"] == 25
    method, flicker = report["methods"]
    assert method["change"]["f1"] == 1.0 and method["agreement_unchanged"] == 1.0
    assert method["dates"]["within_one"] == 1.0 and method["dates"]["mean_abs"] == 1.0
    assert method["maps"]["2022"]["overall_accuracy"] == 1.0
    assert flicker["change"]["precision"] == pytest.approx(25 / 45) and flicker["dates"] is None
    assert flicker["agreement_unchanged"] == pytest.approx(1 - 20 / 350)  # on never-changed pixels
