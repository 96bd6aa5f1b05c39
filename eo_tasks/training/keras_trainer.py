"""One Horovod worker training a Keras classifier: the default backend of ``python -m eo_tasks.training``.

Why these choices: Horovod 0.28 is the last release and needs TensorFlow 2.15's legacy Keras
optimizers, so the optimizer is ``tf.keras.optimizers.legacy.Adam`` wrapped in
``hvd.DistributedOptimizer`` (gradients averaged over workers by allreduce). Horovod's own callbacks
do what they are for: ``BroadcastGlobalVariablesCallback(0)`` makes rank 0's weights everyone's,
``MetricAverageCallback`` averages the epoch's loss and accuracy, and ``LearningRateWarmupCallback``
plus ``LearningRateScheduleCallback`` set the learning rate of every step (the same values as
:func:`eo_tasks.training.schedule.learning_rate`, which the PyTorch backend uses). Each worker reads only its
contiguous share of the training split (equal shares, so all take the same number of steps) and
shuffles it with a per-epoch seed, so an interrupted epoch can be resumed at the exact step.
``fit`` runs one epoch per call, which lets a stop request end an epoch after any step and skips
validation for such a partial epoch. On a GPU node each worker takes the GPU of its local rank,
with mixed precision and XLA auto-clustering (which compiles around Horovod's collective ops).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import horovod
import horovod.tensorflow as hvd_tf
import horovod.tensorflow.keras as hvd
import numpy as np
import tensorflow as tf

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.trainset_format import SPLIT_TRAIN, SPLIT_VALIDATION
from eo_tasks.models import ModelSpec
from eo_tasks.models.keras_models import build_model, save_inference_model
from eo_tasks.training.contract import EpochResult, StopRequest, TrainConfig, cpu_threads
from eo_tasks.training.data import SplitData, TrainingSetInfo, part_rows, read_rows
from eo_tasks.training.schedule import cyclic_multiplier

STOP_CHECK_EVERY = 4  # steps between agreements on a stop request (each is an allreduce)
EVAL_BATCH = 4096


def _use_devices(local_rank: int, local_size: int) -> dict[str, Any]:
    """Pins this worker to its GPU (mixed precision, XLA) or shares the CPU cores; returns the settings."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        threads = cpu_threads(local_size)
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(2, threads))
        return {"device": "cpu", "threads": threads, "mixed_precision": None, "compilation": None}
    gpu = gpus[local_rank % len(gpus)]
    tf.config.experimental.set_memory_growth(gpu, True)
    tf.config.set_visible_devices(gpu, "GPU")
    tf.keras.mixed_precision.set_global_policy("mixed_float16")
    tf.config.optimizer.set_jit("autoclustering")
    name = tf.config.experimental.get_device_details(gpu).get("device_name", "gpu")
    return {
        "device": name,
        "threads": None,
        "mixed_precision": "float16",
        "compilation": "xla-autoclustering",
    }


class _StopCallback(tf.keras.callbacks.Callback):
    """Ends ``fit`` after the step at which any worker has a stop request (all agree on the step)."""

    def __init__(self, trainer: HorovodKerasTrainer, stop: StopRequest) -> None:
        super().__init__()
        self.trainer, self.stop, self.steps = trainer, stop, 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.steps = batch + 1
        if self.steps % STOP_CHECK_EVERY == 0 and self.trainer.any_rank(self.stop.requested):
            self.model.stop_training = True


class _OffsetMixin:
    """Shifts the batch index seen by Horovod's learning-rate callbacks when an epoch is resumed."""

    step_offset = 0

    def on_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        super().on_batch_begin(batch + self.step_offset, logs)  # type: ignore[misc]


class _Warmup(_OffsetMixin, hvd.callbacks.LearningRateWarmupCallback):
    pass


class _Schedule(_OffsetMixin, hvd.callbacks.LearningRateScheduleCallback):
    pass


