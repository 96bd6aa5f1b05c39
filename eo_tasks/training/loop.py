"""Training entry point run on the HPC nodes: ``python -m eo_tasks.training.loop --trainset … --out …``.

Why it looks like this: a SLURM job can be queued for hours, cut at its time limit, pre-empted, or
lose a node, and the orchestrator (Airflow) only sees files and exit codes. So the run is a
restartable loop: every epoch rank 0 writes a checkpoint (model, optimizer, epoch, history)
atomically into ``<out>/checkpoints/``; a new job with the same ``--out`` resumes from the newest
one; SIGTERM or SIGUSR1 (``sbatch --signal``) makes every worker finish its current step, rank 0
write a checkpoint, and the process exit with :data:`EXIT_RESUBMIT` (99) so the orchestrator knows
to resubmit rather than fail. ``<out>/status.json`` says the same in a file, for launchers such as
``horovodrun`` that replace a worker's exit code with their own.

The loop itself is backend-neutral (:class:`Trainer`): TensorFlow + Horovod
(:mod:`eo_tasks.training.keras_trainer`, the default) or PyTorch + DistributedDataParallel
(:mod:`eo_tasks.training.torch_trainer`) supply the steps, so both share the learning-rate schedule,
the checkpoint rules, the progress log and the model card. Training follows the published setup:
Adam, a learning rate of ``--lr`` × workers reached after ``--warmup-epochs`` of linear warm-up (as
Horovod's ``LearningRateWarmupCallback`` does), then cosine cycles of ``--lr-cycle-epochs``; every
time step carries the sample's label (one output per step). ``--batch-size`` is per worker.

At the end rank 0 evaluates the test split and writes the model file and ``model_card.json``
(see :func:`build_card`); :func:`eo_tasks.models.load_model` reads them for inference.

Exit codes: 0 done, 1 unexpected failure, 2 invalid arguments or inputs (do not resubmit),
99 interrupted after a checkpoint (resubmit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import numpy as np

import eo_tasks
from eo_tasks.core.errors import ConfigError
from eo_tasks.core.files import write_json
from eo_tasks.models import (
    ARCHITECTURES,
    BACKENDS,
    CARD_NAME,
    CARD_SCHEMA,
    CARD_SCHEMA_VERSION,
    MODEL_FILES,
    ModelSpec,
)
from eo_tasks.training.data import (
    FORMAT_VERSION,
    SPLIT_NAMES,
    SPLIT_TEST,
    TrainingSetInfo,
    read_info,
    read_rows,
    sha256,
)

log = logging.getLogger("eo_tasks.training.loop")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_RESUBMIT = 0, 1, 2, 99
LR_FLOOR = 0.1  # the cosine cycles go from the peak down to LR_FLOOR × peak
KEEP_CHECKPOINTS = 2
CHECKPOINTS_DIR = "checkpoints"
STATUS_NAME = "status.json"
_CHECKPOINT_RE = re.compile(r"^epoch-(\d{4,})-step-(\d{6,})$")


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


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive integer")
    return number


def parse_args(argv: list[str] | None = None) -> TrainConfig:
    """Parses the command line.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The run's configuration.
    """
    parser = argparse.ArgumentParser(
        prog="python -m eo_tasks.training.loop",
        description="Train an LSTM / Transformer land-cover classifier (Horovod or DDP); resumable.",
        epilog="Exit codes: 0 done, 1 failure, 2 invalid input, 99 interrupted and checkpointed (resubmit).",
    )
    parser.add_argument("--trainset", type=Path, required=True, help="training-set HDF5 file")
    parser.add_argument("--out", type=Path, required=True, help="output directory (shared by all workers)")
    parser.add_argument("--backend", choices=BACKENDS, default="tensorflow")
    parser.add_argument("--arch", choices=ARCHITECTURES, default="transformer")
    parser.add_argument("--epochs", type=_positive, default=100)
    parser.add_argument("--batch-size", type=_positive, default=256, help="samples per step and worker")
    parser.add_argument("--lr", type=float, default=0.003, help="base learning rate (peak: lr × workers)")
    parser.add_argument("--warmup-epochs", type=int, default=3)
    parser.add_argument("--lr-cycle-epochs", type=_positive, default=10)
    parser.add_argument("--seed", type=int, default=0)
    sizes = parser.add_argument_group("model sizes (default: the published ones)")
    sizes.add_argument("--layers", type=_positive)
    sizes.add_argument("--hidden", type=_positive, help="LSTM hidden size / Transformer d_model")
    sizes.add_argument("--heads", type=_positive)
    sizes.add_argument("--ff-dim", type=_positive)
    sizes.add_argument("--dropout", type=float)
    parser.add_argument("--window", type=_positive, help="train on random crops of W steps (inference's w)")
    parser.add_argument("--debug-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return TrainConfig(
        trainset=args.trainset,
        out=args.out,
        backend=args.backend,
        arch=args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_epochs=max(0, args.warmup_epochs),
        lr_cycle_epochs=args.lr_cycle_epochs,
        seed=args.seed,
        sizes={k: getattr(args, k) for k in ("layers", "hidden", "heads", "ff_dim", "dropout")},
        window=args.window,
        debug_dir=args.debug_dir,
    )


# --- learning rate ----------------------------------------------------------------------------
def warmup_multiplier(epoch: float, workers: int, warmup_epochs: int) -> float:
    """Horovod's warm-up: from ``1 / workers`` of the peak at epoch 0 to the peak at ``warmup_epochs``."""
    return (epoch * (workers - 1) / warmup_epochs + 1) / workers


