"""Training entry point run on the HPC nodes: ``python -m eo_tasks.training --trainset … --out …``.

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

import datetime as dt
import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.files import file_digest, write_json
from eo_tasks.models import CARD_NAME, ModelSpec
from eo_tasks.training.checkpoints import STATUS_NAME, resume_plan, run_identity, write_checkpoint
from eo_tasks.training.contract import EXIT_OK, EXIT_RESUBMIT, StopRequest, TrainConfig, Trainer
from eo_tasks.training.data import TrainingSetInfo, read_info
from eo_tasks.training.model_card import build_card, evaluate_test_split, write_outputs

log = logging.getLogger("eo_tasks.training.loop")


def make_trainer(config: TrainConfig, info: TrainingSetInfo, spec: ModelSpec) -> Trainer:
    """Starts this worker of the chosen backend (imports TensorFlow or PyTorch only here)."""
    if config.backend == "tensorflow":
        from eo_tasks.training.keras_trainer import HorovodKerasTrainer

        return HorovodKerasTrainer(config, info, spec)
    from eo_tasks.training.torch_trainer import DDPTrainer

    return DDPTrainer(config, info, spec)


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
                    "state": state,
                    "exit_code": exit_code,
                    "detail": detail,
                    "epoch": self.state["epoch"],
                    "step": self.state["step"],
                    "epochs": self.config.epochs,
                    "updated_at": dt.datetime.now(dt.UTC).isoformat(),
                },
            )


def start(config: TrainConfig, trainer: Trainer, spec: ModelSpec) -> Run:
    """Agrees on a starting point across ranks and restores it.

    Raises:
        ConfigError: The checkpoints in ``--out`` come from another run.
    """
    plan = None
    if trainer.rank == 0:
        config.out.mkdir(parents=True, exist_ok=True)
        identity = run_identity(config, spec, file_digest(config.trainset))
        plan = resume_plan(config, identity, trainer.workers, trainer.steps_per_epoch)
        plan["identity"] = identity
    plan = trainer.broadcast(plan)
    if plan["error"]:
        raise ConfigError(plan["error"])
    state = plan["state"] or {
        "epoch": 0,
        "step": 0,
        "history": [],
        "train_seconds": 0.0,
        "train_samples": 0,
        "interruptions": 0,
    }
    state.update(run=plan["identity"], workers=trainer.workers, steps_per_epoch=trainer.steps_per_epoch)
    if plan["checkpoint"]:
        trainer.restore(Path(plan["checkpoint"]))
        where = f", step {state['step'] + 1}" if state["step"] else ""
        if state["epoch"] < config.epochs:
            log.info("resuming at epoch %d%s from %s", state["epoch"] + 1, where, plan["checkpoint"])
        else:
            log.info(
                "%s holds %d epochs (--epochs %d): writing the model and its card",
                plan["checkpoint"],
                state["epoch"],
                config.epochs,
            )
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
        record["epoch"],
        run.config.epochs,
        record["loss"],
        record["accuracy"],
        val,
        record["lr"],
        record["samples_per_s"],
        run.trainer.workers,
        record["seconds"],
    )


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
            "epoch": epoch + 1,
            "loss": result.loss,
            "accuracy": result.accuracy,
            "lr": result.lr,
            "val_loss": validation[0] if validation else None,
            "val_accuracy": validation[1] if validation else None,
            "samples_per_s": result.steps * samples_per_step / seconds,
            "seconds": seconds,
        }
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
        run.config.out / card["model_file"],
        run.config.out / CARD_NAME,
        f"{test['overall_accuracy']:.4f}" if test else "n/a",
    )


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
            "rank": rank,
            "workers": run.trainer.workers,
            "weights_sha256": digest.hexdigest(),
            "written": run.written,
            "exit_code": exit_code,
            "epoch": run.state["epoch"],
            "step": run.state["step"],
        },
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
                stop.signal,
                run.state["epoch"] + 1,
                run.state["step"],
                EXIT_RESUBMIT,
            )
            run.status("interrupted", EXIT_RESUBMIT, f"{stop.signal}: resubmit to resume")
            code = EXIT_RESUBMIT
        dump_debug(run, code)
        return code
    finally:
        trainer.close()


def configure_logging(rank: int | None = None) -> None:
    """Logs to stderr with the rank in every line (workers' lines interleave in the job log)."""
    who = "" if rank is None else f" rank {rank}"
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s{who} %(levelname)s %(message)s",
        force=True,
        stream=sys.stderr,
    )
