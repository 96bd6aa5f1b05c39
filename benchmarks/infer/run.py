"""Inference benchmark: sliding-window labelling and change post-processing throughput, on this CPU.

**Inference** is measured in pixel-windows per second: one window is ``w`` = 15 composites × 15
features (10 bands + 5 indices) of one pixel, labelled with one of 9 classes. For each backend
(TensorFlow/Keras, PyTorch) and each shape — the published Transformer (5 layers, d_model 128,
2 heads, feed-forward 256), the published LSTM (4 × 128) and the small demo Transformer
(``aois/demo.yaml``: 2 layers, d_model 32) — with random weights (the cost does not depend on them):

- ``platform``: the platform's own path as shipped: the model saved as the trainer saves it
  (``keras_models.save_inference_model`` / a ``state_dict``), read back with
  ``eo_tasks.models.load_model`` (a ``Predictor``) and run by
  ``eo_tasks.maps.infer.sliding_window_labels`` with its default batch sizes over a synthetic series of
  48 composites × N pixels (34 window positions);
- ``platform_batch_B``: the same with ``Predictor`` batches of B windows (default 4096);
- ``tf_graph`` (TensorFlow only): the same with the loaded Keras model in a plain ``tf.function``,
  i.e. ``keras_models.load_forward`` before it was XLA-compiled (``jit_compile=True``), to show
  what that change gains;
- ``torch_whole_batch`` (PyTorch only): the same with ``torch_models.load_forward`` as it was before
  this benchmark (one forward pass per ``Predictor`` batch of 4096 windows instead of chunks of
  1024), to show what that change gains;
- ``torch_1_thread`` (PyTorch only): the platform path with ``torch.set_num_threads(1)`` instead of
  one thread per core;
- ``user_loop``: what a user would otherwise write with the framework alone: one window position at
  a time over all pixels, ``model.predict(x)`` (Keras, default batch size 32) or ``model(x)`` (a
  plain PyTorch call in eval mode without ``inference_mode``/``no_grad``), then softmax, the mean
  over the window's steps and the argmax;
- ``harness_only``: the platform path with a model that costs nothing (constant logits): the
  windowing, normalization, softmax, mean and argmax alone, i.e. the ceiling set by the non-model
  code.

The variants alternate round by round in one process per backend (the first round, which includes
tracing/compilation, is not timed), so a burst of load from other jobs sharing the cores hits all of
them; every figure records the load average. Each variant's labels are compared with the
``platform`` labels of the same round (``label_agreement``) and its probabilities on a sample of
windows with the ``Predictor``'s (``max_abs_probability_difference``).

**Post-processing** is measured in pixel·steps per second: ``eo_tasks.maps.changes.analyse_sequences``
(median filter, step response, permanence rules) on synthetic label sequences (34 steps × 0.5 M
pixels, with permanent changes, seasonal returns and isolated misclassifications), and
``drop_small_regions`` on a full Sentinel-2 tile (10 980 × 10 980 pixels) of change blobs and speckle.

**Extrapolation** to a tile-year (about 120 M pixels × 30 window positions = 3.6 G pixel-windows)
from the best measured rate of each backend/shape, and what the GPU goal (under 10 minutes per
tile-year on one H100, i.e. at least 6 M pixel-windows/s) asks; the GPU itself is not measured here.

    .venv-compute/bin/python benchmarks/infer/run.py --out benchmarks/results/infer.json
    .venv-compute/bin/python benchmarks/infer/run.py --quick   # about 2 minutes, smaller figures
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
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve()
REPO = HERE.parents[2]
BACKENDS = ("tensorflow", "pytorch")
WINDOW, FEATURES, CLASSES, COMPOSITES = 15, 15, 9, 48
CLASS_CODES = [10, 20, 30, 40, 50, 60, 80, 90, 100]  # WorldCover-like codes
SHAPES: dict[str, dict[str, Any]] = {
    "transformer_published": {"architecture": "transformer"},
    "lstm_published": {"architecture": "lstm"},
    "transformer_demo": {"architecture": "transformer", "layers": 2, "hidden": 32},
}
TILE_PIXELS = 120_000_000  # one Sentinel-2 tile, 10 980 × 10 980 at 10 m
TILE_SIDE = 10_980
POSITIONS_PER_YEAR = 30
GPU_GOAL_S = 600.0
GPU_REFERENCE = 1.8e6  # pixel-windows/s: plain compiled bf16 PyTorch Transformer on an H100 (issue 7)

Labeller = Callable[[np.ndarray], np.ndarray]  # series (composites, pixels, features) -> labels


# --- the models --------------------------------------------------------------------------------
def _card(backend: str, spec: Any, model_file: str) -> dict[str, Any]:
    """A minimal model card, as ``model_card.build_card`` writes it (the fields inference reads)."""
    return {
        "schema": "eo-platform/model-card",
        "schema_version": 1,
        "model_id": f"bench-{spec.architecture}-{backend}",
        "backend": backend,
        "model_file": model_file,
        "architecture": spec.to_dict(),
        "classes": [{"index": i, "code": c, "name": f"class {c}"} for i, c in enumerate(CLASS_CODES)],
        "normalization": {"mean": [0.2] * FEATURES, "std": [0.1] * FEATURES, "formula": "(x - mean) / std"},
    }


def save_model(backend: str, spec: Any, directory: Path) -> None:
    """Writes a random-weight model and its card as the trainer does."""
    if backend == "tensorflow":
        from eo_tasks.models import keras_models

        keras_models.save_inference_model(keras_models.build_model(spec), spec, directory / "model.keras")
        card = _card(backend, spec, "model.keras")
    else:
        import torch

        from eo_tasks.models import torch_models

        torch.save(torch_models.build_model(spec).state_dict(), directory / "model.pt")
        card = _card(backend, spec, "model.pt")
    (directory / "model_card.json").write_text(json.dumps(card))


def _window_labels(probabilities_per_position: list[np.ndarray], codes: np.ndarray) -> np.ndarray:
    return np.stack([codes[np.argmax(p.mean(axis=1), axis=-1)] for p in probabilities_per_position])


def user_loop(backend: str, directory: Path, card: dict[str, Any]) -> Labeller:
    """What a user would write with the framework alone: one window position at a time, all pixels."""
    from eo_tasks.models import softmax

    mean = np.asarray(card["normalization"]["mean"], np.float32)
    std = np.asarray(card["normalization"]["std"], np.float32)
    codes = np.asarray(CLASS_CODES)
    if backend == "tensorflow":
        import tensorflow as tf

        model = tf.keras.models.load_model(directory / "model.keras", compile=False)

        def forward(x: np.ndarray) -> np.ndarray:
            return model.predict(x, verbose=0)  # Keras' default batch size (32)

    else:
        import torch

        from eo_tasks.models import ModelSpec, torch_models

        module = torch_models.build_model(ModelSpec.from_dict(card["architecture"]))
        module.load_state_dict(torch.load(directory / "model.pt", weights_only=True))
        module.eval()

        def forward(x: np.ndarray) -> np.ndarray:
            return module(torch.from_numpy(x)).detach().numpy()  # autograd on, as in a plain loop

    def label(series: np.ndarray) -> np.ndarray:
        probabilities = []
        for end in range(WINDOW - 1, series.shape[0]):
            x = np.ascontiguousarray(np.moveaxis(series[end - WINDOW + 1 : end + 1], 1, 0))
            probabilities.append(softmax(forward((x - mean) / std)))
        return _window_labels(probabilities, codes)

    return label


def tf_graph_forward(path: Path) -> Callable[[np.ndarray], np.ndarray]:
    """``keras_models.load_forward`` without XLA (as it was before this benchmark)."""
    import tensorflow as tf

    model = tf.keras.models.load_model(path, compile=False)
    step = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: step(tf.convert_to_tensor(x)).numpy()


def torch_whole_forward(path: Path, card: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    """``torch_models.load_forward`` before it split batches into chunks of 1024 windows."""
    import torch

    from eo_tasks.models import ModelSpec, torch_models

    model = torch_models.build_model(ModelSpec.from_dict(card["architecture"]))
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return forward


def one_thread(label: Labeller) -> Labeller:
    """``label`` with ``torch.set_num_threads(1)`` (PyTorch's OpenMP pool can suffer on shared cores)."""
    import torch

    def run(series: np.ndarray) -> np.ndarray:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return label(series)
        finally:
            torch.set_num_threads(before)

    return run


def variants(backend: str, directory: Path, batch_sizes: list[int]) -> tuple[dict[str, Labeller], Any]:
    """The labelling variants compared for one model, and the ``Predictor`` of the platform path."""
    from eo_tasks.maps.infer import sliding_window_labels
    from eo_tasks.models import Predictor, load_model

    predictor = load_model(directory)
    codes = np.asarray(predictor.class_codes)
    found: dict[str, Labeller] = {"platform": lambda s: sliding_window_labels(s, WINDOW, predictor, codes)}
    for size in batch_sizes:
        predict = partial(predictor, batch_size=size)
        found[f"platform_batch_{size}"] = partial(
            sliding_window_labels, window=WINDOW, predict=predict, class_codes=codes
        )
    if backend == "tensorflow":
        graph = Predictor(predictor.card, tf_graph_forward(directory / predictor.card["model_file"]))
        found["tf_graph"] = lambda s: sliding_window_labels(s, WINDOW, graph, codes)
    else:
        whole = Predictor(predictor.card, torch_whole_forward(directory / "model.pt", predictor.card))
        found["torch_whole_batch"] = lambda s: sliding_window_labels(s, WINDOW, whole, codes)
        found["torch_1_thread"] = one_thread(found["platform"])
    found["user_loop"] = user_loop(backend, directory, predictor.card)
    return found, predictor


def harness_only(predictor: Any) -> Labeller:
    """The platform path with a free model: constant logits of the right shape."""
    from eo_tasks.maps.infer import sliding_window_labels
    from eo_tasks.models import Predictor

    logits = np.random.default_rng(3).normal(size=(65536, WINDOW, CLASSES)).astype(np.float32)
    free = Predictor(predictor.card, lambda x: logits[: len(x)])
    codes = np.asarray(predictor.class_codes)
    return lambda s: sliding_window_labels(s, WINDOW, free, codes)


# --- inference, in one process per backend ----------------------------------------------------
def synthetic_series(pixels: int, seed: int = 0) -> np.ndarray:
    """``(composites, pixels, features)`` float32 reflectance-like values around the card's mean."""
    rng = np.random.default_rng(seed)
    return (0.2 + 0.1 * rng.standard_normal((COMPOSITES, pixels, FEATURES))).astype(np.float32)


def _rate(label: Labeller, series: np.ndarray) -> tuple[float, np.ndarray]:
    began = time.perf_counter()
    labels = label(series)
    return labels.size / (time.perf_counter() - began), labels


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values)),
        "best": round(max(values)),
        "runs": [round(v) for v in values],
    }


