"""A synthetic training set in the documented layout (eo_tasks.trainset, format version 1), with numpy + h5py.

Each class has its own seasonal curve per feature (amplitude, phase, offset) plus noise, so the task
is learnable and every time step looks different; raw values are reflectance-like, so the stored
normalization matters. Used by the compute tests and the training benchmark.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import h5py
import numpy as np

CLASS_CODES = list(range(1, 10))
CLASS_NAMES = [
    "artificial",
    "cropland",
    "grassland",
    "tree_cover",
    "shrubland",
    "bare",
    "snow_ice",
    "water",
    "wetland",
]
BANDS = ["blue", "green", "red", "rededge1", "rededge2", "rededge3", "nir", "nir08", "swir16", "swir22"]


def write_trainset(
    path: Path,
    samples: int = 600,
    time_steps: int = 12,
    n_features: int = 6,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    noise: float = 0.05,
    seed: int = 0,
) -> Path:
    """Writes a training-set HDF5 file with a learnable signal.

    Args:
        path: Destination.
        samples: Number of samples.
        time_steps: Time steps per sample.
        n_features: Features (the first band names, up to 10).
        fractions: Train / validation / test shares.
        noise: Standard deviation of the noise (signal amplitudes are about 0.1).
        seed: Random seed.

    Returns:
        ``path``.
    """
    rng = np.random.default_rng(seed)
    k = len(CLASS_CODES)
    amplitude = rng.uniform(0.02, 0.15, (k, n_features))
    phase = rng.uniform(0, 2 * np.pi, (k, n_features))
    offset = rng.uniform(0.05, 0.4, (k, n_features))
    labels_idx = rng.integers(0, k, samples)
    t = np.arange(time_steps) / time_steps * 2 * np.pi
    curve = np.sin(t[None, :, None] + phase[labels_idx][:, None, :])
    features = offset[labels_idx][:, None, :] + amplitude[labels_idx][:, None, :] * curve
    features += rng.normal(0, noise, features.shape)
    counts = [int(samples * fractions[0]), int(samples * fractions[1])]
    counts.append(samples - sum(counts))
    split = np.repeat(np.arange(3), counts).astype(np.uint8)
    train = features[: counts[0]].reshape(-1, n_features)
    years = [2021, 2022]
    dates = [
        [
            (dt.date(y, 1, 15) + dt.timedelta(days=int(365 * i / time_steps))).isoformat().encode()
            for i in range(time_steps)
        ]
        for y in years
    ]
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=features.astype(np.float32), compression="gzip")
        f.create_dataset("labels", data=np.asarray(CLASS_CODES, dtype=np.uint8)[labels_idx])
        f.create_dataset("year", data=rng.choice(years, samples).astype(np.int16))
        f.create_dataset("row", data=rng.integers(0, 100, samples).astype(np.int32))
        f.create_dataset("col", data=rng.integers(0, 100, samples).astype(np.int32))
        f.create_dataset("split", data=split)
        f.create_dataset("norm_mean", data=train.mean(axis=0).astype(np.float32))
        f.create_dataset("norm_std", data=np.maximum(train.std(axis=0), 1e-6).astype(np.float32))
        f.create_dataset("dates", data=dates)
        a = f.attrs
        a["format"], a["format_version"], a["aoi"] = "eo-platform/training-set", 1, "synthetic"
        a["epsg"], a["crs_wkt"], a["geotransform"] = 32632, "", [600000.0, 10.0, 0.0, 5100000.0, 0.0, -10.0]
        a["grid_shape"], a["years"] = [100, 100], years
        a["band_names"] = BANDS[:n_features]
        a["feature_names"] = BANDS[:n_features]
        a["class_codes"], a["class_names"] = CLASS_CODES, CLASS_NAMES
        a["class_colors"] = ["#000000"] * k
        a["split_names"], a["split_counts"] = ["train", "validation", "test"], counts
        a["source_cubes"], a["reference"], a["legend"] = json.dumps({}), "synthetic.tif", "worldcover"
        a["config"], a["extra"] = json.dumps({}), json.dumps({})
        a["created_at"] = dt.datetime.now(dt.UTC).isoformat()
    return path
