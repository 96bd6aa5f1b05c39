"""Both architectures in both backends: one class output per time step, no pooling."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from eo_tasks.models import ModelSpec

SIZES = {"layers": 2, "hidden": 32, "ff_dim": 64}


def _keras(spec: ModelSpec) -> Callable[[np.ndarray], np.ndarray]:
    pytest.importorskip("tensorflow")
    from eo_tasks.models.keras_models import build_model

    model = build_model(spec)
    return lambda x: model(x, training=False).numpy()


def _torch(spec: ModelSpec) -> Callable[[np.ndarray], np.ndarray]:
    torch = pytest.importorskip("torch")
    from eo_tasks.models.torch_models import build_model

    model = build_model(spec).eval()

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    return forward


BUILDERS = {"tensorflow": _keras, "pytorch": _torch}


@pytest.mark.parametrize("backend", BUILDERS)
@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_one_output_per_time_step(backend: str, arch: str) -> None:
    spec = ModelSpec.published(arch, n_features=6, n_classes=9, **SIZES)
    forward = BUILDERS[backend](spec)
    x = np.random.default_rng(0).normal(size=(4, 15, 6)).astype(np.float32)
    logits = forward(x)
    assert logits.shape == (4, 15, 9)
    assert np.abs(np.diff(logits, axis=1)).max() > 1e-3  # no pooling: the steps differ
    changed = x.copy()
    changed[:, 7] += 1.0
    moved = np.abs(forward(changed) - logits).max(axis=(0, 2))
    assert moved[7] > 1e-3  # step 7's output depends on step 7's input
    if arch == "lstm":
        assert moved[:7].max() < 1e-6  # recurrent: earlier steps cannot see later ones
    assert forward(x[:, :5]).shape == (4, 5, 9)  # any window length


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_backends_have_the_same_architecture(arch: str) -> None:
    pytest.importorskip("tensorflow")
    torch = pytest.importorskip("torch")
    from eo_tasks.models import keras_models, torch_models

    spec = ModelSpec.published(arch, n_features=10, n_classes=9)
    keras_params = keras_models.build_model(spec).count_params()
    torch_params = sum(p.numel() for p in torch_models.build_model(spec).parameters())
    # PyTorch's LSTM keeps two bias vectors per gate (input and recurrent); Keras one.
    extra = spec.layers * 4 * spec.hidden if arch == "lstm" else 0
    assert torch_params == keras_params + extra
    assert isinstance(torch_models.build_model(spec), torch.nn.Module)
