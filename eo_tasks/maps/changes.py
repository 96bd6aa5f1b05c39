"""Label-sequence analysis: which pixels changed for good, and when.

The sliding-window classifier gives every pixel a sequence of labels, one per window position,
across years. Most disagreements between that sequence and the initial annual map are noise or
seasons (snow, crops, a flood), not land-cover change. Following Sedona et al. (IEEE GRSL 2023):

1. a 1-D median filter of length ``p`` along the sequence removes isolated misclassifications;
2. the binary sequence "differs from the initial map" is convolved with a step function (the
   mean of the next ``h`` values minus the mean of the previous ``h``, ``h`` = half a window);
   its maximum is where the change happened; the window there ends half a window after the ground
   changed (see ``eo_tasks.maps.infer``), so the change is dated to that window's last composite minus
   half a window;
3. a change is **permanent** if it persists for at least half a window, the sequence returns to
   its initial label at most once (more often is seasonal), it is not at the very start of the
   series, and the pixel is still changed at the end of the series;
4. connected change regions smaller than ``ath`` pixels are dropped.

Everything is vectorized over pixels: sequences are arrays shaped ``(steps, pixels)``; callers
stream the AOI through it in chunks of pixels (``eo_tasks.maps.annual_maps``), and the region-size
filter labels block by block and stitches regions across block edges (:func:`drop_small_regions`),
so memory depends on the block, not the AOI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eo_tasks.core.aoi_sections import ChangeParams

NO_CHANGE = -1
# Platform rules, at both ends of the series. A change that begins within half a window of the end
# cannot persist for half a window before the series ends, so the published rules miss every change
# of the map year's second half until next year's run, and the last year's for good: such a run
# counts when it lasts to the end for at least MIN_RUN windows. At the start, the published rules
# want the initial label for p windows (the median filter's reach); a change late in the previous
# year (a quarry opened in October) flips the first few windows and was dropped: MIN_RUN windows of
# the initial label suffice. The region's spectra must then confirm the change (``maps.dating``).
MIN_RUN = 3


def median_filter(labels: np.ndarray, length: int) -> np.ndarray:
    """Median of each label and its neighbours along axis 0 (edges repeat the end values)."""
    if length == 1:
        return labels.copy()
    pad = length // 2
    padded = np.concatenate([np.repeat(labels[:1], pad, axis=0), labels, np.repeat(labels[-1:], pad, axis=0)])
    if length % 2:  # odd: the middle of the sorted neighbours, by a sorting network on whole arrays
        steps = labels.shape[0]
        rows = [padded[k : k + steps].copy() for k in range(length)]
        for round_ in range(length):  # odd-even transposition sort: sorted after ``length`` rounds
            for i in range(round_ % 2, length - 1, 2):
                low = np.minimum(rows[i], rows[i + 1])
                np.maximum(rows[i], rows[i + 1], out=rows[i + 1])
                rows[i] = low
        return rows[pad]
    windows = np.lib.stride_tricks.sliding_window_view(padded, length, axis=0)
    return np.median(windows, axis=-1).astype(labels.dtype)


def step_response(differs: np.ndarray, half: int) -> np.ndarray:
    """Mean of the next ``half`` values minus the mean of the previous ``half``, at every position.

    ``differs`` is padded with its first/last values, so a sequence that is changed from the very
    start has no step there.
    """
    t = differs.shape[0]
    x = differs.astype(np.int32)
    padded = np.concatenate([np.repeat(x[:1], half, axis=0), x, np.repeat(x[-1:], half, axis=0)])
    cumsum = np.zeros((padded.shape[0] + 1, *padded.shape[1:]), np.int32)
    for k in range(padded.shape[0]):  # row by row: far faster than np.cumsum along axis 0
        np.add(cumsum[k], padded[k], out=cumsum[k + 1])
    i = np.arange(t) + half  # position i of x sits at i + half in padded
    after = cumsum[i + half] - cumsum[i]
    before = cumsum[i] - cumsum[i - half]
    return (after - before).astype(np.float32) / np.float32(half)


@dataclass(frozen=True)
class ChangeResult:
    """Per-pixel outcome of the analysis (arrays shaped like the pixel axis).

    Attributes:
        changed: True for a permanent change (before the region-size filter).
        step: Position in the sequence where the change happened (NO_CHANGE otherwise).
        date_composite: The estimated date as an index into the composite series the windows slid
            over (position ``k`` is the window ending at composite ``window - 1 + k``, so this is
            ``step + window - 1 - window // 2``; NO_CHANGE otherwise).
        from_class: The initial label.
        to_class: The label after the change (the most frequent filtered label after ``step``).
    """

    changed: np.ndarray
    step: np.ndarray
    date_composite: np.ndarray
    from_class: np.ndarray
    to_class: np.ndarray


def analyse_sequences(labels: np.ndarray, initial: np.ndarray, params: ChangeParams) -> ChangeResult:
    """Finds the permanent changes in label sequences.

    Args:
        labels: ``(steps, pixels)`` class codes, one per window position.
        initial: ``(pixels,)`` the initial annual map.
        params: Window, median length and region size.

    Returns:
        The per-pixel result (the region-size filter is :func:`drop_small_regions`).
    """
    steps, n = labels.shape
    filtered = median_filter(labels, params.median)
    differs = filtered != initial[None, :]
    response = step_response(differs, params.half)
    step = np.argmax(response, axis=0)
    strength = response[step, np.arange(n)]

    after = np.arange(steps)[:, None] >= step[None, :]
    run_length = _run_length_from(differs, step)
    returns = np.sum(differs[:-1] & ~differs[1:], axis=0)  # changed -> initial transitions
    persists = run_length >= params.half  # (1) persists for half a window
    if params.rules == "platform":  # ... or, begun late in the series, until its end (MIN_RUN)
        persists |= (step + run_length == steps) & (run_length >= MIN_RUN)
    permanent = (
        (strength > 0)
        & persists
        & (returns <= 1)  # (2) returns to the initial label at most once
        & (step >= (MIN_RUN if params.rules == "platform" else params.median))  # (3) not at the very start
        & differs[-1]  # still changed at the end
    )
    to_class = _mode_where(filtered, after & differs)
    return ChangeResult(
        changed=permanent,
        step=np.where(permanent, step, NO_CHANGE),
        date_composite=np.where(permanent, step + params.window - 1 - params.window // 2, NO_CHANGE),
        from_class=initial.copy(),
        to_class=np.where(permanent, to_class, initial),
    )


def _run_length_from(differs: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Length of the run of True values starting at ``start`` in each column."""
    steps = differs.shape[0]
    index = np.arange(steps)[:, None]
    breaks = ~differs & (index >= start[None, :])
    first_break = np.where(breaks.any(axis=0), np.argmax(breaks, axis=0), steps)
    return first_break - start


def _mode_where(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Most frequent value of each column among the rows where ``mask`` is True (0 where none)."""
    codes = np.where(mask, values, 0)
    present = np.unique(codes)
    present = present[present != 0]  # only the codes that occur: 9 classes, whatever their values
    if present.size == 0:
        return np.zeros(codes.shape[1], dtype=np.int64)
    counts = np.stack([np.sum(codes == code, axis=0) for code in present])
    return np.where(counts.max(axis=0) > 0, present[counts.argmax(axis=0)], 0).astype(np.int64)


def drop_small_regions(changed: np.ndarray, ath: int, block_px: int = 1024) -> np.ndarray:
    """Keeps the connected (8-neighbour) change regions of at least ``ath`` pixels.

    Regions are labelled block by block; labels that touch across a block edge are joined (a graph
    of the labels on the two sides of every edge), their sizes summed, and a second pass over the
    blocks keeps the pixels of large regions. The result equals labelling the whole AOI at once,
    with working memory of one block plus the edge lines and one size per region.

    Args:
        changed: ``(rows, cols)`` boolean change mask.
        ath: Smallest region kept.
        block_px: Side of the blocks labelled at a time.

    Returns:
        The filtered mask.
    """
    from scipy import ndimage, sparse
    from scipy.sparse.csgraph import connected_components

    rows, cols = changed.shape
    tiles = [(r, c) for r in range(0, rows, block_px) for c in range(0, cols, block_px)]
    edge_rows = {r: np.zeros(cols, np.int64) for r0 in range(block_px, rows, block_px) for r in (r0 - 1, r0)}
    edge_cols = {c: np.zeros(rows, np.int64) for c0 in range(block_px, cols, block_px) for c in (c0 - 1, c0)}
    sizes, offset = [np.zeros(1, np.int64)], 0  # global label 0: background
    for r0, c0 in tiles:
        local, n = ndimage.label(changed[r0 : r0 + block_px, c0 : c0 + block_px], structure=_EIGHT)
        sizes.append(np.bincount(local.ravel(), minlength=n + 1)[1:])
        glob = np.where(local > 0, local.astype(np.int64) + offset, 0)
        for r in range(r0, r0 + local.shape[0]):
            if r in edge_rows:
                edge_rows[r][c0 : c0 + local.shape[1]] = glob[r - r0]
        for c in range(c0, c0 + local.shape[1]):
            if c in edge_cols:
                edge_cols[c][r0 : r0 + local.shape[0]] = glob[:, c - c0]
        offset += n
    pairs = [np.zeros((2, 0), np.int64)]
    for lines in (edge_rows, edge_cols):
        pairs += [_touching(lines[k - 1], lines[k]) for k in lines if k - 1 in lines and k % block_px == 0]
    src, dst = np.concatenate(pairs, axis=1)
    graph = sparse.coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(offset + 1, offset + 1))
    _, root = connected_components(graph, directed=False)
    keep = np.bincount(root, weights=np.concatenate(sizes))[root] >= ath
    keep[0] = False
    out, offset = np.zeros(changed.shape, dtype=bool), 0
    for r0, c0 in tiles:
        window = (slice(r0, r0 + block_px), slice(c0, c0 + block_px))
        local, n = ndimage.label(changed[window], structure=_EIGHT)
        out[window] = np.concatenate([[False], keep[offset + 1 : offset + n + 1]])[local]
        offset += n
    return out


_EIGHT = np.ones((3, 3), dtype=bool)


def _touching(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(2, k)`` pairs of non-zero labels 8-adjacent across an edge (``a``, ``b``: the lines either side)."""
    out = []
    for shift in (-1, 0, 1):
        x = a[max(0, -shift) : a.size - max(0, shift)]
        y = b[max(0, shift) : b.size - max(0, -shift)]
        both = (x > 0) & (y > 0)
        out.append(np.stack([x[both], y[both]]))
    return np.concatenate(out, axis=1)


def embed_changes(
    initial: np.ndarray, result: ChangeResult, kept: np.ndarray, last_composite: int
) -> np.ndarray:
    """The map at composite ``last_composite``: the initial map with the kept changes dated up to it.

    A change dated late in year Y therefore appears in the map of year Y, and in every later map.
    """
    applies = kept & (result.date_composite >= 0) & (result.date_composite <= last_composite)
    return np.where(applies, result.to_class, initial)