def measure_shape(backend: str, shape: str, args: argparse.Namespace) -> dict[str, Any]:
    """All variants of one backend/shape, alternating over ``args.rounds`` timed rounds."""
    from eo_tasks.models import ModelSpec, Predictor

    sizes = {k: v for k, v in SHAPES[shape].items() if k != "architecture"}
    spec = ModelSpec.published(SHAPES[shape]["architecture"], FEATURES, CLASSES, **sizes)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        save_model(backend, spec, directory)
        began = time.perf_counter()
        found, predictor = variants(backend, directory, args.batch_sizes)
        load_s = time.perf_counter() - began
        found["harness_only"] = harness_only(predictor)
        # Pixels: as many as make one platform pass last about --seconds.
        probe = synthetic_series(256, seed=1)
        found["platform"](probe)
        rate, _ = _rate(found["platform"], probe)
        positions = COMPOSITES - WINDOW + 1
        pixels = int(min(max(rate * args.seconds / positions, 256), args.max_pixels)) // 64 * 64
        series = synthetic_series(pixels)
        warmup: dict[str, float] = {}
        for name, label in found.items():  # untimed round: tracing, XLA compilation, caches
            began = time.perf_counter()
            label(series)
            warmup[name] = round(time.perf_counter() - began, 2)
        rates: dict[str, list[float]] = {name: [] for name in found}
        agreement: dict[str, list[float]] = {name: [] for name in found}
        for _ in range(args.rounds):
            reference = None
            for name, label in found.items():
                value, labels = _rate(label, series)
                rates[name].append(value)
                if name == "platform":
                    reference = labels
                assert reference is not None
                agreement[name].append(float(np.mean(labels == reference)))
        sample = np.moveaxis(series[:WINDOW, :2048], 1, 0).copy()
        differences: dict[str, float] = {}
        for name in found:
            if name == "tf_graph":
                graph = Predictor(predictor.card, tf_graph_forward(directory / "model.keras"))
                differences[name] = float(np.abs(graph(sample) - predictor(sample)).max())
            elif name == "torch_whole_batch":
                whole = Predictor(predictor.card, torch_whole_forward(directory / "model.pt", predictor.card))
                differences[name] = float(np.abs(whole(sample) - predictor(sample)).max())
            elif name.startswith("platform_batch"):
                size = int(name.rsplit("_", 1)[1])
                differences[name] = float(
                    np.abs(predictor(sample, batch_size=size) - predictor(sample)).max()
                )
    medians = {name: statistics.median(values) for name, values in rates.items()}
    model_variants = [
        n for n in found if n not in ("user_loop", "harness_only", "tf_graph", "torch_whole_batch")
    ]
    fastest = max(model_variants, key=lambda n: medians[n])
    return {
        "spec": spec.to_dict(),
        "pixels": pixels,
        "pixel_windows_per_pass": pixels * positions,
        "model_load_s": round(load_s, 2),
        "first_pass_s": warmup,
        "pixel_windows_per_s": {name: _summary(values) for name, values in rates.items()},
        "label_agreement_with_platform": {
            n: round(min(v), 6) for n, v in agreement.items() if n != "harness_only"
        },
        "max_abs_probability_difference": differences,
        "fastest_platform_variant": fastest,
        "fastest_over_platform": round(medians[fastest] / medians["platform"], 3),
        **(
            {"platform_xla_over_tf_graph": round(medians["platform"] / medians["tf_graph"], 3)}
            if "tf_graph" in medians
            else {}
        ),
        **(
            {
                "platform_chunked_over_whole_batch": round(
                    medians["platform"] / medians["torch_whole_batch"], 3
                )
            }
            if "torch_whole_batch" in medians
            else {}
        ),
        "platform_over_user_loop": round(medians["platform"] / medians["user_loop"], 3),
        "fastest_over_user_loop": round(medians[fastest] / medians["user_loop"], 3),
    }


