"""Two workers (horovodrun --gloo / torchrun, CPU): identical weights everywhere, only rank 0 writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eo_tasks.training.__main__ import parse_args
from eo_tasks.training.schedule import learning_rate
from tests.compute.conftest import FRAMEWORKS, LAUNCHERS, TINY, run_train, train_command


@pytest.mark.parametrize("backend", FRAMEWORKS)
def test_two_workers_end_identical_and_only_rank_0_writes(
    backend: str, trainset: Path, tmp_path: Path
) -> None:
    pytest.importorskip(FRAMEWORKS[backend])
    out, debug = tmp_path / "out", tmp_path / "debug"
    command = train_command(
        backend, trainset, out, "--epochs", "2", "--debug-dir", str(debug), launcher=LAUNCHERS[backend]
    )
    result = run_train(command)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((debug / f"rank{r}.json").read_text()) for r in (0, 1)]
    # Ranks start from different initial weights (seed + rank) and read different shares of the data.
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert ranks[1]["written"] == []
    assert [Path(p).name for p in ranks[0]["written"]] == [
        "epoch-0001-step-000000",
        "epoch-0002-step-000000",
        "model_card.json",
    ]
    card = json.loads((out / "model_card.json").read_text())
    training = card["training"]
    assert (training["workers"], training["global_batch_size"], training["steps_per_epoch"]) == (2, 64, 6)
    assert training["learning_rate"]["peak"] == pytest.approx(2 * 0.003)
    config = parse_args(["--trainset", str(trainset), "--out", str(out), *TINY])
    assert training["history"][-1]["lr"] == pytest.approx(learning_rate(config, 2, 1, 5, 6))