def cyclic_multiplier(epoch: float, cycle_epochs: int) -> float:
    """Cosine cycles after the warm-up: the peak at the start of each cycle, ``LR_FLOOR`` at its end.

    Args:
        epoch: Fractional epochs since the end of the warm-up.
        cycle_epochs: Length of a cycle.

    Returns:
        Multiplier of the peak learning rate.
    """
    phase = (epoch % cycle_epochs) / cycle_epochs
    return LR_FLOOR + (1 - LR_FLOOR) * 0.5 * (1 + math.cos(math.pi * phase))


def learning_rate(config: TrainConfig, workers: int, epoch: int, step: int, steps: int) -> float:
    """The learning rate of one step, exactly as Horovod's Keras callbacks set it.

    Args:
        config: The run (``lr``, ``warmup_epochs``, ``lr_cycle_epochs``).
        workers: Number of workers (the peak is ``lr × workers``).
        epoch: 0-based epoch.
        step: 0-based step within the epoch.
        steps: Steps per epoch.

    Returns:
        The learning rate.
    """
    peak = config.lr * workers
    if epoch < config.warmup_epochs:
        return peak * warmup_multiplier(epoch + (step + 1) / steps, workers, config.warmup_epochs)
    return peak * cyclic_multiplier(epoch + step / steps - config.warmup_epochs, config.lr_cycle_epochs)


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


def make_trainer(config: TrainConfig, info: TrainingSetInfo, spec: ModelSpec) -> Trainer:
    """Starts this worker of the chosen backend (imports TensorFlow or PyTorch only here)."""
    if config.backend == "tensorflow":
        from eo_tasks.training.keras_trainer import HorovodKerasTrainer

        return HorovodKerasTrainer(config, info, spec)
    from eo_tasks.training.torch_trainer import DDPTrainer

    return DDPTrainer(config, info, spec)


def cpu_threads(local_workers: int) -> int:
    """Threads per worker on a CPU node: ``OMP_NUM_THREADS`` if set, else the cores shared evenly."""
    if os.environ.get("OMP_NUM_THREADS", "").isdigit():
        return max(1, int(os.environ["OMP_NUM_THREADS"]))
    return max(1, len(os.sched_getaffinity(0)) // max(1, local_workers))


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


# --- metrics ----------------------------------------------------------------------------------
def _f1(precision: float | None, recall: float | None) -> float | None:
    if precision is None or recall is None:
        return None
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, codes: list[int], names: list[str]
) -> dict[str, Any]:
    """Overall accuracy and per-class precision, recall and F1.

    Args:
        y_true: Class indices, any shape.
        y_pred: Predicted class indices, same shape.
        codes: Class code per index.
        names: Class name per index.

    Returns:
        ``overall_accuracy``, ``macro_f1`` (over classes present in ``y_true``), ``per_class`` (name →
        code, precision, recall, f1, support; None where undefined), ``confusion`` (rows: truth).
    """
    k = len(codes)
    confusion = np.bincount(y_true.ravel() * k + y_pred.ravel(), minlength=k * k).reshape(k, k)
    hits, support, predicted = np.diag(confusion), confusion.sum(axis=1), confusion.sum(axis=0)
    per_class: dict[str, Any] = {}
    for i, (code, name) in enumerate(zip(codes, names, strict=True)):
        precision = float(hits[i] / predicted[i]) if predicted[i] else None
        recall = float(hits[i] / support[i]) if support[i] else None
        per_class[name] = {
            "code": code,
            "precision": precision,
            "recall": recall,
            "f1": _f1(precision, recall),
            "support": int(support[i]),
        }
    f1s = [c["f1"] or 0.0 for c in per_class.values() if c["support"]]
    return {
        "overall_accuracy": float(hits.sum() / max(1, confusion.sum())),
        "macro_f1": float(np.mean(f1s)) if f1s else None,
        "per_class": per_class,
        "confusion": confusion.tolist(),
    }


