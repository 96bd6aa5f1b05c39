"""``python -m eo_tasks.training``: the training job's command line (see :mod:`eo_tasks.training.loop`).

Exit codes: 0 done, 1 unexpected failure, 2 invalid arguments or inputs (do not resubmit),
99 interrupted after a checkpoint (resubmit).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from eo_tasks.core.aoi_sections import ARCHITECTURES, BACKENDS
from eo_tasks.core.errors import ConfigError
from eo_tasks.training.contract import EXIT_CONFIG, EXIT_FAILED, StopRequest, TrainConfig
from eo_tasks.training.loop import configure_logging, train

log = logging.getLogger("eo_tasks.training.loop")


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
        prog="python -m eo_tasks.training",
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
