"""Checkpoints that make a SLURM job restartable: written atomically each epoch, newest resumed."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eo_tasks.core.files import write_json
from eo_tasks.models import ModelSpec
from eo_tasks.training.contract import TrainConfig, Trainer

log = logging.getLogger(__name__)
KEEP_CHECKPOINTS = 2
CHECKPOINTS_DIR = "checkpoints"
STATUS_NAME = "status.json"
_CHECKPOINT_RE = re.compile(r"^epoch-(\d{4,})-step-(\d{6,})$")


# --- checkpoints and files --------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint directory and its ``state.json``.

    Attributes:
        path: ``<out>/checkpoints/epoch-EEEE-step-SSSSSS``.
        state: ``epoch`` (epochs completed), ``step`` (steps done in the next epoch), ``history``,
            ``run`` (what must match to resume), ``workers``, ``steps_per_epoch``, ``train_seconds``,
            ``train_samples``, ``interruptions``.
    """

    path: Path
    state: dict[str, Any]


def newest_checkpoint(out: Path) -> Checkpoint | None:
    """The newest complete checkpoint under ``<out>/checkpoints`` (temporary directories ignored)."""
    found = []
    for path in (out / CHECKPOINTS_DIR).glob("epoch-*"):
        match = _CHECKPOINT_RE.match(path.name)
        if match and (path / "state.json").is_file():
            found.append((int(match[1]), int(match[2]), path))
    if not found:
        return None
    path = max(found)[2]
    return Checkpoint(path, json.loads((path / "state.json").read_text()))


def write_checkpoint(trainer: Trainer, out: Path, state: dict[str, Any]) -> Path:
    """Writes a checkpoint atomically (a temporary directory, then rename) and prunes old ones.

    Args:
        trainer: Supplies model and optimizer state.
        out: The run's output directory.
        state: The checkpoint's ``state.json`` (``epoch`` and ``step`` name the directory).

    Returns:
        The checkpoint directory.
    """
    root = out / CHECKPOINTS_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"epoch-{state['epoch']:04d}-step-{state['step']:06d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    trainer.save_checkpoint(tmp)
    write_json(tmp / "state.json", state)
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    complete = sorted(p for p in root.iterdir() if _CHECKPOINT_RE.match(p.name))
    for old in complete[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def run_identity(config: TrainConfig, spec: ModelSpec, trainset_sha256: str) -> dict[str, Any]:
    """What a checkpoint must share with a run to be resumed by it."""
    return {"backend": config.backend, "architecture": spec.to_dict(), "trainset_sha256": trainset_sha256}


def resume_plan(config: TrainConfig, identity: dict[str, Any], workers: int, steps: int) -> dict[str, Any]:
    """Where to start (rank 0 decides; the plan is broadcast).

    Args:
        config: The run.
        identity: :func:`run_identity` of this run.
        workers: Number of workers now.
        steps: Steps per epoch now.

    Returns:
        ``{"checkpoint": path or None, "state": state or None, "error": message or None}``; the
        ``step`` of the state is reset to 0 when the number of workers or of steps per epoch changed
        (the data order of the interrupted epoch is then another one).
    """
    checkpoint = newest_checkpoint(config.out)
    if checkpoint is None:
        return {"checkpoint": None, "state": None, "error": None}
    state = checkpoint.state
    if state["run"] != identity:
        differs = sorted(k for k in identity if state["run"].get(k) != identity[k])
        return {
            "checkpoint": None,
            "state": None,
            "error": f"the checkpoints in {checkpoint.path.parent} belong to another run "
            f"({', '.join(differs)} differ): use another --out, or delete that directory to start over",
        }
    if state["step"] and (state["workers"] != workers or state["steps_per_epoch"] != steps):
        state = {**state, "step": 0}
    return {"checkpoint": str(checkpoint.path), "state": state, "error": None}
