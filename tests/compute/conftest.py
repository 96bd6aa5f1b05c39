"""Fixtures of the compute tests: a tiny synthetic training set and a way to run the trainer.

These tests need the compute environment (``.venv-compute``: TensorFlow 2.15 + Horovod, PyTorch);
modules that need a framework skip themselves where it is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.compute.synthetic import write_trainset

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FRAMEWORKS = {"tensorflow": "tensorflow", "pytorch": "torch"}  # backend → the module it needs
LAUNCHERS = {  # two workers on this machine
    "tensorflow": [str(BIN / "horovodrun"), "--gloo", "-np", "2", "-H", "localhost:2"],
    "pytorch": [str(BIN / "torchrun"), "--nproc_per_node=2"],
}
# A model small enough for 2 cores: 2 layers, width 32.
TINY = ["--layers", "2", "--hidden", "32", "--ff-dim", "64", "--warmup-epochs", "1"]
# One thread per worker: tiny models gain nothing from more, and on a shared 2-core machine idle
# OpenMP threads spinning against other processes make steps 10x slower.
ENV = {
    **os.environ,
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "OMP_NUM_THREADS": "1",
    "PYTHONPATH": str(REPO),
    "PATH": f"{BIN}:{os.environ['PATH']}",
}


@pytest.fixture(scope="session")
def trainset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 samples × 12 steps × 6 features, 9 classes, 70/15/15 split."""
    return write_trainset(tmp_path_factory.mktemp("trainset") / "trainset.h5")


def train_command(
    backend: str, trainset: Path, out: Path, *extra: str, launcher: Sequence[str] = ()
) -> list[str]:
    """The command line of one training run (``launcher``: e.g. horovodrun/torchrun and their options)."""
    python = [str(BIN / "python")] if not launcher or launcher[0].endswith("horovodrun") else []
    return [
        *launcher,
        *python,
        "-m",
        "eo_tasks.training",
        "--backend",
        backend,
        "--trainset",
        str(trainset),
        "--out",
        str(out),
        "--arch",
        "transformer",
        "--batch-size",
        "32",
        *TINY,
        *extra,
    ]


def run_train(command: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Runs a training command to completion, output captured."""
    return subprocess.run(command, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=timeout)
