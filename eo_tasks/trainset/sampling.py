"""Which reference pixels become training samples: the cluster filter, class quotas, and blocked splits.

A public reference map is wrong in places (mislabelled patches, coarse boundaries, changes since it
was made). Within one class, such pixels look different from the bulk of the class, so k-means on
the class's index time series puts them into minor clusters; keeping only the dominant (largest)
cluster discards most of them at the price of some correct but atypical pixels.

Samples are drawn per class with quotas proportional to the class's share of the reference map,
bounded below (rare classes still get examples) and above (a dominant class does not swamp the
rest). Train, validation and test sets are whole square blocks of the grid, with a buffer between
blocks of different sets: neighbouring pixels are nearly identical, and a test pixel next to a
training pixel would measure memory instead of generalization.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from eo_tasks.core.classes import CLASS_BY_CODE
from eo_tasks.core.errors import ConfigError
from eo_tasks.core.trainset_format import (
    SPLIT_NAMES,
    SPLIT_TRAIN,
)

log = logging.getLogger(__name__)

SPLIT_NONE = -1  # buffer pixels: in no split


def class_name(code: int) -> str:
    """The platform name of a class code (``class_<code>`` for codes outside the platform's classes)."""
    cls = CLASS_BY_CODE.get(int(code))
    return cls.name if cls else f"class_{int(code)}"


@dataclass(frozen=True)
class DominantCluster:
    """A class's k-means clusters and which of them are kept: the dominant (largest) one, at least.

    Attributes:
        model: The fitted ``sklearn.cluster.KMeans``.
        dominant: Index of the largest cluster.
        kept: Indices of the kept clusters (the dominant one first).
        sizes: Pixels per cluster in the data the model was fitted on.
    """

    model: Any
    dominant: int
    kept: tuple[int, ...]
    sizes: tuple[int, ...]

    def keeps(self, features: np.ndarray) -> np.ndarray:
        """True for the pixels that fall into a kept cluster.

        Args:
            features: ``(pixels, features)`` in the space the model was fitted in.

        Returns:
            ``(pixels,)`` bool.
        """
        if len(features) == 0:
            return np.zeros(0, dtype=bool)
        return np.isin(self.model.predict(features), self.kept)


def fit_dominant_cluster(features: np.ndarray, k: int, seed: int, keep_share: float = 1.0) -> DominantCluster:
    """Clusters one class's pixels with k-means and keeps the largest cluster.

    Args:
        features: ``(pixels, features)``, at least ``k`` pixels.
        k: Number of clusters.
        seed: Seeds the k-means initialization.
        keep_share: Other clusters holding at least this share of the pixels are kept too; 1.0
            keeps the dominant cluster alone (the published method).

    Returns:
        The clusters and the kept ones.
    """
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=3, random_state=seed).fit(features)
    sizes = np.bincount(model.labels_, minlength=k)
    order = np.argsort(-sizes, kind="stable")
    kept = [int(order[0])] + [int(c) for c in order[1:] if sizes[c] >= keep_share * len(features)]
    return DominantCluster(
        model=model, dominant=int(order[0]), kept=tuple(kept), sizes=tuple(int(s) for s in sizes)
    )


def class_quotas(
    class_pixels: Mapping[int, int], total: int, min_per_class: int, max_per_class: int
) -> dict[int, int]:
    """Samples per class: proportional to the class's share of the reference map, within bounds.

    Quotas clipped by a bound are not redistributed to the other classes (that would distort the
    proportions the bounds leave intact), so the sum can differ from ``total``.

    Args:
        class_pixels: Class code → pixels of that class in the reference map (code 0 is ignored).
        total: The sample size to split.
        min_per_class: Lower bound of every present class's quota.
        max_per_class: Upper bound.

    Returns:
        Class code → quota, for every class with at least one pixel.
    """
    present = {int(c): int(n) for c, n in class_pixels.items() if c != 0 and n > 0}
    all_pixels = sum(present.values())
    return {
        code: int(np.clip(round(total * n / all_pixels), min_per_class, max_per_class))
        for code, n in sorted(present.items())
    }


def stratified_sample(
    labels: np.ndarray,
    eligible: np.ndarray,
    quotas: Mapping[int, int],
    rng: np.random.Generator,
    context: str,
) -> np.ndarray:
    """Draws each class's quota at random, without replacement, from its eligible pixels.

    A class with fewer eligible pixels than its quota gives all it has; a class with none gives
    nothing. Both are logged as warnings, never raised: a class can vanish from a year (cloud,
    change, the filter) and the rest of the training set is still worth having.

    Args:
        labels: Class code per pixel (any shape).
        eligible: Same shape, True where a pixel may be drawn.
        quotas: Class code → samples wanted.
        rng: Random generator.
        context: Names the draw in warnings (e.g. ``"demo 2021"``).

    Returns:
        Sorted flat indices (into ``labels.ravel()``) of the drawn pixels.
    """
    flat_labels = labels.ravel()
    flat_eligible = eligible.ravel()
    drawn = []
    for code, quota in sorted(quotas.items()):
        if quota <= 0:
            continue
        pool = np.flatnonzero(flat_eligible & (flat_labels == code))
        if len(pool) == 0:
            log.warning("%s: class %s has no eligible pixels; it gets no samples", context, class_name(code))
            continue
        if len(pool) < quota:
            log.warning(
                "%s: class %s has %d eligible pixels, fewer than its quota %d; taking all of them",
                context,
                class_name(code),
                len(pool),
                quota,
            )
        drawn.append(rng.choice(pool, size=min(quota, len(pool)), replace=False))
    return np.sort(np.concatenate(drawn)) if drawn else np.zeros(0, dtype=np.int64)


