"""Pure pieces of the training side: training-set reader, learning-rate schedule, metrics, resume rules."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from eo_tasks.core.errors import ConfigError
from eo_tasks.models import ModelSpec
from eo_tasks.training.__main__ import parse_args
from eo_tasks.training.checkpoints import newest_checkpoint, resume_plan, run_identity
from eo_tasks.training.contract import TrainConfig
from eo_tasks.training.data import part_rows, read_info, read_rows
from eo_tasks.training.model_card import classification_report
from eo_tasks.training.schedule import LR_FLOOR, cyclic_multiplier, learning_rate
from tests.compute.synthetic import write_trainset


def test_reader_follows_the_documented_layout(trainset: Path) -> None:
    info = read_info(trainset)
    assert info.split_counts == (420, 90, 90)
    assert info.time_steps == 12 and info.n_features == 6 and info.n_classes == 9
    assert info.class_codes == list(range(1, 10)) and info.class_names[0] == "artificial"
    assert sorted(info.dates) == [2021, 2022] and len(info.dates[2021]) == 12
    test = read_rows(info, info.split_slice(2))
    with h5py.File(trainset) as f:
        raw = f["features"][510:]
        labels = f["labels"][510:]
        mean, std = f["norm_mean"][:], f["norm_std"][:]
    np.testing.assert_allclose(test.x, (raw - mean) / std, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(info.class_codes)[test.y], labels)
    train = read_rows(info, info.split_slice(0))
    assert abs(train.x.mean()) < 0.05 and abs(train.x.std() - 1) < 0.05  # statistics of the training split


def test_reader_refuses_other_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        read_info(tmp_path / "missing.h5")
    path = write_trainset(tmp_path / "v2.h5", samples=40)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = 2
    with pytest.raises(ConfigError, match="format_version"):
        read_info(path)
    path = write_trainset(tmp_path / "bad_label.h5", samples=40)
    with h5py.File(path, "a") as f:
        f["labels"][0] = 42
    with pytest.raises(ConfigError, match=r"label\(s\) \[42\]"):
        read_rows(read_info(path), slice(0, 40))


def test_worker_shares_are_contiguous_and_equal_when_asked() -> None:
    rows = slice(10, 113)  # 103 rows
    equal = [part_rows(rows, p, 4, equal=True) for p in range(4)]
    assert [s.stop - s.start for s in equal] == [25] * 4 and equal[0].start == 10
    spread = [part_rows(rows, p, 4, equal=False) for p in range(4)]
    assert spread[0].start == 10 and spread[-1].stop == 113
    assert all(a.stop == b.start for a, b in itertools.pairwise(spread))


def test_learning_rate_warms_up_to_lr_times_workers_then_cycles() -> None:
    config = TrainConfig(trainset=Path("x"), out=Path("y"), lr=0.003, warmup_epochs=3, lr_cycle_epochs=10)
    steps = 10
    first = learning_rate(config, 4, 0, 0, steps)
    assert first == pytest.approx(0.003 * (1 + 0.1 * 3 / 3))  # Horovod: lr/size at epoch 0, one step in
    assert learning_rate(config, 4, 2, steps - 1, steps) == pytest.approx(0.012)  # the peak ends warm-up
    assert learning_rate(config, 4, 3, 0, steps) == pytest.approx(0.012)  # a cycle starts at the peak
    assert learning_rate(config, 4, 8, 0, steps) == pytest.approx(0.012 * (LR_FLOOR + (1 - LR_FLOOR) / 2))
    assert learning_rate(config, 4, 13, 0, steps) == pytest.approx(0.012)  # the next cycle
    assert learning_rate(config, 1, 0, 0, steps) == pytest.approx(0.003)  # one worker: no warm-up needed
    assert cyclic_multiplier(9.999, 10) == pytest.approx(LR_FLOOR, abs=1e-6)


def test_classification_report() -> None:
    truth = np.array([0, 0, 1, 1, 1, 2])
    predicted = np.array([0, 1, 1, 1, 0, 0])
    report = classification_report(truth, predicted, [1, 2, 3, 4], ["a", "b", "c", "d"])
    assert report["overall_accuracy"] == pytest.approx(3 / 6)
    a, b, c, d = (report["per_class"][k] for k in "abcd")
    assert (a["precision"], a["recall"]) == (pytest.approx(1 / 3), pytest.approx(1 / 2))
    assert a["f1"] == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert (b["precision"], b["recall"], b["support"]) == (pytest.approx(2 / 3), pytest.approx(2 / 3), 3)
    assert c == {"code": 3, "precision": None, "recall": 0.0, "f1": None, "support": 1}
    assert d["support"] == 0 and d["f1"] is None
    assert report["confusion"][2] == [1, 0, 0, 0]


def test_resume_plan_refuses_another_runs_checkpoints(tmp_path: Path) -> None:
    config = parse_args(["--trainset", "t.h5", "--out", str(tmp_path)])
    spec = ModelSpec.published("lstm", 6, 9)
    identity = run_identity(config, spec, "abc")
    checkpoint = tmp_path / "checkpoints" / "epoch-0002-step-000000"
    checkpoint.mkdir(parents=True)
    (tmp_path / "checkpoints" / ".tmp-epoch-0003-step-000000-1").mkdir()  # an unfinished write
    state = {"epoch": 2, "step": 0, "run": identity, "workers": 1, "steps_per_epoch": 5}
    (checkpoint / "state.json").write_text(json.dumps(state))
    assert newest_checkpoint(tmp_path).path == checkpoint  # type: ignore[union-attr]
    assert resume_plan(config, identity, 1, 5)["state"]["epoch"] == 2
    other = run_identity(config, spec, "def")
    assert "trainset_sha256" in resume_plan(config, other, 1, 5)["error"]


def test_resume_plan_restarts_an_interrupted_epoch_when_the_sharding_changed(tmp_path: Path) -> None:
    config = parse_args(["--trainset", "t.h5", "--out", str(tmp_path)])
    identity = run_identity(config, ModelSpec.published("lstm", 6, 9), "abc")
    checkpoint = tmp_path / "checkpoints" / "epoch-0002-step-000007"
    checkpoint.mkdir(parents=True)
    state = {"epoch": 2, "step": 7, "run": identity, "workers": 2, "steps_per_epoch": 10}
    (checkpoint / "state.json").write_text(json.dumps(state))
    assert resume_plan(config, identity, 2, 10)["state"]["step"] == 7
    assert resume_plan(config, identity, 4, 5)["state"]["step"] == 0


def test_model_spec_defaults_are_the_published_sizes() -> None:
    lstm = ModelSpec.published("lstm", 10, 9)
    assert (lstm.layers, lstm.hidden) == (4, 128)
    transformer = ModelSpec.published("transformer", 10, 9, layers=None)
    assert (transformer.layers, transformer.hidden, transformer.heads, transformer.ff_dim) == (5, 128, 2, 256)
    assert ModelSpec.from_dict(transformer.to_dict()) == transformer
    with pytest.raises(ConfigError):
        ModelSpec.published("transformer", 10, 9, hidden=33, heads=2)
    with pytest.raises(ConfigError):
        ModelSpec.published("gru", 10, 9)
