"""A short single-worker run per backend: it learns, resumes at the next epoch, writes model + card."""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from eo_tasks.models import ModelSpec, load_model, softmax
from eo_tasks.training.data import read_info, read_rows
from tests.compute.conftest import FRAMEWORKS, run_train, train_command

CARD_KEYS = {
    "schema",
    "schema_version",
    "model_id",
    "created_at",
    "backend",
    "model_file",
    "architecture",
    "classes",
    "features",
    "bands",
    "calendar",
    "normalization",
    "metrics",
    "training",
    "code_version",
    "training_set",
}
TRAINING_KEYS = {
    "framework",
    "device",
    "threads",
    "mixed_precision",
    "compilation",
    "epochs",
    "workers",
    "batch_size_per_worker",
    "global_batch_size",
    "steps_per_epoch",
    "optimizer",
    "learning_rate",
    "loss",
    "seed",
    "train_samples_seen",
    "time_s",
    "samples_per_s",
    "interruptions",
    "history",
    "window",
}


@dataclass
class Trained:
    out: Path
    first: subprocess.CompletedProcess[str]
    second: subprocess.CompletedProcess[str]
    checkpoints_after_first: list[str]
    card: dict


@pytest.fixture(scope="module")
def trained(trainset: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Trained]:
    """Per backend: 2 epochs, then the same command with ``--epochs 4`` (which must resume)."""
    cache: dict[str, Trained] = {}

    def get(backend: str) -> Trained:
        pytest.importorskip(FRAMEWORKS[backend])
        if backend not in cache:
            out = tmp_path_factory.mktemp(backend) / "out"
            first = run_train(train_command(backend, trainset, out, "--epochs", "2"))
            after_first = sorted(p.name for p in (out / "checkpoints").iterdir())
            second = run_train(
                train_command(
                    backend, trainset, out, "--epochs", "4", "--debug-dir", str(out.parent / "debug")
                )
            )
            card = json.loads((out / "model_card.json").read_text()) if second.returncode == 0 else {}
            cache[backend] = Trained(out, first, second, after_first, card)
        return cache[backend]

    return get


@pytest.mark.parametrize("backend", FRAMEWORKS)
def test_resumes_at_the_next_epoch(trained: Callable[[str], Trained], backend: str) -> None:
    run = trained(backend)
    assert run.first.returncode == 0, run.first.stderr[-3000:]
    assert run.second.returncode == 0, run.second.stderr[-3000:]
    assert run.checkpoints_after_first == ["epoch-0001-step-000000", "epoch-0002-step-000000"]
    assert "resuming at epoch 3 from" in run.second.stderr
    assert "epoch 1/4" not in run.second.stderr and "epoch 4/4" in run.second.stderr
    assert [h["epoch"] for h in run.card["training"]["history"]] == [1, 2, 3, 4]
    assert sorted(p.name for p in (run.out / "checkpoints").iterdir()) == [
        "epoch-0003-step-000000",
        "epoch-0004-step-000000",
    ]
    assert sorted(p.name for p in run.out.iterdir()) == sorted(
        ["checkpoints", "model_card.json", "status.json", run.card["model_file"]]
    )  # no temporary files left
    status = json.loads((run.out / "status.json").read_text())
    assert (status["state"], status["exit_code"], status["epoch"]) == ("completed", 0, 4)


@pytest.mark.parametrize("backend", FRAMEWORKS)
def test_learns_and_writes_a_complete_card(
    trained: Callable[[str], Trained], backend: str, trainset: Path
) -> None:
    card = trained(backend).card
    assert set(card) == CARD_KEYS and set(card["training"]) == TRAINING_KEYS
    assert card["backend"] == backend
    assert card["model_file"] == {"tensorflow": "model.keras", "pytorch": "model.pt"}[backend]
    test = card["metrics"]["test"]
    assert test["overall_accuracy"] > 0.5  # chance is 1/9
    assert card["training"]["history"][-1]["accuracy"] > card["training"]["history"][0]["accuracy"]
    assert [c["code"] for c in card["classes"]] == list(range(1, 10))
    assert set(test["per_class"]) == {c["name"] for c in card["classes"]}
    assert all({"precision", "recall", "f1", "support"} <= set(v) for v in test["per_class"].values())
    info = read_info(trainset)
    assert card["normalization"]["mean"] == pytest.approx(info.norm_mean.tolist())
    assert card["features"] == info.feature_names and card["bands"] == info.band_names
    assert card["calendar"]["dates"]["2022"] == info.dates[2022]
    assert card["training_set"]["sha256"] == hashlib.sha256(trainset.read_bytes()).hexdigest()
    assert card["training_set"]["samples"] == {"train": 420, "validation": 90, "test": 90}
    assert card["architecture"]["positional_embedding"] is False
    training = card["training"]
    assert (training["workers"], training["epochs"], training["device"]) == (1, 4, "cpu")
    assert training["samples_per_s"] > 0 and training["time_s"] > 0
    assert card["code_version"].startswith("eo-platform ")