def block_strata(labels: np.ndarray, block_px: int, min_share: float = 0.05) -> np.ndarray:
    """The stratum of each block: the rarest class (in the whole grid) that covers part of the block.

    Rare classes are often clustered in space (snow on the peaks, a lake), so dealing blocks out at
    random can leave a class without a single test block. Stratifying the deal by the rarest class a
    block holds gives every class a share of each split.

    Args:
        labels: ``(rows, cols)`` class codes (0 = no data).
        block_px: Side of the blocks.
        min_share: A class counts for a block if it covers at least this share of it.

    Returns:
        ``(block_rows × block_cols,)`` class code per block, row-major (0: no labelled pixel).
    """
    rows, cols = labels.shape
    block_rows, block_cols = -(-rows // block_px), -(-cols // block_px)
    padded = np.zeros((block_rows * block_px, block_cols * block_px), dtype=labels.dtype)
    padded[:rows, :cols] = labels
    n_codes = int(labels.max()) + 1
    tiles = padded.reshape(block_rows, block_px, block_cols, block_px).transpose(0, 2, 1, 3)
    per_block = np.stack([(tiles == c).sum(axis=(2, 3)).ravel() for c in range(n_codes)], axis=1)
    per_block[:, 0] = 0
    rarity = np.bincount(labels.ravel(), minlength=n_codes).astype(float)
    rarity[0] = np.inf
    covers = per_block >= min_share * block_px * block_px
    strata = np.zeros(len(per_block), dtype=np.int64)
    for i, row in enumerate(covers):
        present = np.flatnonzero(row) if row.any() else np.flatnonzero(per_block[i])
        if len(present):
            strata[i] = present[np.argmin(rarity[present])]
    return strata


def deal_blocks(
    strata: np.ndarray, fractions: tuple[float, float, float], rng: np.random.Generator
) -> np.ndarray:
    """Deals blocks out to the splits, stratum by stratum, keeping the overall shares.

    Within a stratum of at least as many blocks as there are non-empty splits, every such split gets
    one block; the rest go, one by one, to the split furthest below its share of all blocks dealt so
    far (so small strata do not skew the totals).

    Args:
        strata: Stratum of each block.
        fractions: Shares of train, validation, test.
        rng: Shuffles the blocks within each stratum.

    Returns:
        Split of each block (int8).
    """
    shares = np.asarray(fractions, dtype=float)
    used = shares > 0
    per_block = np.full(len(strata), SPLIT_TRAIN, dtype=np.int8)
    assigned = np.zeros(3)
    values, sizes = np.unique(strata, return_counts=True)
    for value in values[np.argsort(sizes, kind="stable")]:
        members = rng.permutation(np.flatnonzero(strata == value))
        counts = used.astype(float) if len(members) >= used.sum() else np.zeros(3)
        for _ in range(len(members) - int(counts.sum())):
            deficit = shares * (assigned.sum() + counts.sum() + 1) - assigned - counts
            deficit[~used] = -np.inf
            counts[int(np.argmax(deficit))] += 1
        per_block[members] = np.repeat(np.arange(3, dtype=np.int8), counts.astype(int))
        assigned += counts
    return per_block


def block_splits(
    shape: tuple[int, int],
    block_px: int,
    fractions: tuple[float, float, float],
    buffer_px: int,
    seed: int,
    labels: np.ndarray | None = None,
) -> np.ndarray:
    """Assigns whole square blocks of the grid to train, validation and test.

    Blocks are shuffled (seeded) and dealt out by the fractions (:func:`deal_blocks`), stratified by
    the rarest class each holds when ``labels`` are given (:func:`block_strata`). Pixels within
    ``buffer_px`` (in any direction, diagonals included) of a pixel of another split become
    :data:`SPLIT_NONE`, so pixels that touch never sit in different splits. The assignment depends
    only on the arguments, so every year of an AOI (one reference map) shares it.

    Args:
        shape: ``(rows, cols)`` of the grid.
        block_px: Side of the blocks.
        fractions: Shares of blocks for train, validation, test.
        buffer_px: Width of the no-man's-land between blocks of different splits.
        seed: Seeds the shuffle.
        labels: ``(rows, cols)`` class codes to stratify by (the reference map); None deals at random.

    Returns:
        ``(rows, cols)`` int8: :data:`SPLIT_TRAIN`, :data:`SPLIT_VALIDATION`, :data:`SPLIT_TEST` or
        :data:`SPLIT_NONE`.

    Raises:
        ConfigError: The grid has too few blocks to give every split with a non-zero share a block.
    """
    from scipy.ndimage import maximum_filter, minimum_filter

    rows, cols = shape
    block_rows, block_cols = -(-rows // block_px), -(-cols // block_px)
    n_blocks = block_rows * block_cols
    strata = np.zeros(n_blocks, dtype=np.int64) if labels is None else block_strata(labels, block_px)
    per_block = deal_blocks(strata, fractions, np.random.default_rng([seed, 0x5EED]))
    empty = [SPLIT_NAMES[s] for s in range(3) if fractions[s] > 0 and not (per_block == s).any()]
    if empty:
        raise ConfigError(
            f"trainset.split_block_px: {block_px}-pixel blocks cut the {rows}x{cols} grid into only "
            f"{n_blocks} block(s), leaving {', '.join(empty)} without a block; use smaller blocks"
        )
    grid = np.repeat(np.repeat(per_block.reshape(block_rows, block_cols), block_px, 0), block_px, 1)
    splits = np.ascontiguousarray(grid[:rows, :cols])
    if buffer_px > 0:
        size = 2 * buffer_px + 1
        mixed = maximum_filter(splits, size=size, mode="nearest") != minimum_filter(
            splits, size=size, mode="nearest"
        )
        splits[mixed] = SPLIT_NONE
    return splits
