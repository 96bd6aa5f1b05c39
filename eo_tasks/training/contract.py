"""What the training loop and its two backends share: settings, exit codes, epoch results, trainer protocol.

A leaf module: both backends (:mod:`eo_tasks.training.keras_trainer`, :mod:`eo_tasks.training.torch_trainer`)
and the loop import it, and it imports neither, so there is no import cycle.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import numpy as np

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_RESUBMIT = 0, 1, 2, 99


# --- configuration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """One training run, as given on the command line.

    Attributes:
        trainset: Training-set HDF5 file.
        out: Output directory (model, card, checkpoints, status); on a filesystem every worker sees.
        backend: ``tensorflow`` (Horovod) or ``pytorch`` (DDP).
        arch: ``lstm`` or ``transformer``.
        epochs: Total epochs (a resumed run continues up to this number).
        batch_size: Samples per step and worker.
        lr: Base learning rate; the peak is ``lr × workers``.
        warmup_epochs: Epochs of linear warm-up from ``lr`` to the peak.
        lr_cycle_epochs: Length of one cosine cycle after the warm-up.
        seed: Seeds initial weights (rank 0's are broadcast) and the data order.
        sizes: Overrides of the published sizes (``layers``, ``hidden``, ``heads``, ``ff_dim``, ``dropout``).
        window: Train on random crops of this many consecutive time steps (one offset per batch), as
            the sliding-window inference sees them; None trains on the whole annual series.
        debug_dir: If set, every rank writes its pid, final weights and what it wrote there (tests).
    """

    trainset: Path
    out: Path
    backend: str = "tensorflow"
    arch: str = "transformer"
    epochs: int = 100
    batch_size: int = 256
    lr: float = 0.003
    warmup_epochs: int = 3
    lr_cycle_epochs: int = 10
    seed: int = 0
    sizes: dict[str, Any] = field(default_factory=dict)
    window: int | None = None
    debug_dir: Path | None = None


# --- stop requests ----------------------------------------------------------------------------
class StopRequest:
    """Remembers a SIGTERM / SIGUSR1; the training loop polls it between steps."""

    def __init__(self) -> None:
        self.signal: str | None = None

    @property
    def requested(self) -> bool:
        """Whether a stop signal arrived."""
        return self.signal is not None

    def install(self) -> StopRequest:
        """Installs the handlers (main thread only) and returns self."""
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = self.signal or signal.Signals(signum).name


# --- the backend interface --------------------------------------------------------------------
@dataclass(frozen=True)
class EpochResult:
    """What one epoch did, averaged over workers (fewer steps than planned: a stop request ended it).

    Attributes:
        steps: Steps run.
        loss: Mean per-step cross-entropy.
        accuracy: Fraction of time steps classified right.
        lr: Learning rate of the last step.
    """

    steps: int
    loss: float
    accuracy: float
    lr: float


class Trainer(Protocol):
    """One worker of a data-parallel training run (implemented per backend)."""

    rank: int
    workers: int
    steps_per_epoch: int
    runtime: dict[str, Any]  # framework versions, device, mixed precision, compilation

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        ...

    def any_rank(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any rank (a collective: all ranks must call it)."""
        ...

    def restore(self, checkpoint: Path) -> None:
        """Loads model and optimizer state from a checkpoint directory."""
        ...

    def save_checkpoint(self, directory: Path) -> None:
        """Writes model and optimizer state into an existing directory."""
        ...

    def train_epoch(self, epoch: int, first_step: int, stop: StopRequest) -> EpochResult:
        """Runs the steps ``first_step..steps_per_epoch-1`` of ``epoch``, stopping early on request."""
        ...

    def validate(self) -> tuple[float, float] | None:
        """Mean loss and accuracy on the validation split over all ranks (None if it is empty)."""
        ...

    def predict_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits ``(batch, time, classes)`` for normalized features, on this rank alone."""
        ...

    def save_model(self, path: Path) -> None:
        """Writes the inference model file."""
        ...

    def weights(self) -> dict[str, np.ndarray]:
        """The model's weights by name, in a stable order."""
        ...

    def close(self) -> None:
        """Leaves the process group."""
        ...


def cpu_threads(local_workers: int) -> int:
    """Threads per worker on a CPU node: ``OMP_NUM_THREADS`` if set, else the cores shared evenly."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)) // max(1, local_workers))
