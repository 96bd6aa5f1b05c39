"""PyTorch versions of the two classifiers: the backend for clusters that cannot run TensorFlow 2.15.

The modules mirror :mod:`eo_tasks.models.keras_models` layer for layer: a stacked LSTM, or a linear
input projection followed by post-norm ``nn.TransformerEncoderLayer`` blocks without positional
embedding, then a per-step linear classifier (no pooling). A trained model is saved as a plain
``state_dict`` (``model.pt``); the architecture lives in the model card, so loading needs no pickled
code and survives refactoring.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from eo_tasks.models import ModelSpec

FORWARD_CHUNK = 1024  # windows per forward pass at inference (see load_forward)


class LSTMClassifier(nn.Module):
    """Stacked LSTM with a class output at every time step."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            spec.n_features, spec.hidden, num_layers=spec.layers, batch_first=True, dropout=spec.dropout
        )
        self.head = nn.Linear(spec.hidden, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, time, features)`` → ``(batch, time, classes)`` logits."""
        out, _ = self.lstm(x)
        return self.head(out)


class TransformerClassifier(nn.Module):
    """Transformer encoder without positional embedding, with a class output at every time step."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.input_projection = nn.Linear(spec.n_features, spec.hidden)
        layer = nn.TransformerEncoderLayer(
            spec.hidden, spec.heads, dim_feedforward=spec.ff_dim, dropout=spec.dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, spec.layers, enable_nested_tensor=False)
        self.head = nn.Linear(spec.hidden, spec.n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(batch, time, features)`` → ``(batch, time, classes)`` logits."""
        return self.head(self.encoder(self.input_projection(x)))


def build_model(spec: ModelSpec) -> nn.Module:
    """Builds a classifier (float32, on the CPU, in training mode).

    Args:
        spec: Architecture and sizes.

    Returns:
        The module.
    """
    return LSTMClassifier(spec) if spec.architecture == "lstm" else TransformerClassifier(spec)


def load_forward(path: Path, spec: ModelSpec) -> Callable[[np.ndarray], np.ndarray]:
    """Loads ``model.pt`` (a state_dict) for inference on the CPU.

    Args:
        path: The saved state_dict.
        spec: The architecture, from the model card.

    Returns:
        Normalized features → logits, as numpy arrays.
    """
    model = build_model(spec)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    model.eval()

    def forward(x: np.ndarray) -> np.ndarray:
        # In chunks of FORWARD_CHUNK windows: on a CPU, 1024 gave 1.2-1.65x the pixel-windows/s of
        # 4096 (the Predictor's default batch) for all three benchmarked shapes (benchmarks/infer).
        with torch.inference_mode():
            inputs = torch.from_numpy(x)
            if len(inputs) <= FORWARD_CHUNK:
                return model(inputs).numpy()
            return torch.cat([model(part) for part in inputs.split(FORWARD_CHUNK)]).numpy()

    return forward


class WindowLabeller:
    """Sliding-window labels computed where the model lives (the GPU when there is one).

    The raw series goes to the device once; normalization, windowing (``unfold``), the forward
    pass (``torch.compile``'d on CUDA, bf16 autocast there), the softmax, the mean over each
    window's steps and the argmax all run on the device, and only ``uint8`` class codes and
    confidences come back. On the CPU the arithmetic is that of :class:`eo_tasks.models.Predictor`
    with :func:`eo_tasks.maps.infer.sliding_window_predict` (forward passes of ``FORWARD_CHUNK``
    windows, float32), so the labels are the same.
    """

    def __init__(
        self,
        model: nn.Module,
        mean: np.ndarray,
        std: np.ndarray,
        class_codes: np.ndarray,
        device: torch.device,
        compile_model: bool,
    ) -> None:
        self.device = device
        self.model = model.to(device).eval()
        self.mean = torch.as_tensor(mean, dtype=torch.float32, device=device)
        self.std = torch.as_tensor(std, dtype=torch.float32, device=device)
        self.codes = torch.as_tensor(class_codes, dtype=torch.uint8, device=device)
        self.forward_fn: Callable[[torch.Tensor], torch.Tensor] = self.model
        self.compiled = False
        if compile_model and hasattr(torch, "compile"):
            try:
                self.forward_fn = torch.compile(self.model, dynamic=True)
                self.compiled = True
            except Exception:  # no compiler backend here: eager is correct, only slower
                self.forward_fn = self.model

    def windows_per_pass(self, window: int, n_features: int) -> int:
        """Windows per forward pass: FORWARD_CHUNK on the CPU; a quarter of the free GPU memory on CUDA."""
        if self.device.type != "cuda":
            return FORWARD_CHUNK
        free, _ = torch.cuda.mem_get_info(self.device)
        width = max(p.shape[-1] for p in self.model.parameters())  # the widest activation per step
        per_window = window * (n_features + 8 * width) * 4
        return int(min(1 << 20, max(FORWARD_CHUNK, free // 4 // per_window)))

    def _logits(self, batch: torch.Tensor) -> torch.Tensor:
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.device.type == "cuda")
        with autocast:
            try:
                out = self.forward_fn(batch)
            except Exception:  # compiling failed at the first call: eager
                if not self.compiled:
                    raise
                self.forward_fn, self.compiled = self.model, False
                out = self.model(batch)
        return out.float()

    def __call__(
        self, series: np.ndarray, window: int, batch_size: int = 65536
    ) -> tuple[np.ndarray, np.ndarray]:
        """Labels every pixel at every window position.

        Args:
            series: ``(composites, pixels, features)`` raw features in the card's order.
            window: ``w``.
            batch_size: Pixel-windows per pixel batch (at least one pixel's positions).

        Returns:
            ``(labels, confidence)`` ``(positions, pixels)`` uint8: class codes and the label's mean
            probability in percent.
        """
        n_composites, n_pixels, n_features = series.shape
        positions = n_composites - window + 1
        labels = np.empty((positions, n_pixels), np.uint8)
        confidence = np.empty((positions, n_pixels), np.uint8)
        chunk = self.windows_per_pass(window, n_features)
        pixel_batch = max(1, max(batch_size, chunk) // max(positions, 1))
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(series, dtype=np.float32)).to(self.device)
            x = (x - self.mean) / self.std
            for start in range(0, n_pixels, pixel_batch):
                stop = min(start + pixel_batch, n_pixels)
                block = x[:, start:stop].permute(1, 0, 2)  # (pixels, composites, features)
                batch = block.unfold(1, window, 1).permute(0, 1, 3, 2).reshape(-1, window, n_features)
                means = []
                for part in batch.split(chunk):
                    logits = self._logits(part.contiguous())
                    shifted = logits - logits.amax(dim=-1, keepdim=True)
                    probs = shifted.exp_()
                    probs /= probs.sum(dim=-1, keepdim=True)
                    means.append(probs.mean(dim=1))
                mean = torch.cat(means)
                sure, best = mean.max(dim=-1)
                codes = self.codes[best].reshape(stop - start, positions).T
                percent = torch.round(100 * sure).to(torch.uint8).reshape(stop - start, positions).T
                labels[:, start:stop] = codes.cpu().numpy()
                confidence[:, start:stop] = percent.cpu().numpy()
        return labels, confidence


def load_window_labeller(
    path: Path,
    spec: ModelSpec,
    card: dict[str, Any],
    device: str | None = None,
    compile_model: bool | None = None,
) -> WindowLabeller:
    """Loads ``model.pt`` onto the device for sliding-window labelling.

    Args:
        path: The saved state_dict.
        spec: The architecture, from the model card.
        card: The model card (normalization and class codes).
        device: ``cuda``, ``cpu``…; default: CUDA when available.
        compile_model: Whether to ``torch.compile`` the forward; default: on CUDA only (on a CPU the
            compile time outweighs the gain for one block).

    Returns:
        The labeller.
    """
    target = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = build_model(spec)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    norm = card["normalization"]
    return WindowLabeller(
        model,
        np.asarray(norm["mean"], np.float32),
        np.asarray(norm["std"], np.float32),
        np.asarray([int(c["code"]) for c in card["classes"]], np.uint8),
        target,
        target.type == "cuda" if compile_model is None else compile_model,
    )
