"""Sliding-window inference: one label per pixel for every window position across years.

The classifier sees ``w`` consecutive composites and gives a class for each of them. The window
slides one composite at a time across the concatenated cubes of consecutive years, so every new
composite yields an updated map.

Which label represents a window (a choice the change analysis depends on): the argmax of the
per-step class probabilities **averaged over the window's steps**, placed at the window's **last**
composite. A window therefore switches to a new class when about half of it shows that class, i.e.
about half a window after the ground changed — which is why ``eo_tasks.maps.changes`` dates a change by
shifting the detected position back by half a window.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from eo_tasks.core.cube import Cube
from eo_tasks.core.errors import ConfigError
from eo_tasks.core.files import atomic_path
from eo_tasks.core.grid import Block, blocks

if TYPE_CHECKING:
    from eo_tasks.models import Predictor

Predict = Callable[[np.ndarray], np.ndarray]  # (batch, w, features) -> (batch, w, classes) probabilities
# (composites, pixels, features) raw series, w, pixel-windows per batch -> uint8 (labels, confidence)
Labeller = Callable[[np.ndarray, int, int], tuple[np.ndarray, np.ndarray]]


def window_positions(n_composites: int, window: int) -> np.ndarray:
    """The last-composite index of every complete window over ``n_composites``."""
    return np.arange(window - 1, n_composites)


def window_label(probabilities: np.ndarray) -> np.ndarray:
    """The window's label from per-step probabilities ``(batch, w, classes)`` → ``(batch,)`` class index."""
    return np.argmax(probabilities.mean(axis=1), axis=-1)