class HorovodKerasTrainer:
    """A :class:`eo_tasks.training.contract.Trainer` on TensorFlow 2.15 + Horovod."""

    def __init__(self, config: TrainConfig, info: TrainingSetInfo, spec: ModelSpec) -> None:
        hvd.init()
        self.config, self.spec = config, spec
        self.rank, self.workers = hvd.rank(), hvd.size()
        devices = _use_devices(hvd.local_rank(), hvd.local_size())
        self.runtime = {
            "framework": {"tensorflow": tf.__version__, "horovod": horovod.__version__},
            **devices,
        }
        train = self._read(info, SPLIT_TRAIN, equal=True)
        if len(train) < config.batch_size:
            raise ConfigError(
                f"each of the {self.workers} workers gets {len(train)} training samples, "
                f"fewer than --batch-size {config.batch_size}"
            )
        self.train_samples = len(train)
        self.steps_per_epoch = len(train) // config.batch_size
        # Variables, not constants: tf.data would copy a captured constant into every epoch's dataset.
        with tf.device("/cpu:0"):
            self._x = tf.Variable(train.x, trainable=False)
            self._y = tf.Variable(train.y, trainable=False)
        del train
        self.time_steps = info.time_steps
        val = self._read(info, SPLIT_VALIDATION, equal=False)
        self.val_samples = len(val)
        labels = np.broadcast_to(val.y[:, None], (len(val), self.time_steps))
        self._val = tf.data.Dataset.from_tensor_slices((val.x, labels)).batch(EVAL_BATCH)
        tf.keras.utils.set_random_seed(config.seed + self.rank)  # rank 0's weights are broadcast
        self.model = build_model(spec)
        self.optimizer = hvd.DistributedOptimizer(tf.keras.optimizers.legacy.Adam(config.lr * self.workers))
        self.model.compile(
            optimizer=self.optimizer,
            loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        )
        self.callbacks = self._callbacks()

    def _read(self, info: TrainingSetInfo, split: int, equal: bool) -> SplitData:
        return read_rows(info, part_rows(info.split_slice(split), self.rank, self.workers, equal))

    def _callbacks(self) -> list[tf.keras.callbacks.Callback]:
        peak, warmup = self.config.lr * self.workers, self.config.warmup_epochs
        cycle = self.config.lr_cycle_epochs
        callbacks: list[tf.keras.callbacks.Callback] = [
            hvd.callbacks.BroadcastGlobalVariablesCallback(0),
            hvd.callbacks.MetricAverageCallback(),
        ]
        if warmup:
            callbacks.append(
                _Warmup(peak, warmup, momentum_correction=False, steps_per_epoch=self.steps_per_epoch)
            )
        callbacks.append(
            _Schedule(
                peak,
                lambda epoch: cyclic_multiplier(epoch - warmup, cycle),
                start_epoch=warmup,
                staircase=False,
                momentum_correction=False,
                steps_per_epoch=self.steps_per_epoch,
            )
        )
        return callbacks

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        return obj if self.workers == 1 else hvd_tf.broadcast_object(obj, root_rank=0)

    def any_rank(self, flag: bool) -> bool:
        """True everywhere if ``flag`` is true on any rank (an allreduce when there are several)."""
        if self.workers == 1:
            return flag
        return bool(hvd_tf.allreduce(tf.constant(int(flag)), op=hvd_tf.Sum).numpy() > 0)

    def _checkpoint(self) -> tf.train.Checkpoint:
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer)

    def restore(self, checkpoint: Path) -> None:
        """Loads weights now and optimizer slots when the first step creates them."""
        self._checkpoint().read(str(checkpoint / "ckpt")).expect_partial()

    def save_checkpoint(self, directory: Path) -> None:
        """Writes ``ckpt.index`` + ``ckpt.data-*`` (a TensorFlow checkpoint of model and optimizer)."""
        self._checkpoint().write(str(directory / "ckpt"))

    def _epoch_dataset(self, epoch: int, first_step: int) -> tf.data.Dataset:
        """This worker's batches of one epoch: a per-(seed, epoch, rank) permutation of its share.

        A batch is one gather from the share held in memory, prefetched two ahead; tf.data's
        autotuning is off, because joining its model thread when ``fit`` drops the iterator cost
        about 0.3 s at the end of most epochs (10 % of a small epoch) for nothing to tune.
        """
        rng = np.random.default_rng([self.config.seed, epoch, self.rank])
        steps, batch = self.steps_per_epoch, self.config.batch_size
        order = rng.permutation(self.train_samples)[: steps * batch].reshape(steps, batch)[first_step:]
        x, y, t = self._x, self._y, self.time_steps
        w = self.config.window or t
        offsets = rng.integers(0, t - w + 1, steps)[first_step:].astype(np.int32)  # a crop per batch

        def gather(index: tf.Tensor, offset: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            labels = tf.gather(y, index)
            return tf.gather(x, index)[:, offset : offset + w], tf.broadcast_to(labels[:, None], (batch, w))

        dataset = tf.data.Dataset.from_tensor_slices((order, offsets)).map(gather)
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.prefetch(2).with_options(options)

    def train_epoch(self, epoch: int, first_step: int, stop: StopRequest) -> EpochResult:
        """Fits one epoch from ``first_step`` on; a stop request ends it after the agreed step."""
        stopper = _StopCallback(self, stop)
        for callback in self.callbacks:
            if isinstance(callback, _OffsetMixin):
                callback.step_offset = first_step
        history = self.model.fit(
            self._epoch_dataset(epoch, first_step),
            epochs=epoch + 1,
            initial_epoch=epoch,
            steps_per_epoch=self.steps_per_epoch - first_step,
            callbacks=[*self.callbacks, stopper],
            verbose=0,
        )
        logs = {k: v[-1] for k, v in history.history.items()}
        return EpochResult(
            steps=stopper.steps,
            loss=float(logs["loss"]),
            accuracy=float(logs["accuracy"]),
            lr=float(tf.keras.backend.get_value(self.optimizer.lr)),
        )

    def _sum(self, values: list[float]) -> np.ndarray:
        array = tf.constant(values, dtype=tf.float64)
        return (array if self.workers == 1 else hvd_tf.allreduce(array, op=hvd_tf.Sum)).numpy()

    def validate(self) -> tuple[float, float] | None:
        """Mean validation loss and accuracy over all workers' shares."""
        n = self.val_samples
        loss, accuracy = self.model.evaluate(self._val, verbose=0) if n else (0.0, 0.0)
        total_loss, total_accuracy, count = self._sum([loss * n, accuracy * n, float(n)])
        return (float(total_loss / count), float(total_accuracy / count)) if count else None

    def predict_logits(self, x: np.ndarray) -> np.ndarray:
        """Logits for normalized features, on this worker."""
        return np.asarray(self.model.predict(x, batch_size=EVAL_BATCH, verbose=0), dtype=np.float32)

    def save_model(self, path: Path) -> None:
        """Writes ``model.keras`` (float32, without optimizer)."""
        save_inference_model(self.model, self.spec, path)

    def weights(self) -> dict[str, np.ndarray]:
        """The model's weights as ``w000``, ``w001``, … in ``get_weights()`` order."""
        return {f"w{i:03d}": w for i, w in enumerate(self.model.get_weights())}

    def close(self) -> None:
        """Nothing to release: Horovod shuts down at exit."""
