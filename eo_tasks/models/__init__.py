"""The land-cover classifiers and the backend-agnostic way to use a trained one.

Why two backends behind one contract: Horovod's last release pins TensorFlow to 2.15, which modern
GPU clusters often cannot run, so the same two architectures exist in Keras
(:mod:`eo_tasks.models.keras_models`) and PyTorch (:mod:`eo_tasks.models.torch_models`). Both take
``(batch, time, features)`` normalized inputs and return ``(batch, time, classes)`` logits: one class
per time step, no pooling, as the sliding-window change detection needs. A trained model is a
directory with the model file and ``model_card.json``; :func:`load_model` reads either backend's
and returns the same predictor, so inference never needs to know which one trained it.

This module imports neither TensorFlow nor PyTorch; each backend is imported when used.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eo_tasks.core.aoi_sections import ARCHITECTURES, BACKENDS
from eo_tasks.core.errors import ConfigError

CARD_NAME = "model_card.json"
CARD_SCHEMA = "eo-platform/model-card"
CARD_SCHEMA_VERSION = 1
MODEL_FILES = {"tensorflow": "model.keras", "pytorch": "model.pt"}


@dataclass(frozen=True)
class ModelSpec:
    """Architecture and sizes of a classifier (the same for both backends).

    Attributes:
        architecture: ``lstm`` or ``transformer``.
        n_features: Input features per time step.
        n_classes: Output classes per time step.
        layers: Stacked LSTM layers / Transformer encoder layers.
        hidden: LSTM hidden size / Transformer ``d_model``.
        heads: Attention heads (Transformer only).
        ff_dim: Width of the Transformer's feed-forward sublayer.
        dropout: Dropout between LSTM layers / inside the encoder layers.
    """

    architecture: str
    n_features: int
    n_classes: int
    layers: int
    hidden: int
    heads: int = 2
    ff_dim: int = 256
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"architecture {self.architecture!r} is not one of {ARCHITECTURES}")
        if self.architecture == "transformer" and self.hidden % self.heads:
            raise ConfigError(f"d_model {self.hidden} is not divisible by {self.heads} heads")

    @classmethod
    def published(cls, architecture: str, n_features: int, n_classes: int, **sizes: Any) -> ModelSpec:
        """The published sizes (LSTM 4 × 128; Transformer 5 layers, 2 heads, d_model 128), overridable.

        Args:
            architecture: ``lstm`` or ``transformer``.
            n_features: Input features per time step.
            n_classes: Output classes.
            **sizes: Overrides of ``layers``, ``hidden``, ``heads``, ``ff_dim``, ``dropout``
                (``None`` values are ignored).

        Returns:
            The specification.
        """
        defaults: dict[str, Any] = (
            {"layers": 4, "hidden": 128} if architecture == "lstm" else {"layers": 5, "hidden": 128}
        )
        defaults.update({k: v for k, v in sizes.items() if v is not None})
        return cls(architecture=architecture, n_features=n_features, n_classes=n_classes, **defaults)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the model card and checkpoints."""
        return {**asdict(self), "positional_embedding": False, "output": "logits per time step"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """The inverse of :meth:`to_dict`."""
        fields = ("architecture", "n_features", "n_classes", "layers", "hidden", "heads", "ff_dim", "dropout")
        return cls(**{name: data[name] for name in fields})


def softmax(logits: np.ndarray) -> np.ndarray:
    """Numerically stable softmax over the last axis, float32."""
    shifted = logits.astype(np.float32) - logits.max(axis=-1, keepdims=True)
    np.exp(shifted, out=shifted)
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass(frozen=True)
class Predictor:
    """A trained model, callable on raw (unnormalized) features.

    Attributes:
        card: The model card.
        forward: Normalized ``(batch, time, features)`` float32 → logits ``(batch, time, classes)``.
    """

    card: dict[str, Any]
    forward: Callable[[np.ndarray], np.ndarray]

    @property
    def class_codes(self) -> list[int]:
        """Platform class code of each output index."""
        return [int(c["code"]) for c in self.card["classes"]]

    def __call__(self, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
        """Class probabilities for every time step.

        Args:
            x: ``(batch, time, features)`` raw features, in the card's feature order.
            batch_size: Samples per forward pass (bounds memory).

        Returns:
            ``(batch, time, classes)`` float32 probabilities.

        Raises:
            ConfigError: ``x`` does not have the card's number of features.
        """
        norm = self.card["normalization"]
        mean = np.asarray(norm["mean"], dtype=np.float32)
        std = np.asarray(norm["std"], dtype=np.float32)
        if x.ndim != 3 or x.shape[-1] != mean.size:
            raise ConfigError(
                f"model {self.card['model_id']} expects (batch, time, {mean.size}) features, got {x.shape}"
            )
        parts = [
            softmax(self.forward(((x[i : i + batch_size] - mean) / std).astype(np.float32)))
            for i in range(0, len(x), batch_size)
        ]
        n_classes = len(self.card["classes"])
        return np.concatenate(parts) if parts else np.zeros((0, x.shape[1], n_classes), np.float32)


def read_card(model_dir: Path) -> dict[str, Any]:
    """Reads and checks a model directory's card.

    Args:
        model_dir: Directory holding ``model_card.json`` and the model file.

    Returns:
        The card.

    Raises:
        ConfigError: No card, another schema, or an unknown backend.
    """
    path = model_dir / CARD_NAME
    if not path.is_file():
        raise ConfigError(f"{model_dir} holds no {CARD_NAME}: not a trained model directory")
    card: dict[str, Any] = json.loads(path.read_text())
    if card.get("schema") != CARD_SCHEMA or card.get("schema_version") != CARD_SCHEMA_VERSION:
        raise ConfigError(f"{path}: not a version-{CARD_SCHEMA_VERSION} {CARD_SCHEMA} card")
    if card.get("backend") not in BACKENDS:
        raise ConfigError(f"{path}: backend {card.get('backend')!r} is not one of {BACKENDS}")
    return card


def load_model(model_dir: Path | str) -> Predictor:
    """Loads a trained model of either backend for inference.

    Args:
        model_dir: Directory written by ``python -m eo_tasks.training`` (model file + card).

    Returns:
        A callable ``predict(x[batch, time, features]) -> probabilities[batch, time, classes]`` that
        applies the card's normalization; ``predict.card`` is the model card.
    """
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    spec = ModelSpec.from_dict(card["architecture"])
    model_file = model_dir / card["model_file"]
    if card["backend"] == "tensorflow":
        from eo_tasks.models import keras_models

        return Predictor(card, keras_models.load_forward(model_file))
    from eo_tasks.models import torch_models

    return Predictor(card, torch_models.load_forward(model_file, spec))