def threads(backend: str) -> dict[str, Any]:
    if backend == "tensorflow":
        import tensorflow as tf

        return {
            "intra_op": tf.config.threading.get_intra_op_parallelism_threads() or "default (all cores)",
            "inter_op": tf.config.threading.get_inter_op_parallelism_threads() or "default",
        }
    import torch

    return {"torch_num_threads": torch.get_num_threads(), "interop": torch.get_num_interop_threads()}


def run_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every shape of one backend (called in the child process)."""
    out: dict[str, Any] = {"threads": threads(backend), "shapes": {}}
    for shape in args.shapes:
        load_before = os.getloadavg()
        began = time.strftime("%Y-%m-%d %H:%M:%S")
        result = measure_shape(backend, shape, args)
        result["measured_at"] = began
        result["load_average_1_5_15_min"] = {"before": load_before, "after": os.getloadavg()}
        out["shapes"][shape] = result
        print(f"{backend} {shape}: " + json.dumps(result["pixel_windows_per_s"]), file=sys.stderr, flush=True)
    return out


def run_backend_child(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`run_backend` in a fresh process (one framework, its own thread pool)."""
    command = [sys.executable, str(HERE), "--child", backend, *sys.argv[1:]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    if result.returncode:
        raise RuntimeError(f"{backend} benchmark failed (exit {result.returncode})")
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- post-processing ----------------------------------------------------------------------------
def synthetic_sequences(steps: int, pixels: int, dtype: Any, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Label sequences with 5 % permanent changes, 5 % seasonal back-and-forth, 2 % isolated noise."""
    rng = np.random.default_rng(seed)
    codes = np.asarray(CLASS_CODES, dtype=dtype)
    initial = codes[rng.integers(0, CLASSES, pixels)]
    labels = np.repeat(initial[None, :], steps, axis=0)
    other = codes[rng.integers(0, CLASSES, pixels)]
    kind = rng.random(pixels)
    start = rng.integers(1, steps - 2, pixels)
    index = np.arange(steps)[:, None]
    permanent = (kind < 0.05) & (index >= start[None, :])
    seasonal = (
        (kind >= 0.05) & (kind < 0.10) & ((index - start[None, :]) % 12 < 4) & (index >= start[None, :])
    )
    labels = np.where(permanent | seasonal, other[None, :], labels)
    noise = rng.random((steps, pixels)) < 0.02
    labels[noise] = codes[rng.integers(0, CLASSES, int(noise.sum()))]
    return labels, initial


def change_raster(side: int, seed: int = 0) -> np.ndarray:
    """A boolean change mask: 12 × 12-pixel blocks on 2 % of a coarse grid, plus 0.5 % speckle."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((-(-side // 12),) * 2) < 0.02
    mask = np.repeat(np.repeat(coarse, 12, axis=0), 12, axis=1)[:side, :side]
    return mask | (rng.random((side, side)) < 0.005)


def _timed(function: Callable[[], Any], repeats: int) -> list[float]:
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - began)
    return seconds


def _postprocessing_runs(
    labels: np.ndarray, initial: np.ndarray, params: Any, repeats: int
) -> dict[str, list[float]]:
    """Seconds of each post-processing step over ``labels`` (``repeats`` rounds each)."""
    from eo_tasks.maps.changes import _mode_where, analyse_sequences, median_filter, step_response

    return {
        "analyse_sequences": _timed(lambda: analyse_sequences(labels, initial, params), repeats),
        "median_filter": _timed(lambda: median_filter(labels, params.median), repeats),
        "step_response": _timed(lambda: step_response(labels != initial[None, :], params.half), repeats),
        # the to-class vote: one pass over the sequences per integer up to the largest class code
        "mode_where": _timed(lambda: _mode_where(labels, labels != initial[None, :]), repeats),
    }


def measure_postprocessing(args: argparse.Namespace) -> dict[str, Any]:
    from eo_tasks.core.aoi_sections import ChangeParams
    from eo_tasks.maps.changes import analyse_sequences, drop_small_regions

    params = ChangeParams()
    steps, pixels = args.steps, args.post_pixels
    load_before = os.getloadavg()
    began = time.strftime("%Y-%m-%d %H:%M:%S")
    result: dict[str, Any] = {"steps": steps, "pixels": pixels, "params": vars(params)}
    for dtype in (np.int64, np.uint8):
        labels, initial = synthetic_sequences(steps, pixels, dtype)
        name = np.dtype(dtype).name
        runs = _postprocessing_runs(labels, initial, params, args.repeats)
        changed = analyse_sequences(labels, initial, params).changed
        result[f"labels_{name}"] = {
            "pixel_steps_per_s": {k: _summary([steps * pixels / s for s in v]) for k, v in runs.items()},
            "seconds": {k: [round(s, 3) for s in v] for k, v in runs.items()},
            "changed_fraction": round(float(changed.mean()), 4),
            "mode_where_share_of_analyse_sequences": round(
                statistics.median(runs["mode_where"]) / statistics.median(runs["analyse_sequences"]), 2
            ),
        }
    mask = change_raster(args.raster_side)
    seconds = _timed(lambda: drop_small_regions(mask, params.ath), args.repeats)
    result["drop_small_regions"] = {
        "raster": f"{args.raster_side} x {args.raster_side}",
        "changed_fraction": round(float(mask.mean()), 4),
        "kept_fraction": round(float(drop_small_regions(mask, params.ath).mean()), 4),
        "seconds": [round(s, 3) for s in seconds],
        "pixels_per_s": _summary([args.raster_side**2 / s for s in seconds]),
    }
    result["measured_at"] = began
    result["load_average_1_5_15_min"] = {"before": load_before, "after": os.getloadavg()}
    return result


# --- extrapolation and report -------------------------------------------------------------------
def extrapolate(inference: dict[str, Any], post: dict[str, Any]) -> dict[str, Any]:
    pixel_windows = TILE_PIXELS * POSITIONS_PER_YEAR
    per_backend: dict[str, Any] = {}
    for backend, found in inference.items():
        for shape, figures in found["shapes"].items():
            rates = figures["pixel_windows_per_s"]
            platform_rate = rates["platform"]["median"]
            fastest = rates[figures["fastest_platform_variant"]]["median"]
            per_backend[f"{backend}/{shape}"] = {
                "platform_pixel_windows_per_s": platform_rate,
                "platform_hours_per_tile_year": round(pixel_windows / platform_rate / 3600, 1),
                "fastest_variant": figures["fastest_platform_variant"],
                "fastest_hours_per_tile_year": round(pixel_windows / fastest / 3600, 1),
                "user_loop_hours_per_tile_year": round(
                    pixel_windows / rates["user_loop"]["median"] / 3600, 1
                ),
                "speed_up_needed_for_gpu_goal": round(pixel_windows / GPU_GOAL_S / fastest),
            }
    analyse = post["labels_uint8"]["pixel_steps_per_s"]["analyse_sequences"]["median"]
    analyse64 = post["labels_int64"]["pixel_steps_per_s"]["analyse_sequences"]["median"]
    regions = post["drop_small_regions"]
    return {
        "tile_year": f"{TILE_PIXELS / 1e6:.0f} M pixels x {POSITIONS_PER_YEAR} window positions = "
        f"{pixel_windows / 1e9:.1f} G pixel-windows (and as many pixel-steps of label sequences)",
        "inference_on_this_cpu": per_backend,
        "postprocessing_on_this_cpu": {
            "analyse_sequences_uint8_labels_s": round(pixel_windows / analyse),
            "analyse_sequences_int64_labels_s": round(pixel_windows / analyse64),
            "drop_small_regions_full_tile_s": round(TILE_PIXELS / regions["pixels_per_s"]["median"], 1),
        },
        "gpu_goal": {
            "goal": f"a tile-year in under {GPU_GOAL_S / 60:.0f} minutes on one H100",
            "pixel_windows_per_s_needed": round(pixel_windows / GPU_GOAL_S),
            "reference": f"plain compiled bf16 PyTorch Transformer on an H100 (issue 7): {GPU_REFERENCE:.2g} "
            f"pixel-windows/s = {pixel_windows / GPU_REFERENCE / 60:.0f} min per tile-year",
            "speed_up_needed_over_reference": round(pixel_windows / GPU_GOAL_S / GPU_REFERENCE, 2),
            "postprocessing_note": "the label-sequence analysis must also fit (or overlap with inference): "
            "at the CPU rate above it alone takes the time in postprocessing_on_this_cpu",
            "measured": False,
            "why_not_measured": "no GPU or device machine was lent to this task; every figure here is from "
            "the 2-core CPU described under machine",
        },
    }


def versions() -> dict[str, str]:
    import scipy

    found = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}
    for module in ("tensorflow", "torch"):
        code = f"import {module}; print({module}.__version__)"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        found[module] = result.stdout.strip() or "not installed"
    return found


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller and fewer passes (about 2 minutes)")
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--seconds", type=float, default=1.5, help="target seconds of one platform pass")
    parser.add_argument(
        "--max-pixels", type=int, default=8192, help="pixels of the synthetic series, at most"
    )
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of every variant")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1024, 16384], help="Predictor batches")
    parser.add_argument("--steps", type=int, default=34, help="label-sequence steps (post-processing)")
    parser.add_argument("--post-pixels", type=int, default=500_000, help="label sequences (post-processing)")
    parser.add_argument("--raster-side", type=int, default=TILE_SIDE, help="drop_small_regions raster side")
    parser.add_argument("--repeats", type=int, default=2, help="post-processing repeats")
    parser.add_argument("--child", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "infer.json")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds, args.max_pixels = 0.5, 1, 1024
        args.post_pixels, args.raster_side, args.repeats = 200_000, 2048, 1
    return args


