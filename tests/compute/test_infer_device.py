"""The PyTorch device path of the inference job labels as the numpy path it replaces (on the CPU here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from eo_tasks.maps.infer import sliding_window_predict, window_label
from eo_tasks.models import ModelSpec, Predictor

torch = pytest.importorskip("torch")
from eo_tasks.models.torch_models import build_model, load_forward, load_window_labeller  # noqa: E402

CODES = [1, 2, 3, 4, 6, 8]
W, COMPOSITES, PIXELS, FEATURES = 5, 16, 300, 4


def _model(tmp_path: Path, arch: str) -> tuple[Path, ModelSpec, dict[str, Any]]:
    torch.manual_seed(0)
    spec = ModelSpec(arch, FEATURES, len(CODES), layers=2, hidden=16, ff_dim=32)
    path = tmp_path / "model.pt"
    model = build_model(spec)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.mul_(4)  # an untrained model with decisive, varied outputs
    torch.save(model.state_dict(), path)
    card = {
        "model_id": "m",
        "normalization": {"mean": [0.1, 0.2, 0.3, 0.4], "std": [0.05, 0.1, 0.2, 0.3]},
        "classes": [{"code": c} for c in CODES],
    }
    return path, spec, card


@pytest.mark.parametrize("arch", ["lstm", "transformer"])
def test_the_device_path_gives_the_labels_of_the_numpy_path(tmp_path: Path, arch: str) -> None:
    path, spec, card = _model(tmp_path, arch)
    series = np.random.default_rng(1).normal(0.3, 0.5, (COMPOSITES, PIXELS, FEATURES)).astype(np.float32)
    predictor = Predictor(card, load_forward(path, spec))
    codes = np.asarray(CODES, np.uint8)

    def predict(batch: np.ndarray) -> np.ndarray:
        return predictor(batch, batch_size=1000)

    labels, confidence = sliding_window_predict(series, W, predict, codes, batch_size=1000)
    annual = codes[window_label(predict(np.moveaxis(series, 1, 0)))]
    labeller = load_window_labeller(path, spec, card, device="cpu")
    assert labeller.device.type == "cpu" and not labeller.compiled  # no GPU here: eager on the CPU
    got_labels, got_confidence = labeller(series, W, 1000)
    assert got_labels.dtype == np.uint8 and len(set(labels.ravel().tolist())) > 1
    np.testing.assert_array_equal(got_labels, labels)
    assert np.abs(got_confidence.astype(int) - confidence.astype(int)).max() <= 1  # rounding at .5 only
    np.testing.assert_array_equal(labeller(series, COMPOSITES, 1000)[0][0], annual)


def test_a_forward_that_fails_to_compile_falls_back_to_eager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, spec, card = _model(tmp_path, "lstm")
    series = np.random.default_rng(2).random((COMPOSITES, 50, FEATURES), dtype=np.float32)
    expected = load_window_labeller(path, spec, card, device="cpu")(series, W, 1000)

    def broken(*_args: object, **_kwargs: object) -> Any:
        def forward(_x: Any) -> Any:
            raise RuntimeError("no C++ compiler for inductor")

        return forward

    monkeypatch.setattr(torch, "compile", broken)
    labeller = load_window_labeller(path, spec, card, device="cpu", compile_model=True)
    assert labeller.compiled
    labels, _ = labeller(series, W, 1000)
    assert not labeller.compiled
    np.testing.assert_array_equal(labels, expected[0])
