"""The learning-rate schedule of the published setup: linear warm-up to lr × workers, then cosine cycles."""

from __future__ import annotations

import logging
import math

from eo_tasks.training.contract import TrainConfig

log = logging.getLogger(__name__)
LR_FLOOR = 0.1  # the cosine cycles go from the peak down to LR_FLOOR × peak


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
