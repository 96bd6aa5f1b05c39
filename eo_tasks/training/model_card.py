"""The model card: validation and test metrics per class, provenance and the model files it describes."""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

import eo_tasks
from eo_tasks.core.files import write_json
from eo_tasks.core.trainset_format import FORMAT_VERSION, SPLIT_NAMES, SPLIT_TEST
from eo_tasks.models import CARD_NAME, CARD_SCHEMA, CARD_SCHEMA_VERSION, MODEL_FILES, ModelSpec
from eo_tasks.training.contract import TrainConfig, Trainer
from eo_tasks.training.data import TrainingSetInfo, read_rows
from eo_tasks.training.schedule import LR_FLOOR

log = logging.getLogger(__name__)


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
            cwd=Path(eo_tasks.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
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


def review_summary(card: dict[str, Any]) -> str:
    """The model card as a reviewer reads it before approving: metrics per class, as Markdown."""
    arch = card.get("architecture", {})
    lines = [
        f"**Model** `{card.get('model_id')}`: {card.get('backend')} {arch.get('architecture')} "
        f"({arch.get('layers')} layers, width {arch.get('hidden')}), trained on "
        f"`{card.get('training_set', {}).get('path')}`.",
        "",
    ]
    for split, report in (card.get("metrics") or {}).items():
        if not isinstance(report, dict) or "per_class" not in report:
            continue
        lines += [
            f"**{split}**: overall accuracy {report['overall_accuracy']:.3f}, "
            f"macro F1 {report['macro_f1'] if report['macro_f1'] is None else round(report['macro_f1'], 3)}",
            "",
            "| class | precision | recall | F1 | samples |",
            "|---|---|---|---|---|",
        ]
        for name, c in report["per_class"].items():
            if c["support"]:
                cells = [("-" if c[k] is None else f"{c[k]:.3f}") for k in ("precision", "recall", "f1")]
                lines.append(f"| {name} | {' | '.join(cells)} | {c['support']} |")
        lines.append("")
    lines.append(
        "Approve to make the yearly maps with this model from now on; reject to keep the current one."
    )
    return "\n".join(lines)
