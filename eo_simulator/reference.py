"""The reference map: the first year's truth degraded the way real land-cover products are.

Blocky boundaries and whole patches mislabeled with plausible confusions, every wrong pixel
recorded, so the training-set stage can be scored on how many planted label errors it rejects.
"""

from __future__ import annotations

import math

import numpy as np

from eo_tasks.core.classes import CLASS_BY_CODE, CLASS_BY_NAME

REFERENCE_BLOCK_PX = 3  # the reference's boundaries follow a 30 m grid

# Plausible confusions of a land-cover product, by true class.
CONFUSIONS: dict[str, tuple[str, ...]] = {
    "artificial": ("bare", "cropland"),
    "cropland": ("grassland", "bare"),
    "grassland": ("cropland", "shrubland"),
    "tree_cover": ("shrubland", "grassland"),
    "shrubland": ("tree_cover", "grassland"),
    "bare": ("grassland", "snow_ice"),
    "snow_ice": ("bare",),
    "water": ("wetland",),
    "wetland": ("grassland", "water"),
}
REFERENCE_PLANTED_ERROR = 1
REFERENCE_BOUNDARY_ERROR = 2


def block_mode(classes: np.ndarray, block: int) -> np.ndarray:
    """Replaces each ``block``×``block`` block by its most frequent class (ties: lowest code)."""
    height, width = classes.shape
    padded = np.pad(classes, ((0, -height % block), (0, -width % block)), mode="edge")
    blocks = padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block)
    counts = np.stack([(blocks == code).sum(axis=(1, 3)) for code in range(int(classes.max()) + 1)])
    mode = counts.argmax(axis=0).astype(classes.dtype)
    return np.ascontiguousarray(np.repeat(np.repeat(mode, block, 0), block, 1)[:height, :width])


def _mislabeled_patch(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[slice, slice, np.ndarray]:
    """An irregular blob 5–13 px across: its window and the mask inside the window."""
    radius = rng.uniform(2.5, 6.5)
    row, col = rng.integers(0, shape[0]), rng.integers(0, shape[1])
    reach = math.ceil(radius * 1.4)
    rows = slice(max(0, row - reach), min(shape[0], row + reach + 1))
    cols = slice(max(0, col - reach), min(shape[1], col + reach + 1))
    dy, dx = np.mgrid[rows, cols]
    dy, dx = dy - row, dx - col
    wobble = 1.0 + 0.35 * np.sin(3.0 * np.arctan2(dy, dx) + rng.uniform(0, 2 * math.pi))
    return rows, cols, (dy**2 + dx**2) <= (radius * wobble) ** 2


def degrade_reference(
    rng: np.random.Generator, truth: np.ndarray, error_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Turns a true class map into a realistic reference product.

    Boundaries are coarsened (mode over REFERENCE_BLOCK_PX blocks: thin features such as roads and
    the river break up), then whole small patches get a wrong but plausible class (CONFUSIONS)
    until ``error_fraction`` of the pixels carry a planted error.

    Args:
        rng: Random generator.
        truth: Platform class codes.
        error_fraction: Share of pixels to mislabel in patches.

    Returns:
        The reference in platform codes, and the error codes per pixel: 0 correct,
        REFERENCE_PLANTED_ERROR in a mislabeled patch, REFERENCE_BOUNDARY_ERROR from coarsening.
    """
    reference = block_mode(truth, REFERENCE_BLOCK_PX)
    patched = np.zeros(truth.shape, dtype=bool)
    wanted = round(error_fraction * truth.size)
    for _ in range(100 * (wanted // 20 + 1)):
        if np.count_nonzero(patched & (reference != truth)) >= wanted:
            break
        rows, cols, blob = _mislabeled_patch(rng, truth.shape)
        present = truth[rows, cols][blob]
        majority = CLASS_BY_CODE[int(np.bincount(present).argmax())].name
        wrong = CLASS_BY_NAME[str(rng.choice(CONFUSIONS[majority]))].code
        reference[rows, cols][blob] = wrong
        patched[rows, cols][blob] = True
    wrong_pixels = reference != truth
    errors = np.where(patched, REFERENCE_PLANTED_ERROR, REFERENCE_BOUNDARY_ERROR) * wrong_pixels
    return reference, errors.astype(np.uint8)
