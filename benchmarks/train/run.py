"""Training benchmark: how close the training loop comes to the model's own speed, per backend.

For TensorFlow + Horovod and PyTorch + DDP, on the published shape scaled down to a 2-core CPU
(Transformer: 5 layers, d_model 128, 2 heads, feed-forward 256; 15 time steps × 10 bands, 9 classes;
a few thousand synthetic samples):

- **loop**: one epoch of the trainer the entry point runs (``Trainer.train_epoch``: per-epoch
  shuffle, batch gathering from the in-memory split, Horovod's callbacks / the DDP step, stop checks,
  metric averaging), in samples/s;
- **bound**: the same model, batch size, loss and Adam stepping forward + backward + update on one
  batch already in memory (a ``tf.function`` step / a plain PyTorch loop): no input pipeline at all;
  loop and bound alternate in one process (``--rounds`` times), so a burst of load from other jobs on
  the machine hits both;
- **entry point, 1 vs 2 workers**: ``python -m eo_tasks.training`` under ``horovodrun --gloo`` /
  ``torchrun`` (gloo) with 1 and 2 workers sharing the cores, steady-state samples/s from the model
  card (median of the epochs after the first, which includes tracing) and the wall time of the run.

Each backend's figures record when they were taken and the machine's load average, since other
jobs may share its cores; ``--backends`` re-measures some backends and keeps the others' figures.

    python benchmarks/train/run.py --samples 4000 --out benchmarks/results/train.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
BIN = Path(sys.executable).parent
SHAPE = {"time_steps": 15, "features": 10, "classes": 9}
FRAMEWORKS = {"tensorflow": "tensorflow", "pytorch": "torch"}


# --- loop vs bound, alternating in one process -----------------------------------------------
def _bare_step_tensorflow(trainer: Any, batch: int) -> Any:
    import tensorflow as tf

    model = trainer.model
    optimizer = tf.keras.optimizers.legacy.Adam(0.003)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    x = tf.random.normal((batch, SHAPE["time_steps"], SHAPE["features"]))
    y = tf.random.uniform((batch, SHAPE["time_steps"]), 0, SHAPE["classes"], dtype=tf.int32)

    @tf.function
    def step() -> tf.Tensor:
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables, strict=True))
        return loss

    return step


def _bare_step_pytorch(trainer: Any, batch: int) -> Any:
    import torch

    model = trainer.module
    optimizer = torch.optim.Adam(model.parameters(), lr=0.003)
    x = torch.randn(batch, SHAPE["time_steps"], SHAPE["features"])
    y = torch.randint(0, SHAPE["classes"], (batch, SHAPE["time_steps"]))

    def step() -> torch.Tensor:
        loss = torch.nn.functional.cross_entropy(model(x).transpose(1, 2), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def loop_and_bound(backend: str, trainset: Path, batch: int, rounds: int) -> dict[str, list[float]]:
    """In this process: ``rounds`` × (one epoch of the trainer, then as many bare steps), alternating.

    The epoch is :meth:`Trainer.train_epoch`, the code ``python -m eo_tasks.training`` runs for each epoch
    (shuffling, batch gathering, learning-rate callbacks, stop checks, metric averaging); the bare
    steps are forward + backward + Adam on one batch already in memory, with the same model. The
    first epoch and the first bare steps (tracing) are not timed.
    """
    from eo_tasks.models import ModelSpec
    from eo_tasks.training.contract import StopRequest, TrainConfig
    from eo_tasks.training.data import read_info
    from eo_tasks.training.loop import make_trainer

    info = read_info(trainset)
    spec = ModelSpec.published("transformer", info.n_features, info.n_classes)
    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(trainset=trainset, out=Path(out), backend=backend, batch_size=batch)
        trainer = make_trainer(config, info, spec)
        step = (_bare_step_tensorflow if backend == "tensorflow" else _bare_step_pytorch)(trainer, batch)
        stop = StopRequest()
        trainer.train_epoch(0, 0, stop)
        for _ in range(3):
            step()
        loop, bound = [], []
        for epoch in range(1, rounds + 1):
            began = time.perf_counter()
            result = trainer.train_epoch(epoch, 0, stop)
            loop.append(result.steps * batch / (time.perf_counter() - began))
            began = time.perf_counter()
            for _ in range(trainer.steps_per_epoch):
                loss = step()
            float(loss)  # wait for the last step (TensorFlow dispatches asynchronously)
            bound.append(trainer.steps_per_epoch * batch / (time.perf_counter() - began))
        trainer.close()
    return {"loop": loop, "bound": bound, "steps_per_epoch": [trainer.steps_per_epoch]}


# --- the loop: the real entry point -----------------------------------------------------------
def _env(threads: int) -> dict[str, str]:
    return {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "OMP_NUM_THREADS": str(threads),
        "PYTHONPATH": str(REPO),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }


def run_entry_point(backend: str, trainset: Path, workers: int, args: argparse.Namespace) -> dict:
    """Runs ``python -m eo_tasks.training`` under horovodrun / torchrun; steady samples/s from its card."""
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as out:
        train = [
            "-m",
            "eo_tasks.training",
            "--backend",
            backend,
            "--arch",
            "transformer",
            "--trainset",
            str(trainset),
            "--out",
            out,
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
        ]
        if backend == "tensorflow":
            command = [str(BIN / "horovodrun"), "--gloo", "-np", str(workers), "-H", f"localhost:{workers}"]
            command += [sys.executable, *train]
        else:
            command = [str(BIN / "torchrun"), f"--nproc_per_node={workers}", *train]
        began = time.perf_counter()
        result = subprocess.run(
            command, env=_env(max(1, cores // workers)), cwd=REPO, capture_output=True, text=True
        )
        wall = time.perf_counter() - began
        if result.returncode:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        card = json.loads((Path(out) / "model_card.json").read_text())
    history = card["training"]["history"]
    return {
        "samples_per_s": statistics.median(h["samples_per_s"] for h in history[1:]),
        "wall_s": wall,
        "test_accuracy": card["metrics"]["test"]["overall_accuracy"],
    }


def run_loop_and_bound(backend: str, trainset: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """:func:`loop_and_bound` in a child process with all cores."""
    code = (
        f"import json, sys; from pathlib import Path; sys.path[:0] = [{str(REPO)!r}, {str(HERE.parent)!r}]; "
        f"import run; print(json.dumps(run.loop_and_bound({backend!r}, Path({str(trainset)!r}), "
        f"{args.batch_size}, {args.rounds})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=_env(len(os.sched_getaffinity(0))), capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- report -----------------------------------------------------------------------------------
def versions() -> dict[str, str]:
    import h5py
    import numpy

    found = {"python": platform.python_version(), "numpy": numpy.__version__, "h5py": h5py.__version__}
    for module in ("tensorflow", "horovod", "torch"):
        try:
            found[module] = __import__(module).__version__
        except ImportError:
            found[module] = "not installed"
    return found


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 1),
        "best": round(max(values), 1),
        "runs": [round(v, 1) for v in values],
    }


def benchmark_backend(backend: str, trainset: Path, args: argparse.Namespace) -> dict[str, Any]:
    measured = run_loop_and_bound(backend, trainset, args)
    loop, bound = measured["loop"], measured["bound"]
    ratios = [a / b for a, b in zip(loop, bound, strict=True)]
    workers: dict[str, Any] = {}
    for count in (1, 2):
        runs = [run_entry_point(backend, trainset, count, args) for _ in range(args.repeats)]
        workers[f"{count}_workers"] = {
            "threads_per_worker": max(1, len(os.sched_getaffinity(0)) // count),
            "samples_per_s": _summary([r["samples_per_s"] for r in runs]),
            "wall_s": [round(r["wall_s"], 1) for r in runs],
            "test_accuracy": [round(r["test_accuracy"], 4) for r in runs],
        }
    one, two = (workers[f"{c}_workers"]["samples_per_s"]["median"] for c in (1, 2))
    return {
        "steps_per_epoch": measured["steps_per_epoch"][0],
        "loop_samples_per_s": _summary(loop),
        "bound_samples_per_s": _summary(bound),
        "loop_over_bound": {
            "median_of_rounds": round(statistics.median(ratios), 3),
            "rounds": [round(r, 3) for r in ratios],
        },
        "goal_met": statistics.median(ratios) >= 0.85,
        "entry_point": workers,
        "two_workers_over_one": round(two / one, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=8, help="alternating loop / bound epochs")
    parser.add_argument("--repeats", type=int, default=2, help="entry-point runs per worker count")
    parser.add_argument("--backends", nargs="+", default=list(FRAMEWORKS), choices=list(FRAMEWORKS))
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "train.json")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from benchmarks.machine import describe_machine
    from tests.compute.synthetic import write_trainset

    # Backends not run now keep their earlier figures (each records when and under what load).
    results: dict[str, Any] = json.loads(args.out.read_text())["results"] if args.out.is_file() else {}
    with tempfile.TemporaryDirectory() as tmp:
        trainset = write_trainset(
            Path(tmp) / "trainset.h5",
            samples=args.samples,
            time_steps=SHAPE["time_steps"],
            n_features=SHAPE["features"],
            fractions=(0.8, 0.1, 0.1),
            noise=0.1,
        )
        for backend in args.backends:
            load_before = os.getloadavg()
            results[backend] = benchmark_backend(backend, trainset, args)
            results[backend]["measured_at"] = time.strftime("%Y-%m-%d %H:%M")
            results[backend]["load_average_1_5_15_min"] = {"before": load_before, "after": os.getloadavg()}
            print(backend, json.dumps(results[backend]), flush=True)
    report = {
        "what": "samples/s of the training loop (one epoch of python -m eo_tasks.training) vs "
        "bare forward+backward+Adam on one in-memory batch (the bound), alternating in one process; and the "
        "entry point with 1 vs 2 workers (horovodrun / torchrun, gloo) on the same cores",
        "goal": "loop >= 85 % of the bound",
        "setup": {
            "architecture": "transformer, 5 layers, d_model 128, 2 heads, feed-forward 256, dropout 0.1",
            "shape": f"{args.samples} samples (80 % train) x {SHAPE['time_steps']} steps x "
            f"{SHAPE['features']} bands, {SHAPE['classes']} classes (synthetic)",
            "batch_size_per_worker": args.batch_size,
            "rounds": args.rounds,
            "entry_point_runs": f"{args.repeats} per worker count, {args.epochs} epochs each; samples/s is "
            "the median of epochs 2.. (training phase: validation, checkpoints and start-up excluded; "
            "wall_s includes everything)",
            "published_setup": "80 000 samples x 15 steps x 10 bands, 9 classes, 100 epochs: about 500 s on "
            "one A100, 45 s on 16 A100s (paper)",
        },
        "machine": describe_machine(),
        "versions": versions(),
        "results": results,
        "gpu": "not measured: no GPU was available to this task (the issue's H100 goal, 100 epochs of the "
        "published setup in 15 s with bf16 + torch.compile, remains to be checked on a GPU node)",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(json.dumps(report, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