def main() -> None:
    args = parse_args()
    sys.path.insert(0, str(REPO))
    from benchmarks.machine import describe_machine

    if args.child:
        print(json.dumps(run_backend(args.child, args)), flush=True)
        return
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    load_start = os.getloadavg()
    post = measure_postprocessing(args)
    print("post-processing: " + json.dumps(post["drop_small_regions"]["pixels_per_s"]), file=sys.stderr)
    inference = {backend: run_backend_child(backend, args) for backend in args.backends}
    report = {
        "what": "pixel-windows/s of sliding-window inference (w = 15 composites x 15 features, 9 classes) "
        "through the platform's path (load_model + Predictor + sliding_window_labels) vs a per-position "
        "framework loop, per backend and shape; pixel-steps/s of the change analysis; tile-year "
        "extrapolation",
        "setup": {
            "series": f"{COMPOSITES} composites x N pixels x {FEATURES} features (synthetic), "
            f"{COMPOSITES - WINDOW + 1} window positions; N per shape so one platform pass takes about "
            f"{args.seconds} s (at most {args.max_pixels})",
            "weights": "random (throughput does not depend on them)",
            "shapes": SHAPES,
            "rounds": f"{args.rounds} timed rounds, variants alternating; the first (untimed) round traces "
            "and compiles",
            "batch_sizes": {
                "sliding_window_labels": 65536,
                "Predictor default": 4096,
                "tried": args.batch_sizes,
            },
            "user_loop": "per window position over all pixels: Keras model.predict (default batch size 32) / "
            "plain PyTorch module(x) in eval mode with autograd on; numpy softmax, mean, argmax",
            "quick": args.quick,
        },
        "machine": describe_machine(),
        "versions": versions(),
        "started_at": started,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "load_average_1_5_15_min": {"start": load_start, "end": os.getloadavg()},
        "inference": inference,
        "postprocessing": post,
        "extrapolation": extrapolate(inference, post),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.out.with_name(f".{args.out.name}.tmp")
    tmp_out.write_text(json.dumps(report, indent=2) + "\n")
    tmp_out.replace(args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
