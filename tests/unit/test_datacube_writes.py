"""The cube writer stores the workers' pre-compressed chunks: the file reads back as the blocks computed."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from eo_tasks.core.grid import blocks
from eo_tasks.preprocess.datacube import build_block, build_cube, chunk_shape
from tests.unit.test_datacube import _scenes, _spec, archive  # noqa: F401  (the module's fixture)


@pytest.mark.parametrize("block_size", [32, 20])
def test_chunks_written_as_bytes_read_back_as_the_computed_blocks(
    archive: Path,  # noqa: F811
    tmp_path: Path,
    block_size: int,
) -> None:
    from dataclasses import replace

    spec = replace(_spec(archive), block_size=block_size)  # 48 x 48 px: edge blocks and chunks are partial
    scenes = [s for s in _scenes(archive) if s.datetime.year == spec.year]
    build_cube(scenes, spec, tmp_path / "c.h5")
    with h5py.File(tmp_path / "c.h5") as f:
        refl, valid = f["reflectance"], f["valid"]
        assert (
            refl.chunks[1:3] == chunk_shape(block_size, 48, 48)
            and refl.shuffle
            and refl.compression == "gzip"
        )
        for block in blocks(spec.grid, block_size):
            expected = build_block(scenes, spec, block)
            window = (
                slice(None),
                slice(block.row0, block.row0 + block.rows),
                slice(block.col0, block.col0 + block.cols),
            )
            np.testing.assert_array_equal(refl[window], expected.reflectance)
            np.testing.assert_array_equal(valid[window], expected.observed)