def sliding_window_predict(
    series: np.ndarray, window: int, predict: Predict, class_codes: np.ndarray, batch_size: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Labels every pixel at every window position, with the label's mean probability.

    Args:
        series: ``(composites, pixels, features)`` normalized-or-raw features in the model's order
            (the model applies its own normalization).
        window: ``w``, composites per window.
        predict: The model: ``(batch, w, features)`` → ``(batch, w, classes)`` probabilities.
        class_codes: Platform class code of each model output.
        batch_size: Pixel-windows per call to ``predict``.

    Returns:
        ``(labels, confidence)``, both ``(positions, pixels)``: class codes (row ``k`` is the window
        ending at composite ``window - 1 + k``) and the label's mean probability in percent (uint8).
    """
    n_composites, n_pixels, _ = series.shape
    positions = window_positions(n_composites, window)
    labels = np.empty((positions.size, n_pixels), dtype=class_codes.dtype)
    confidence = np.empty((positions.size, n_pixels), dtype=np.uint8)
    pixel_batch = max(1, batch_size // max(positions.size, 1))
    for start in range(0, n_pixels, pixel_batch):
        stop = min(start + pixel_batch, n_pixels)
        block = np.moveaxis(series[:, start:stop, :], 1, 0)  # (pixels, composites, features)
        windows = np.lib.stride_tricks.sliding_window_view(block, window, axis=1)  # (pixels, positions, F, w)
        batch = np.ascontiguousarray(np.moveaxis(windows, -1, 2)).reshape(-1, window, series.shape[2])
        mean = predict(batch).mean(axis=1)
        best = np.argmax(mean, axis=-1)
        labels[:, start:stop] = class_codes[best].reshape(stop - start, -1).T
        sure = np.take_along_axis(mean, best[:, None], axis=-1)[:, 0]
        confidence[:, start:stop] = np.rint(100 * sure).astype(np.uint8).reshape(stop - start, -1).T
    return labels, confidence


def sliding_window_labels(
    series: np.ndarray, window: int, predict: Predict, class_codes: np.ndarray, batch_size: int = 65536
) -> np.ndarray:
    """The labels of :func:`sliding_window_predict` alone."""
    return sliding_window_predict(series, window, predict, class_codes, batch_size)[0]


def window_labeller(model_dir: Path, card: dict[str, Any]) -> Labeller | None:
    """The device path of a PyTorch model (GPU when there is one, else the CPU); None for TensorFlow."""
    if card["backend"] != "pytorch":
        return None
    from eo_tasks.models import ModelSpec
    from eo_tasks.models.torch_models import load_window_labeller

    spec = ModelSpec.from_dict(card["architecture"])
    return load_window_labeller(model_dir / card["model_file"], spec, card)


# --- the job-array entry point: ``python -m eo_tasks.maps.infer`` -------------------------------------

BLOCK_FILE = "block_r{row0:05d}_c{col0:05d}.h5"


@dataclass(frozen=True)
class InferenceJob:
    """One task of the inference job array.

    Attributes:
        model_dir: The trained model (card + weights).
        cubes: The cubes of consecutive years, oldest first; the last one is the map year.
        out_dir: Where the block files go (one per spatial block).
        block_px: Side of the spatial blocks.
        window: ``w``, composites per window.
        task_index: This task's index in the array (``SLURM_ARRAY_TASK_ID``).
        tasks: Tasks in the array; task ``i`` takes blocks ``i, i + tasks, ...``.
        batch_size: Pixel-windows per forward pass.
    """

    model_dir: Path
    cubes: tuple[Path, ...]
    out_dir: Path
    block_px: int = 128
    window: int = 15
    task_index: int = 0
    tasks: int = 1
    batch_size: int = 65536

    def __post_init__(self) -> None:
        if not self.cubes:
            raise ConfigError("inference needs at least one cube")
        if not 0 <= self.task_index < self.tasks:
            raise ConfigError(f"task index {self.task_index} is outside 0..{self.tasks - 1}")
        if self.block_px < 1 or self.window < 2:
            raise ConfigError("block_px must be positive and window at least 2")


def _open_cubes(paths: Sequence[Path]) -> list[Cube]:
    cubes = [Cube.open(p) for p in paths]
    first = cubes[0]
    for cube in cubes[1:]:
        if (cube.shape[1:], cube.geotransform, cube.epsg, cube.band_names) != (
            first.shape[1:],
            first.geotransform,
            first.epsg,
            first.band_names,
        ):
            raise ConfigError(f"{cube.path} is not on the grid / bands of {first.path}")
    return cubes


def include_indices(card: dict[str, Any], band_names: Sequence[str]) -> bool:
    """Whether the model wants the indices after the bands; the card's feature list must match the cube."""
    from eo_tasks.core.features import feature_names

    for include in (False, True):
        if feature_names(band_names, include) == list(card["features"]):
            return include
    raise ConfigError(
        f"model {card['model_id']} wants features {card['features']}, the cubes hold {list(band_names)}"
    )


def infer_block(
    cubes: Sequence[Cube],
    block: Block,
    predictor: Predictor,
    window: int,
    batch_size: int,
    labeller: Labeller | None = None,
) -> dict[str, np.ndarray]:
    """Labels one block: every window position across the cubes, plus the map year's annual label.

    With a ``labeller`` (the PyTorch backend's device path, :func:`window_labeller`) the windows are
    cut, normalized, classified and reduced where the model lives; otherwise with ``predictor``.

    Returns:
        ``labels`` and ``confidence`` ``(positions, rows, cols)`` (class code, mean probability of
        that class in percent) and ``annual`` ``(rows, cols)``: the label of the map year's whole
        series in one window — the per-year classifier without sequence analysis (a baseline).
        Pixels no composite of any year observed are 0 (no data) everywhere.
    """
    from eo_tasks.core.features import as_pixels, pixel_features

    rows, cols = slice(block.row0, block.row0 + block.rows), slice(block.col0, block.col0 + block.cols)
    parts = [cube.read(rows, cols) for cube in cubes]
    include = include_indices(predictor.card, cubes[0].band_names)
    series = np.concatenate(
        [pixel_features(as_pixels(r), cubes[0].band_names, include) for r, _ in parts], axis=1
    )
    seen = np.concatenate([v for _, v in parts]).reshape(-1, block.rows * block.cols).any(axis=0)
    codes = np.asarray(predictor.class_codes, dtype=np.uint8)
    n_pos = series.shape[1] - window + 1
    labels = np.zeros((n_pos, series.shape[0]), dtype=np.uint8)
    confidence = np.zeros_like(labels)
    annual = np.zeros(series.shape[0], dtype=np.uint8)
    if seen.any():
        observed = np.moveaxis(series[seen], 1, 0)  # (composites, pixels, features)

        year = cubes[-1].shape[0]
        if labeller is not None:
            labels[:, seen], confidence[:, seen] = labeller(observed, window, batch_size)
            annual[seen] = labeller(observed[-year:], year, batch_size)[0][0]
        else:

            def predict(batch: np.ndarray) -> np.ndarray:
                return predictor(batch, batch_size=batch_size)

            labels[:, seen], confidence[:, seen] = sliding_window_predict(
                observed, window, predict, codes, batch_size=batch_size
            )
            annual[seen] = codes[window_label(predict(np.moveaxis(observed[-year:], 1, 0)))]
    shape = (block.rows, block.cols)
    return {
        "labels": labels.reshape(n_pos, *shape),
        "confidence": confidence.reshape(n_pos, *shape),
        "annual": annual.reshape(shape),
    }


def write_block(path: Path, arrays: dict[str, np.ndarray], attrs: dict[str, Any]) -> None:
    """Writes a block file under a temporary name, then renames it into place."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, array in arrays.items():
            f.create_dataset(name, data=array, compression="gzip", compression_opts=1)
        f.attrs.update(attrs)


def run_job(job: InferenceJob, log: Callable[[str], None] = print) -> int:
    """Runs one array task: labels its blocks, skipping those already written (a resubmission resumes).

    Returns:
        The number of blocks written.
    """
    from eo_tasks.core.features import cube_grid
    from eo_tasks.models import load_model

    cubes = _open_cubes(job.cubes)
    predictor = load_model(job.model_dir)
    labeller = window_labeller(job.model_dir, predictor.card)
    mine = blocks(cube_grid(cubes[0]), job.block_px)[job.task_index :: job.tasks]
    job.out_dir.mkdir(parents=True, exist_ok=True)
    dates = [d.isoformat() for cube in cubes for d in cube.dates]
    written = 0
    for k, block in enumerate(mine, 1):
        path = job.out_dir / BLOCK_FILE.format(row0=block.row0, col0=block.col0)
        if path.exists():
            continue
        start = time.perf_counter()
        arrays = infer_block(cubes, block, predictor, job.window, job.batch_size, labeller)
        attrs = {
            "row0": block.row0,
            "col0": block.col0,
            "model_id": predictor.card["model_id"],
            "window": job.window,
            "composite_dates": json.dumps(dates),
            "cubes": json.dumps([str(p) for p in job.cubes]),
        }
        write_block(path, arrays, attrs)
        written += 1
        pixel_windows = arrays["labels"].size
        elapsed = time.perf_counter() - start
        log(
            f"block {k}/{len(mine)} ({block.row0},{block.col0}): {pixel_windows} pixel-windows "
            f"in {elapsed:.1f} s ({pixel_windows / elapsed:,.0f}/s)"
        )
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m eo_tasks.maps.infer``: one task of the inference job array (see ``infer.sbatch.j2``)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m eo_tasks.maps.infer", description=main.__doc__)
    parser.add_argument("--model", type=Path, required=True, help="model directory (card + weights)")
    parser.add_argument(
        "--cubes", type=Path, nargs="+", required=True, help="cubes of consecutive years, oldest first"
    )
    parser.add_argument("--out", type=Path, required=True, help="directory of the block files")
    parser.add_argument("--block-px", type=int, default=128)
    parser.add_argument("--window", type=int, default=15)
    parser.add_argument("--task-index", type=int, default=int(os.environ.get("SLURM_ARRAY_TASK_ID", 0)))
    parser.add_argument("--tasks", type=int, default=int(os.environ.get("SLURM_ARRAY_TASK_COUNT", 1)))
    parser.add_argument("--batch-size", type=int, default=65536)
    args = parser.parse_args(argv)
    job = InferenceJob(
        model_dir=args.model,
        cubes=tuple(args.cubes),
        out_dir=args.out,
        block_px=args.block_px,
        window=args.window,
        task_index=args.task_index,
        tasks=args.tasks,
        batch_size=args.batch_size,
    )
    start = time.perf_counter()
    written = run_job(job, log=lambda line: print(line, flush=True))
    print(
        f"task {job.task_index}/{job.tasks}: {written} blocks written in {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