def test_both_backends_write_the_same_card_schema(trained: Callable[[str], Trained]) -> None:
    tf_card, torch_card = trained("tensorflow").card, trained("pytorch").card

    def shape(value: object) -> object:
        if isinstance(value, dict):
            return {k: shape(v) for k, v in value.items() if k != "framework"}
        if isinstance(value, list):
            return [shape(value[0])] if value else []
        return type(value).__name__ if value is not None else None

    assert shape(tf_card) == shape(torch_card)
    # Both backends apply the same learning rate at every step.
    lrs = [[h["lr"] for h in c["training"]["history"]] for c in (tf_card, torch_card)]
    assert lrs[0] == pytest.approx(lrs[1], rel=1e-6)


def _in_memory_forward(backend: str, spec: ModelSpec, weights: np.lib.npyio.NpzFile) -> Callable:
    if backend == "tensorflow":
        from eo_tasks.models.keras_models import build_model

        model = build_model(spec)
        model.set_weights([weights[k] for k in sorted(weights.files)])
        return lambda x: model(x, training=False).numpy()
    import torch

    from eo_tasks.models.torch_models import build_model

    module = build_model(spec).eval()
    module.load_state_dict({k: torch.from_numpy(weights[k]) for k in weights.files})
    return lambda x: module(torch.from_numpy(x)).detach().numpy()


@pytest.mark.parametrize("backend", FRAMEWORKS)
def test_load_model_matches_the_trained_model(
    trained: Callable[[str], Trained], backend: str, trainset: Path
) -> None:
    run = trained(backend)
    predict = load_model(run.out)
    info = read_info(trainset)
    test = read_rows(info, info.split_slice(2))
    raw = test.x * info.norm_std + info.norm_mean  # what inference reads: unnormalized features
    probabilities = predict(raw, batch_size=32)
    assert probabilities.shape == (90, 12, 9)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    weights = np.load(run.out.parent / "debug" / "rank0.npz")  # the trainer's final in-memory weights
    forward = _in_memory_forward(backend, ModelSpec.from_dict(run.card["architecture"]), weights)
    np.testing.assert_allclose(probabilities, softmax(forward(test.x)), atol=1e-5)
    assert predict.class_codes == list(range(1, 10))


def test_invalid_inputs_exit_2_without_resubmission(trainset: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    too_big = run_train(
        train_command("pytorch", trainset, tmp_path / "a", "--epochs", "1", "--batch-size", "1000")
    )
    assert too_big.returncode == 2 and "fewer than --batch-size 1000" in too_big.stderr
    out = tmp_path / "b"
    assert run_train(train_command("pytorch", trainset, out, "--epochs", "1")).returncode == 0
    other = run_train(train_command("pytorch", trainset, out, "--epochs", "2", "--layers", "3"))
    assert other.returncode == 2 and "belong to another run (architecture differ)" in other.stderr


@pytest.mark.parametrize("backend", ["tensorflow", "pytorch"])
def test_training_on_windows_of_the_series(trainset: Path, tmp_path: Path, backend: str) -> None:
    """``--window w``: batches are crops of w consecutive steps, as sliding-window inference sees them."""
    pytest.importorskip(FRAMEWORKS[backend])
    out = tmp_path / "out"
    result = run_train(train_command(backend, trainset, out, "--epochs", "2", "--window", "5"))
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((out / "model_card.json").read_text())
    assert card["training"]["window"] == 5 and card["metrics"]["test"]["overall_accuracy"] > 0.5
    predict = load_model(out)
    info = read_info(trainset)
    x = read_rows(info, info.split_slice(2)).x[:64]
    assert predict(x[:, 3:8]).shape == (64, 5, 9)  # a window anywhere in the series
    too_long = run_train(train_command(backend, trainset, tmp_path / "x", "--epochs", "1", "--window", "99"))
    assert too_long.returncode == 2 and "--window 99: must lie in 2.." in too_long.stderr
