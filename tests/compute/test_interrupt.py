"""Pre-emption: SIGTERM / SIGUSR1 mid-epoch → checkpoint + exit 99; the rerun resumes at that step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.compute.conftest import ENV, FRAMEWORKS, LAUNCHERS, REPO, run_train, train_command
from tests.compute.synthetic import write_trainset

# Long epochs (about a second of small steps), so that a signal lands inside one.
SLOW = ["--batch-size", "8", "--layers", "1", "--hidden", "16", "--ff-dim", "16"]


@pytest.fixture(scope="module")
def long_trainset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_trainset(tmp_path_factory.mktemp("long") / "trainset.h5", samples=3000)


def _wait_for(path: Path, process: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()[1][-3000:]
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.05)


def _interrupt(command: list[str], out: Path, debug: Path, rank: int, sig: signal.Signals) -> tuple[int, str]:
    """Starts training, signals one rank once epoch 1's checkpoint exists, waits for the exit."""
    process = subprocess.Popen(
        command, env=ENV, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    _wait_for(out / "checkpoints" / "epoch-0001-step-000000" / "state.json", process)
    os.kill(int((debug / f"rank{rank}.pid").read_text()), sig)
    _, stderr = process.communicate(timeout=60)
    return process.returncode, stderr


def _check_interrupted(out: Path) -> dict:
    status = json.loads((out / "status.json").read_text())
    assert (status["state"], status["exit_code"]) == ("interrupted", 99)
    assert status["step"] > 0, "the signal should land inside an epoch"
    newest = sorted((out / "checkpoints").iterdir())[-1]
    assert newest.name == f"epoch-{status['epoch']:04d}-step-{status['step']:06d}"
    return status


def _check_resumed(resumed: subprocess.CompletedProcess[str], status: dict, out: Path) -> None:
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming at epoch {status['epoch'] + 1}, step {status['step'] + 1} from" in resumed.stderr
    card = json.loads((out / "model_card.json").read_text())
    assert card["training"]["interruptions"] == 1
    assert [h["epoch"] for h in card["training"]["history"]] == list(range(1, status["epoch"] + 2))


@pytest.mark.parametrize(
    ("backend", "sig"),
    [("tensorflow", signal.SIGTERM), ("pytorch", signal.SIGUSR1)],
    ids=["tensorflow", "pytorch"],
)
def test_signal_checkpoints_exits_99_and_the_rerun_resumes(
    backend: str, sig: signal.Signals, long_trainset: Path, tmp_path: Path
) -> None:
    pytest.importorskip(FRAMEWORKS[backend])
    out, debug = tmp_path / "out", tmp_path / "debug"
    command = train_command(backend, long_trainset, out, "--epochs", "30", "--debug-dir", str(debug), *SLOW)
    code, stderr = _interrupt(command, out, debug, 0, sig)
    assert code == 99, stderr[-3000:]
    assert f"{sig.name}: stopped at epoch" in stderr
    status = _check_interrupted(out)
    resume = train_command(backend, long_trainset, out, "--epochs", str(status["epoch"] + 1), *SLOW)
    _check_resumed(run_train(resume), status, out)


@pytest.mark.parametrize("backend", FRAMEWORKS)
def test_a_signal_to_one_worker_stops_all_at_the_same_step(
    backend: str, long_trainset: Path, tmp_path: Path
) -> None:
    pytest.importorskip(FRAMEWORKS[backend])
    out, debug = tmp_path / "out", tmp_path / "debug"
    command = train_command(
        backend,
        long_trainset,
        out,
        "--epochs",
        "30",
        "--debug-dir",
        str(debug),
        *SLOW,
        launcher=LAUNCHERS[backend],
    )
    code, stderr = _interrupt(command, out, debug, 1, signal.SIGUSR1)
    # Every worker exits 99; horovodrun reports any non-zero worker as 1, torchrun as its own failure.
    assert code != 0
    ranks = [json.loads((debug / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["exit_code"] for r in ranks] == [99, 99], stderr[-3000:]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert (ranks[0]["step"], ranks[1]["step"]) == (ranks[1]["step"], ranks[0]["step"]) and ranks[0][
        "step"
    ] > 0
    assert ranks[1]["written"] == []
    status = _check_interrupted(out)
    resume = train_command(
        backend, long_trainset, out, "--epochs", str(status["epoch"] + 1), *SLOW, launcher=LAUNCHERS[backend]
    )
    _check_resumed(run_train(resume), status, out)