def evaluate_test_split(trainer: Trainer, info: TrainingSetInfo) -> dict[str, Any] | None:
    """Evaluates the test split on rank 0: every time step of every sample counts."""
    if not info.split_counts[SPLIT_TEST]:
        log.warning("the test split is empty: the model card has no test metrics")
        return None
    test = read_rows(info, info.split_slice(SPLIT_TEST))
    predicted = trainer.predict_logits(test.x).argmax(axis=-1)
    truth = np.broadcast_to(test.y[:, None], predicted.shape)
    report = classification_report(truth, predicted, info.class_codes, info.class_names)
    return {**report, "samples": len(test), "time_steps": info.time_steps, "evaluated": "every time step"}


# --- model card -------------------------------------------------------------------------------
def code_version() -> str:
    """``git describe --always --dirty`` of the code, or the package version outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(eo_tasks.__file__).parent, capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        return f"eo-platform {eo_tasks.__version__} ({result.stdout.strip()})"
    except (OSError, subprocess.SubprocessError):
        return f"eo-platform {eo_tasks.__version__}"


def build_card(
    config: TrainConfig,
    info: TrainingSetInfo,
    spec: ModelSpec,
    trainer: Trainer,
    state: dict[str, Any],
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """The model card: everything needed to use, trust and reproduce the model (same for both backends).

    Args:
        config: The run.
        info: The training set.
        spec: The architecture.
        trainer: The finished worker (rank 0).
        state: Final checkpoint state (history, time, samples).
        metrics: ``{"test": …, "validation": …}``.

    Returns:
        The card.
    """
    created = dt.datetime.now(dt.UTC)
    seconds = state["train_seconds"]
    return {
        "schema": CARD_SCHEMA,
        "schema_version": CARD_SCHEMA_VERSION,
        "model_id": f"{info.aoi or 'model'}-{spec.architecture}-{config.backend}-{created:%Y%m%dT%H%M%SZ}",
        "created_at": created.isoformat(),
        "backend": config.backend,
        "model_file": MODEL_FILES[config.backend],
        "architecture": spec.to_dict(),
        "classes": [
            {"index": i, "code": code, "name": name, "color": color}
            for i, (code, name, color) in enumerate(
                zip(
                    info.class_codes,
                    info.class_names,
                    info.class_colors or [""] * info.n_classes,
                    strict=True,
                )
            )
        ],
        "features": info.feature_names,
        "bands": info.band_names,
        "calendar": {
            "time_steps": info.time_steps,
            "years": info.years,
            "dates": {str(y): d for y, d in info.dates.items()},
        },
        "normalization": {
            "mean": info.norm_mean.tolist(),
            "std": info.norm_std.tolist(),
            "formula": "(x - mean) / std",
        },
        "metrics": metrics,
        "training": {
            **trainer.runtime,
            "epochs": len(state["history"]),
            "workers": trainer.workers,
            "batch_size_per_worker": config.batch_size,
            "global_batch_size": config.batch_size * trainer.workers,
            "steps_per_epoch": trainer.steps_per_epoch,
            "optimizer": "Adam",
            "learning_rate": {
                "base": config.lr,
                "peak": config.lr * trainer.workers,
                "warmup_epochs": config.warmup_epochs,
                "schedule": f"linear warm-up, then cosine cycles from the peak to {LR_FLOOR} x peak",
                "cycle_epochs": config.lr_cycle_epochs,
            },
            "loss": "cross-entropy at every time step (each step labelled with the sample's class)",
            "window": config.window,
            "seed": config.seed,
            "train_samples_seen": state["train_samples"],
            "time_s": round(seconds, 3),
            "samples_per_s": round(state["train_samples"] / seconds, 1) if seconds else None,
            "interruptions": state["interruptions"],
            "history": state["history"],
        },
        "code_version": code_version(),
        "training_set": {
            "path": str(info.path.resolve()),
            "sha256": state["run"]["trainset_sha256"],
            "aoi": info.aoi,
            "format_version": FORMAT_VERSION,
            "created_at": info.created_at,
            "samples": dict(zip(SPLIT_NAMES, info.split_counts, strict=True)),
        },
    }


def write_outputs(trainer: Trainer, out: Path, card: dict[str, Any]) -> None:
    """Writes the model file, then the card (the card's presence means the model is complete)."""
    tmp = out / f".tmp-model-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        trainer.save_model(tmp / card["model_file"])
        os.replace(tmp / card["model_file"], out / card["model_file"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_json(out / CARD_NAME, card)


# --- the loop ---------------------------------------------------------------------------------
@dataclass
class Run:
    """The mutable state of one process's run: what rank 0 checkpoints, and what this rank wrote."""

    config: TrainConfig
    trainer: Trainer
    state: dict[str, Any]
    written: list[str] = field(default_factory=list)

    def checkpoint(self, epoch: int, step: int) -> None:
        """Rank 0 writes a checkpoint of ``epoch`` epochs plus ``step`` steps; other ranks write nothing."""
        self.state.update(epoch=epoch, step=step)
        if self.trainer.rank == 0:
            self.written.append(str(write_checkpoint(self.trainer, self.config.out, self.state)))

    def interrupted(self, epoch: int, step: int) -> bool:
        """Checkpoints a stopped run at ``epoch`` epochs plus ``step`` steps; returns False (not finished)."""
        self.state["interruptions"] += 1
        self.checkpoint(epoch, step)
        return False

    def status(self, state: str, exit_code: int, detail: str = "") -> None:
        """Rank 0 records the outcome in ``<out>/status.json``."""
        if self.trainer.rank == 0:
            write_json(
                self.config.out / STATUS_NAME,
                {
                    "state": state, "exit_code": exit_code, "detail": detail,
                    "epoch": self.state["epoch"], "step": self.state["step"], "epochs": self.config.epochs,
                    "updated_at": dt.datetime.now(dt.UTC).isoformat(),
                },
            )  # fmt: skip


def start(config: TrainConfig, trainer: Trainer, spec: ModelSpec) -> Run:
    """Agrees on a starting point across ranks and restores it.

    Raises:
        ConfigError: The checkpoints in ``--out`` come from another run.
    """
    plan = None
    if trainer.rank == 0:
        config.out.mkdir(parents=True, exist_ok=True)
        identity = run_identity(config, spec, sha256(config.trainset))
        plan = resume_plan(config, identity, trainer.workers, trainer.steps_per_epoch)
        plan["identity"] = identity
    plan = trainer.broadcast(plan)
    if plan["error"]:
        raise ConfigError(plan["error"])
    state = plan["state"] or {
        "epoch": 0, "step": 0, "history": [], "train_seconds": 0.0, "train_samples": 0, "interruptions": 0,
    }  # fmt: skip
    state.update(run=plan["identity"], workers=trainer.workers, steps_per_epoch=trainer.steps_per_epoch)
    if plan["checkpoint"]:
        trainer.restore(Path(plan["checkpoint"]))
        where = f", step {state['step'] + 1}" if state["step"] else ""
        if state["epoch"] < config.epochs:
            log.info("resuming at epoch %d%s from %s", state["epoch"] + 1, where, plan["checkpoint"])
        else:
            log.info(
                "%s holds %d epochs (--epochs %d): writing the model and its card",
                plan["checkpoint"], state["epoch"], config.epochs,
            )  # fmt: skip
    return Run(config, trainer, state)


def log_epoch(run: Run, record: dict[str, Any]) -> None:
    """Rank 0 logs one epoch's progress line."""
    if run.trainer.rank != 0:
        return
    val = (
        f" val_loss {record['val_loss']:.4f} val_accuracy {record['val_accuracy']:.4f}"
        if record["val_loss"] is not None
        else ""
    )
    log.info(
        "epoch %d/%d: loss %.4f accuracy %.4f%s lr %.3g samples/s %.0f (%d workers) %.1f s",
        record["epoch"], run.config.epochs, record["loss"], record["accuracy"], val, record["lr"],
        record["samples_per_s"], run.trainer.workers, record["seconds"],
    )  # fmt: skip


def train_epochs(run: Run, stop: StopRequest) -> bool:
    """Trains from the run's state to ``--epochs``, checkpointing every epoch.

    Args:
        run: The started run.
        stop: Polled between steps and epochs.

    Returns:
        True if all epochs ran, False if a stop request interrupted (a checkpoint was written).
    """
    trainer, state = run.trainer, run.state
    samples_per_step = run.config.batch_size * trainer.workers
    for epoch in range(state["epoch"], run.config.epochs):
        if trainer.any_rank(stop.requested):
            return run.interrupted(epoch, state["step"])
        began = time.monotonic()
        result = trainer.train_epoch(epoch, state["step"], stop)
        seconds = time.monotonic() - began
        state["train_seconds"] += seconds
        state["train_samples"] += result.steps * samples_per_step
        if state["step"] + result.steps < trainer.steps_per_epoch:
            return run.interrupted(epoch, state["step"] + result.steps)
        validation = trainer.validate()
        record = {
            "epoch": epoch + 1, "loss": result.loss, "accuracy": result.accuracy, "lr": result.lr,
            "val_loss": validation[0] if validation else None,
            "val_accuracy": validation[1] if validation else None,
            "samples_per_s": result.steps * samples_per_step / seconds, "seconds": seconds,
        }  # fmt: skip
        state["history"].append(record)
        log_epoch(run, record)
        run.checkpoint(epoch + 1, 0)
    return True


def finish(run: Run, info: TrainingSetInfo, spec: ModelSpec) -> None:
    """Rank 0 evaluates the test split and writes the model and its card."""
    if run.trainer.rank != 0:
        return
    history = run.state["history"]
    last = history[-1] if history else {}
    metrics = {
        "test": evaluate_test_split(run.trainer, info),
        "validation": {"loss": last.get("val_loss"), "accuracy": last.get("val_accuracy")},
    }
    card = build_card(run.config, info, spec, run.trainer, run.state, metrics)
    write_outputs(run.trainer, run.config.out, card)
    run.written.append(str(run.config.out / CARD_NAME))
    test = metrics["test"]
    log.info(
        "wrote %s and %s (test overall accuracy %s)",
        run.config.out / card["model_file"], run.config.out / CARD_NAME,
        f"{test['overall_accuracy']:.4f}" if test else "n/a",
    )  # fmt: skip


def dump_debug(run: Run, exit_code: int) -> None:
    """Writes this rank's final weights, their digest and the files it wrote (``--debug-dir``, tests)."""
    directory = run.config.debug_dir
    if directory is None:
        return
    weights = run.trainer.weights()
    digest = hashlib.sha256()
    for name, value in weights.items():
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(value).tobytes())
    rank = run.trainer.rank
    np.savez(directory / f"rank{rank}.npz", **weights)
    write_json(
        directory / f"rank{rank}.json",
        {
            "rank": rank, "workers": run.trainer.workers, "weights_sha256": digest.hexdigest(),
            "written": run.written, "exit_code": exit_code, "epoch": run.state["epoch"],
            "step": run.state["step"],
        },
    )  # fmt: skip


def configure_logging(rank: int | None = None) -> None:
    """Logs to stderr with the rank in every line (workers' lines interleave in the job log)."""
    who = "" if rank is None else f" rank {rank}"
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s{who} %(levelname)s %(message)s",
        force=True,
        stream=sys.stderr,
    )


def train(config: TrainConfig, stop: StopRequest) -> int:
    """Runs one training job on this worker.

    Args:
        config: The run.
        stop: The installed stop request.

    Returns:
        :data:`EXIT_OK` or :data:`EXIT_RESUBMIT`.

    Raises:
        ConfigError: Invalid training set, sizes or checkpoints.
    """
    info = read_info(config.trainset)
    if config.window is not None and not 2 <= config.window <= info.time_steps:
        raise ConfigError(f"--window {config.window}: must lie in 2..{info.time_steps}, the series' length")
    spec = ModelSpec.published(config.arch, info.n_features, info.n_classes, **config.sizes)
    trainer = make_trainer(config, info, spec)
    try:
        configure_logging(trainer.rank)
        if config.debug_dir:
            config.debug_dir.mkdir(parents=True, exist_ok=True)
            (config.debug_dir / f"rank{trainer.rank}.pid").write_text(str(os.getpid()))
        run = start(config, trainer, spec)
        if train_epochs(run, stop):
            finish(run, info, spec)
            run.status("completed", EXIT_OK)
            code = EXIT_OK
        else:
            log.warning(
                "%s: stopped at epoch %d, step %d; checkpoint written, exiting %d to be resubmitted",
                stop.signal, run.state["epoch"] + 1, run.state["step"], EXIT_RESUBMIT,
            )  # fmt: skip
            run.status("interrupted", EXIT_RESUBMIT, f"{stop.signal}: resubmit to resume")
            code = EXIT_RESUBMIT
        dump_debug(run, code)
        return code
    finally:
        trainer.close()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point.

    Args:
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit code (0 done, 1 failure, 2 invalid input, 99 interrupted: resubmit).
    """
    config = parse_args(argv)
    configure_logging()
    stop = StopRequest().install()
    try:
        return train(config, stop)
    except ConfigError as err:
        log.error("%s", err)
        return EXIT_CONFIG
    except Exception:
        log.exception("training failed")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
