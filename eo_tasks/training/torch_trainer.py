"""One PyTorch DistributedDataParallel worker: the backend for clusters whose stacks cannot run TF 2.15.

Why these choices: workers are started by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK``) or
directly by ``srun`` (``SLURM_PROCID``/``SLURM_STEP_NUM_TASKS``/``SLURM_LOCALID``, with
``MASTER_ADDR``/``MASTER_PORT`` exported by the job script), so the same sbatch template serves both;
a plain ``python -m eo_tasks.training`` is one worker without a process group. The process group is
gloo on CPU nodes and NCCL on GPU nodes (one GPU per local rank). The training split is small next to
a node's memory (80 000 samples × 15 steps × 10 bands is 48 MB), so it is held as one tensor on the
worker's device and ``DistributedSampler`` hands each worker its per-epoch share of indices; a batch
is then a single gather, which keeps the input pipeline off the critical path (a ``DataLoader``
collating samples one by one would cost more than the model on a GPU). Learning-rate schedule,
per-step loss and stop handling match the Horovod backend; on a GPU the steps run under bf16
autocast and ``torch.compile``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.trainset_format import SPLIT_TRAIN, SPLIT_VALIDATION
from eo_tasks.models import ModelSpec
from eo_tasks.models.torch_models import build_model
from eo_tasks.training.contract import EpochResult, StopRequest, TrainConfig, cpu_threads
from eo_tasks.training.data import TrainingSetInfo, part_rows, read_rows
from eo_tasks.training.schedule import learning_rate

STOP_CHECK_EVERY = 4  # steps between agreements on a stop request (each is an allreduce)
EVAL_BATCH = 4096


def distributed_env() -> tuple[int, int, int, int] | None:
    """``(rank, world_size, local_rank, local_world_size)`` from torchrun or srun; None for one plain process.

    Raises:
        ConfigError: Launched by srun with several tasks but without ``MASTER_ADDR``/``MASTER_PORT``.
    """
    env = os.environ
    if "RANK" in env and "WORLD_SIZE" in env:
        world = int(env["WORLD_SIZE"])
        return int(env["RANK"]), world, int(env.get("LOCAL_RANK", 0)), int(env.get("LOCAL_WORLD_SIZE", world))
    if "SLURM_STEP_NUM_TASKS" not in env or int(env["SLURM_STEP_NUM_TASKS"]) == 1:
        return None
    if not (env.get("MASTER_ADDR") and env.get("MASTER_PORT")):
        raise ConfigError("launched by srun with several tasks: export MASTER_ADDR and MASTER_PORT first")
    per_node = re.match(r"\d+", env.get("SLURM_STEP_TASKS_PER_NODE", "1"))
    return (
        int(env["SLURM_PROCID"]),
        int(env["SLURM_STEP_NUM_TASKS"]),
        int(env.get("SLURM_LOCALID", 0)),
        int(per_node[0]) if per_node else 1,
    )


class DDPTrainer:
    """A :class:`eo_tasks.training.contract.Trainer` on PyTorch + DistributedDataParallel."""

    def __init__(self, config: TrainConfig, info: TrainingSetInfo, spec: ModelSpec) -> None:
        launched = distributed_env()
        self.rank, self.workers, local_rank, local_workers = launched or (0, 1, 0, 1)
        self.config, self.spec, self.time_steps = config, spec, info.time_steps
        self.device = self._init_device(local_rank, local_workers, launched is not None)
        train = read_rows(info, info.split_slice(SPLIT_TRAIN))
        self.sampler = DistributedSampler(
            range(len(train)), self.workers, self.rank, shuffle=True, seed=config.seed, drop_last=True
        )
        if len(self.sampler) < config.batch_size:
            raise ConfigError(
                f"each of the {self.workers} workers gets {len(self.sampler)} training samples, "
                f"fewer than --batch-size {config.batch_size}"
            )
        self.steps_per_epoch = len(self.sampler) // config.batch_size
        self.x = torch.from_numpy(train.x).to(self.device)
        self.y = torch.from_numpy(train.y).to(self.device)
        val = read_rows(info, part_rows(info.split_slice(SPLIT_VALIDATION), self.rank, self.workers, False))
        self.val_x, self.val_y = torch.from_numpy(val.x), torch.from_numpy(val.y)
        torch.manual_seed(config.seed + self.rank)  # DDP broadcasts rank 0's initial weights
        self.module = build_model(spec).to(self.device)
        self.optimizer = torch.optim.Adam(self.module.parameters(), lr=config.lr * self.workers)
        self._step_model: nn.Module | None = None

    def _init_device(self, local_rank: int, local_workers: int, launched: bool) -> torch.device:
        gpu = torch.cuda.is_available()
        if gpu:
            torch.cuda.set_device(local_rank % torch.cuda.device_count())
            device = torch.device("cuda", torch.cuda.current_device())
            torch.backends.cuda.matmul.allow_tf32 = True
            name = torch.cuda.get_device_name(device)
            self.runtime = {"device": name, "threads": None, "mixed_precision": "bfloat16"}
            self.runtime["compilation"] = "torch.compile"
        else:
            device = torch.device("cpu")
            threads = cpu_threads(local_workers)
            torch.set_num_threads(threads)
            self.runtime = {"device": "cpu", "threads": threads, "mixed_precision": None, "compilation": None}
        self.runtime["framework"] = {"torch": torch.__version__}
        if launched:
            dist.init_process_group(
                "nccl" if gpu else "gloo",
                rank=self.rank,
                world_size=self.workers,
                device_id=device if gpu else None,
            )
            self.runtime["process_group"] = dist.get_backend()
        return device

    @property
    def _distributed(self) -> bool:
        return dist.is_available() and dist.is_initialized()

    def _model(self) -> nn.Module:
        """The model the steps run (DDP-wrapped and compiled as the node allows), built once."""
        if self._step_model is None:
            model: nn.Module = self.module
            if self._distributed:
                model = DistributedDataParallel(
                    model, device_ids=[self.device] if self.device.type == "cuda" else None
                )
            if self.device.type == "cuda":
                model = torch.compile(model)
            self._step_model = model
        return self._step_model

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self._distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def any_rank(self, flag: bool) -> bool:
        """True everywhere if ``flag`` is true on any rank (an allreduce when distributed)."""
        if not self._distributed:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MAX)
        return bool(value.item())

    def restore(self, checkpoint: Path) -> None:
        """Loads model and optimizer state (every rank reads the same file)."""
        state = torch.load(checkpoint / "state.pt", map_location=self.device, weights_only=True)
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])

    def save_checkpoint(self, directory: Path) -> None:
        """Writes ``state.pt``: model and optimizer state dicts."""
        torch.save(
            {"model": self.module.state_dict(), "optimizer": self.optimizer.state_dict()},
            directory / "state.pt",
        )

    def _batches(self, epoch: int, first_step: int) -> torch.Tensor:
        """This worker's index batches of one epoch, ``(steps - first_step, batch)``."""
        self.sampler.set_epoch(epoch)
        batch = self.config.batch_size
        order = torch.tensor(list(self.sampler)[: self.steps_per_epoch * batch], device=self.device)
        return order.view(self.steps_per_epoch, batch)[first_step:]

    def _sum(self, values: list[torch.Tensor | float]) -> list[float]:
        total = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=self.device) for v in values])
        if self._distributed:
            dist.all_reduce(total)
        return [float(v) for v in total.tolist()]

    def train_epoch(self, epoch: int, first_step: int, stop: StopRequest) -> EpochResult:
        """Runs one epoch from ``first_step`` on; a stop request ends it after the agreed step."""
        model = self._model()
        model.train()
        gpu = self.device.type == "cuda"
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        hits = torch.zeros((), dtype=torch.float64, device=self.device)
        steps, lr = 0, 0.0
        t = self.time_steps
        w = self.config.window or t
        rng = np.random.default_rng([self.config.seed, epoch, self.rank])
        crops = rng.integers(0, t - w + 1, self.steps_per_epoch)
        for index in self._batches(epoch, first_step):
            lr = learning_rate(self.config, self.workers, epoch, first_step + steps, self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            offset = int(crops[first_step + steps])  # a crop per batch (the whole series without --window)
            x, y = self.x[index][:, offset : offset + w], self.y[index]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=gpu):
                logits = model(x)
            targets = y[:, None].expand(-1, w)
            loss = nn.functional.cross_entropy(logits.float().transpose(1, 2), targets)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum += loss.detach()
            hits += (logits.detach().argmax(-1) == targets).double().mean()
            steps += 1
            if steps % STOP_CHECK_EVERY == 0 and self.any_rank(stop.requested):
                break
        total_loss, total_hits, count = self._sum([loss_sum, hits, float(steps)])
        return EpochResult(steps, total_loss / count, total_hits / count, lr)

    def validate(self) -> tuple[float, float] | None:
        """Mean validation loss and accuracy over all workers' shares."""
        n = len(self.val_y)
        loss = accuracy = 0.0
        if n:
            logits = torch.from_numpy(self.predict_logits(self.val_x.numpy()))
            targets = self.val_y[:, None].expand(-1, self.time_steps)
            loss = float(nn.functional.cross_entropy(logits.transpose(1, 2), targets))
            accuracy = float((logits.argmax(-1) == targets).double().mean())
        total_loss, total_accuracy, count = self._sum([loss * n, accuracy * n, float(n)])
        return (total_loss / count, total_accuracy / count) if count else None

    def predict_logits(self, x: np.ndarray) -> np.ndarray:
        """Float32 logits for normalized features, on this worker (no collective)."""
        self.module.eval()
        parts = []
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"),
        ):
            for i in range(0, len(x), EVAL_BATCH):
                batch = torch.from_numpy(x[i : i + EVAL_BATCH]).to(self.device)
                parts.append(self.module(batch).float().cpu().numpy())
        self.module.train()
        return np.concatenate(parts) if parts else np.zeros((0, x.shape[1], self.spec.n_classes), np.float32)

    def save_model(self, path: Path) -> None:
        """Writes ``model.pt``: the float32 state_dict (the architecture is in the model card)."""
        torch.save({k: v.detach().cpu() for k, v in self.module.state_dict().items()}, path)

    def weights(self) -> dict[str, np.ndarray]:
        """The state_dict as numpy arrays."""
        return {k: v.detach().cpu().numpy() for k, v in self.module.state_dict().items()}

    def close(self) -> None:
        """Leaves the process group."""
        if self._distributed:
            dist.destroy_process_group()
