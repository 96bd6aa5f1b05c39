"""Training sets: dominant-cluster filter, quotas, stratified sampling, blocked splits, reference maps,
the training-set file, and the annual + multi-year stages on a small synthetic cube."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest
from osgeo import gdal, osr

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.classes import CLASS_BY_NAME, CLASSES
from eo_tasks.core.cube import FILL, SCALE, Cube, to_int16
from eo_tasks.core.errors import ConfigError
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.trainset_format import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALIDATION
from eo_tasks.preprocess.scene_prep import CUBE_BANDS
from eo_tasks.trainset import (
    EmptyTrainingSetError,
    Samples,
    TrainingPaths,
    TrainingSetMetadata,
    TrainsetConfig,
    block_splits,
    build_annual,
    build_multiyear,
    class_quotas,
    cluster_filter,
    fit_dominant_cluster,
    prepare_reference,
    read_training_set,
    reference_on_grid,
    stratified_sample,
    unchanged_pixels,
    write_training_set,
)
from eo_tasks.trainset.pipeline import FILTER_KEPT, FILTER_NOT_CANDIDATE, FILTER_REJECTED
from eo_tasks.trainset.sampling import SPLIT_NONE

TREE, GRASS, WATER, BARE = (CLASS_BY_NAME[n].code for n in ("tree_cover", "grassland", "water", "bare"))


# --- dominant cluster ------------------------------------------------------------------------------
def test_dominant_cluster_keeps_the_majority_and_rejects_a_known_minority() -> None:
    rng = np.random.default_rng(0)
    majority = rng.normal(0.6, 0.02, size=(400, 12))
    minority = rng.normal(-0.3, 0.02, size=(60, 12))  # e.g. water mislabelled as forest
    features = np.vstack([majority, minority]).astype(np.float32)

    clusters = fit_dominant_cluster(features, k=2, seed=0)

    keeps = clusters.keeps(features)
    assert keeps[:400].all() and not keeps[400:].any()
    assert sorted(clusters.sizes) == [60, 400]


def test_dominant_cluster_with_more_clusters_than_modes_still_rejects_the_minority() -> None:
    rng = np.random.default_rng(1)
    features = np.vstack([rng.normal(0.5, 0.05, size=(500, 8)), rng.normal(-0.5, 0.01, size=(40, 8))]).astype(
        np.float32
    )
    keeps = fit_dominant_cluster(features, k=3, seed=0).keeps(features)
    assert not keeps[500:].any()
    assert keeps[:500].mean() > 0.3  # the majority mode is split in two; its larger half is kept


def test_keep_share_keeps_a_genuine_sub_type_and_still_drops_the_minority() -> None:
    rng = np.random.default_rng(2)
    evergreen = rng.normal(0.6, 0.02, size=(500, 6))
    deciduous = rng.normal(0.2, 0.02, size=(300, 6))  # a second, genuine mode of the class
    mislabel = rng.normal(-0.5, 0.02, size=(50, 6))
    features = np.vstack([evergreen, deciduous, mislabel]).astype(np.float32)

    only_dominant = fit_dominant_cluster(features, k=3, seed=0).keeps(features)
    with_sub_types = fit_dominant_cluster(features, k=3, seed=0, keep_share=0.2).keeps(features)

    assert only_dominant[:500].all() and not only_dominant[500:].any()
    assert with_sub_types[:800].all() and not with_sub_types[800:].any()


# --- quotas and stratified sampling ------------------------------------------------------------------
def test_quotas_follow_the_reference_proportions() -> None:
    quotas = class_quotas(
        {0: 999, 1: 6000, 2: 3000, 3: 1000}, total=1000, min_per_class=0, max_per_class=10_000
    )
    assert quotas == {1: 600, 2: 300, 3: 100}  # no data (0) is not a class


def test_quotas_respect_the_min_and_max_bounds() -> None:
    quotas = class_quotas({1: 9000, 2: 900, 3: 100}, total=1000, min_per_class=50, max_per_class=500)
    assert quotas == {1: 500, 2: 90, 3: 50}


def test_stratified_sample_draws_the_quotas_from_eligible_pixels_only() -> None:
    rng = np.random.default_rng(2)
    labels = rng.choice([1, 2, 3], size=(100, 100), p=[0.6, 0.3, 0.1]).astype(np.uint8)
    eligible = rng.random((100, 100)) < 0.8
    quotas = class_quotas(
        {c: int((labels == c).sum()) for c in (1, 2, 3)}, total=2000, min_per_class=0, max_per_class=10_000
    )
    drawn = stratified_sample(labels, eligible, quotas, rng, "test")
    assert len(np.unique(drawn)) == len(drawn)
    assert eligible.ravel()[drawn].all()
    counts = {c: int((labels.ravel()[drawn] == c).sum()) for c in (1, 2, 3)}
    assert counts == quotas
    shares = np.array([counts[c] for c in (1, 2, 3)]) / len(drawn)
    np.testing.assert_allclose(shares, [0.6, 0.3, 0.1], atol=0.02)


def test_a_class_with_too_few_or_no_eligible_pixels_warns_and_gives_what_it_has(
    caplog: pytest.LogCaptureFixture,
) -> None:
    labels = np.array([1] * 50 + [2] * 3 + [3] * 10, dtype=np.uint8)
    eligible = labels != 3  # class 3 is present but never eligible (e.g. unobserved this year)
    with caplog.at_level(logging.WARNING):
        drawn = stratified_sample(
            labels, eligible, {1: 20, 2: 10, 3: 5}, np.random.default_rng(0), "demo 2021"
        )
    assert np.bincount(labels[drawn], minlength=4).tolist() == [0, 20, 3, 0]
    messages = caplog.text
    assert "demo 2021: class artificial" not in messages
    assert "class cropland has 3 eligible pixels, fewer than its quota 10" in messages
    assert "class grassland has no eligible pixels" in messages


# --- blocked splits ---------------------------------------------------------------------------------
def _touching_pairs(splits: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every pair of 8-connected pixels, as two aligned arrays of their splits."""
    rows, cols = splits.shape
    pairs = []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        a = splits[: rows - dr, max(0, -dc) : cols - max(0, dc)]
        b = splits[dr:, max(0, dc) : cols - max(0, -dc)]
        pairs.append((a, b))
    return pairs


@pytest.mark.parametrize("buffer_px", [0, 1, 2])
def test_blocked_splits_never_share_a_block(buffer_px: int) -> None:
    splits = block_splits((100, 130), 16, (0.7, 0.15, 0.15), buffer_px, seed=3)
    for r in range(0, 100, 16):
        for c in range(0, 130, 16):
            members = set(np.unique(splits[r : r + 16, c : c + 16]).tolist()) - {SPLIT_NONE}
            assert len(members) <= 1, (r, c, members)  # a 2-pixel edge block may be all buffer
    assert {SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST} <= set(np.unique(splits).tolist())


def test_buffered_splits_are_spatially_disjoint() -> None:
    splits = block_splits((96, 96), 16, (0.6, 0.2, 0.2), buffer_px=1, seed=4)
    for a, b in _touching_pairs(splits):
        assert a.shape == b.shape
        both = (a != SPLIT_NONE) & (b != SPLIT_NONE)
        assert (a[both] == b[both]).all(), "two touching pixels sit in different splits"
    assert (splits == SPLIT_NONE).mean() < 0.25


def test_split_shares_and_determinism() -> None:
    first = block_splits((320, 320), 32, (0.7, 0.15, 0.15), 0, seed=5)
    assert np.array_equal(first, block_splits((320, 320), 32, (0.7, 0.15, 0.15), 0, seed=5))
    per_block = first[::32, ::32]
    assert np.bincount(per_block.ravel(), minlength=3).tolist() == [70, 15, 15]
    assert not np.array_equal(first, block_splits((320, 320), 32, (0.7, 0.15, 0.15), 0, seed=6))


def test_stratified_splits_give_a_clustered_rare_class_blocks_in_every_split() -> None:
    labels = np.full((256, 256), GRASS, dtype=np.uint8)
    labels[:64, :96] = WATER  # a lake in one corner: 6 of 64 blocks
    for seed in range(5):
        splits = block_splits((256, 256), 32, (0.7, 0.15, 0.15), 1, seed=seed, labels=labels)
        assert set(np.unique(splits[labels == WATER]).tolist()) >= {SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST}
        per_block = block_splits((256, 256), 32, (0.7, 0.15, 0.15), 0, seed=seed, labels=labels)[::32, ::32]
        counts = np.bincount(per_block.ravel(), minlength=3)
        assert np.abs(counts - np.array([0.7, 0.15, 0.15]) * 64).max() < 1  # the overall shares hold


def test_too_few_blocks_for_three_splits_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="split_block_px"):
        block_splits((32, 32), 32, (0.7, 0.15, 0.15), 0, seed=0)


# --- configuration ----------------------------------------------------------------------------------
def test_config_from_dict_names_the_field_at_fault() -> None:
    assert TrainsetConfig.from_dict({"clusters": 4, "split_fractions": [0.8, 0.1, 0.1]}).clusters == 4
    with pytest.raises(ConfigError, match="unknown field"):
        TrainsetConfig.from_dict({"k": 3})
    with pytest.raises(ConfigError, match=r"trainset\.min_per_class"):
        TrainsetConfig.from_dict({"min_per_class": 600, "max_per_class": 500})
    with pytest.raises(ConfigError, match=r"trainset\.split_fractions"):
        TrainsetConfig.from_dict({"split_fractions": [0.5, 0.1, 0.1]})


# --- reference map ----------------------------------------------------------------------------------
def _write_codes(
    path: Path, codes: np.ndarray, epsg: int, geotransform: tuple[float, ...], nodata: int
) -> None:
    ds = gdal.GetDriverByName("GTiff").Create(str(path), codes.shape[1], codes.shape[0], 1, gdal.GDT_Byte)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(epsg)
    ds.SetProjection(srs.ExportToWkt())
    ds.SetGeoTransform(geotransform)
    ds.GetRasterBand(1).SetNoDataValue(nodata)
    ds.GetRasterBand(1).WriteArray(codes)
    ds.FlushCache()


def test_reference_is_warped_with_nearest_and_mapped_to_platform_classes(tmp_path: Path) -> None:
    grid = GridSpec(epsg=32632, bounds=(600000.0, 5099400.0, 600600.0, 5100000.0), resolution=10.0)  # 60 x 60
    codes = np.full((20, 25), 10, dtype=np.uint8)  # 30 m pixels, tree cover ...
    codes[:, 10:] = 80  # ... and water east of x = 600300
    path = tmp_path / "worldcover.tif"
    _write_codes(path, codes, 32632, (600000.0, 30.0, 0, 5100000.0, 0, -30.0), nodata=0)

    classes = reference_on_grid(path, "worldcover", grid)

    assert classes.shape == (60, 60) and classes.dtype == np.uint8
    assert (classes[:, :30] == TREE).all() and (classes[:, 30:] == WATER).all()


def test_reference_pixels_outside_the_product_are_no_data(tmp_path: Path) -> None:
    grid = GridSpec(epsg=32632, bounds=(600000.0, 5099400.0, 600600.0, 5100000.0), resolution=10.0)
    path = tmp_path / "corine.tif"
    codes = np.full((30, 30), 311, dtype=np.uint16)
    ds = gdal.GetDriverByName("GTiff").Create(str(path), 30, 30, 1, gdal.GDT_UInt16)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32632)
    ds.SetProjection(srs.ExportToWkt())
    ds.SetGeoTransform((600000.0, 10.0, 0, 5100000.0, 0, -10.0))  # covers the north-west 30 x 30 only
    ds.GetRasterBand(1).WriteArray(codes)
    ds = None

    classes = reference_on_grid(path, "corine", grid)
    assert (classes[:30, :30] == TREE).all()
    assert (classes[30:, :] == 0).all() and (classes[:, 30:] == 0).all()


def test_a_legend_missing_a_code_of_the_map_fails_naming_the_file(tmp_path: Path) -> None:
    grid = GridSpec(epsg=32632, bounds=(600000.0, 5099700.0, 600300.0, 5100000.0), resolution=10.0)
    codes = np.full((30, 30), 10, dtype=np.uint8)
    codes[5, 5] = 33  # not a WorldCover code
    path = tmp_path / "odd_reference.tif"
    _write_codes(path, codes, 32632, (600000.0, 10.0, 0, 5100000.0, 0, -10.0), nodata=0)

    with pytest.raises(ConfigError) as err:
        reference_on_grid(path, "worldcover", grid)
    assert str(path) in str(err.value)
    assert "worldcover" in str(err.value) and "[33]" in str(err.value)


# --- a small synthetic year: cube, AOI, reference --------------------------------------------------
T, SIZE = 8, 48
SPECTRA = {  # blue, green, red, re1, re2, re3, nir, nir08, swir16, swir22
    TREE: [0.03, 0.05, 0.03, 0.08, 0.25, 0.32, 0.35, 0.36, 0.17, 0.08],
    GRASS: [0.05, 0.09, 0.07, 0.14, 0.30, 0.38, 0.42, 0.43, 0.28, 0.16],
    WATER: [0.06, 0.07, 0.04, 0.03, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01],
    BARE: [0.15, 0.20, 0.25, 0.27, 0.29, 0.30, 0.31, 0.31, 0.38, 0.33],
}


def _truth() -> np.ndarray:
    truth = np.full((SIZE, SIZE), GRASS, dtype=np.uint8)
    truth[:, :20] = TREE
    truth[30:, 30:] = WATER
    truth[:4, 44:] = BARE  # 16 pixels: too few to cluster
    return truth


def _write_cube(path: Path, truth: np.ndarray, year: int, unobserved: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(year)
    season = np.sin(np.linspace(0, np.pi, T))[:, None, None, None]
    base = np.stack([np.asarray(SPECTRA[int(c)], dtype=np.float32) for c in truth.ravel()]).reshape(
        *truth.shape, -1
    )
    vegetated = np.isin(truth, [TREE, GRASS])[None, :, :, None]
    nir = np.zeros(len(CUBE_BANDS), dtype=np.float32)
    nir[3:8] = 0.1
    reflectance = (
        base[None] + np.where(vegetated, season * nir, 0) + rng.normal(0, 0.005, (T, *truth.shape, 10))
    )
    valid = np.ones((T, *truth.shape), dtype=np.uint8)
    if unobserved is not None:
        valid[:, unobserved] = 0
    dates = [dt.date(year, 1, 1) + dt.timedelta(days=int(d)) for d in np.linspace(22, 342, T)]
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32632)
    with h5py.File(path, "w") as f:
        stored = f.create_dataset("reflectance", data=to_int16(reflectance), chunks=(T, 16, 16, 10))
        stored.attrs.update(scale_factor=SCALE, _FillValue=np.int16(FILL))
        f.create_dataset("valid", data=valid, chunks=(T, 16, 16))
        f.create_dataset("dates", data=[d.isoformat().encode() for d in dates])
        f.attrs.update(
            crs_wkt=srs.ExportToWkt(),
            epsg=32632,
            geotransform=(600000.0, 10.0, 0.0, 5100000.0, 0.0, -10.0),
            band_names=list(CUBE_BANDS),
            year=year,
            aoi="synthetic",
            scene_fingerprint=f"fp{year}",
            created_at="2024-01-01T00:00:00+00:00",
        )
    return path


@pytest.fixture
def synthetic(tmp_path: Path) -> tuple[AOIConfig, TrainingPaths, np.ndarray]:
    """An AOI whose reference carries a planted mislabel: a water patch labelled tree cover."""
    truth = _truth()
    reference = truth.copy()
    reference[36:42, 36:42] = TREE  # 36 pixels of water called forest
    worldcover = {TREE: 10, GRASS: 30, WATER: 80, BARE: 60}
    codes = np.vectorize(worldcover.get)(reference).astype(np.uint8)
    ref_path = tmp_path / "worldcover.tif"
    _write_codes(ref_path, codes, 32632, (600000.0, 10.0, 0, 5100000.0, 0, -10.0), nodata=0)
    aoi = AOIConfig.from_dict(
        {
            "name": "synthetic",
            "grid": {"epsg": 32632, "bounds": [600000, 5100000 - 10 * SIZE, 600000 + 10 * SIZE, 5100000]},
            "first_year": 2021,
            "sources": [{"provider": "local", "path": str(tmp_path / "catalog.json")}],
            "reference": {"path": str(ref_path), "legend": "worldcover"},
        }
    )
    return aoi, TrainingPaths(tmp_path / "training"), truth


SMALL = {
    "clusters": 2,
    "samples_per_year": 600,
    "min_per_class": 10,
    "max_per_class": 300,
    "split_block_px": 8,
    "forest_trees": 10,
    "block_px": 16,
    "min_cluster_pixels": 20,
}


def test_cluster_filter_rejects_the_planted_mislabel_and_warns_about_small_and_absent_classes(
    synthetic: tuple[AOIConfig, TrainingPaths, np.ndarray], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    aoi, paths, truth = synthetic
    prepare_reference(aoi, paths)
    reference = gdal.Open(str(paths.reference)).ReadAsArray()
    unobserved = truth == WATER  # water is never seen this year (e.g. always under cloud)
    unobserved[36:42, 36:42] = False  # ... except the mislabelled patch
    cube = Cube.open(_write_cube(tmp_path / "cube.h5", truth, 2021, unobserved=unobserved))

    with caplog.at_level(logging.WARNING):
        grid, stats = cluster_filter(cube, reference, TrainsetConfig.from_dict(SMALL), "synthetic 2021")

    mislabel = np.zeros_like(truth, dtype=bool)
    mislabel[36:42, 36:42] = True
    assert (grid[mislabel] == FILTER_REJECTED).all()
    assert (grid[(reference == TREE) & ~mislabel] == FILTER_KEPT).all()
    assert (grid[reference == BARE] == FILTER_KEPT).all()  # too small to cluster: kept whole
    assert (grid[reference == WATER] == FILTER_NOT_CANDIDATE).all()
    assert stats["tree_cover"]["rejected"] == 36 and stats["bare"]["clustered"] is False
    assert stats["water"]["candidates"] == 0
    assert "class bare has only 16 observed pixels, too few for 2 clusters" in caplog.text
    assert "class water is never observed often enough this year" in caplog.text


def test_annual_and_multiyear_stages_write_the_contract(
    synthetic: tuple[AOIConfig, TrainingPaths, np.ndarray], tmp_path: Path
) -> None:
    aoi, paths, truth = synthetic
    config = TrainsetConfig.from_dict(SMALL)
    prepare_reference(aoi, paths)
    cubes = {year: _write_cube(tmp_path / f"cube_{year}.h5", truth, year) for year in (2021, 2022)}

    reports = {year: build_annual(aoi, path, paths, config).report for year, path in cubes.items()}
    multi = build_multiyear(aoi, cubes, paths, config)

    for year, report in reports.items():
        assert report["forest"]["test"]["overall_accuracy"] > 0.9
        assert json.loads(paths.annual_report(year).read_text())["samples"] == report["samples"]
        rf_map = gdal.Open(str(paths.rf_map(year))).ReadAsArray()
        assert (rf_map[36:42, 36:42] == WATER).all()  # the forest learned past the mislabel
        assert paths.rf_quicklook(year).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    samples, attrs = read_training_set(paths.trainset)
    assert multi["samples"] == len(samples) and multi["years"] == [2021, 2022]
    assert samples.features.shape == (len(samples), T, 15) and samples.features.dtype == np.float32
    assert set(np.unique(samples.year).tolist()) == {2021, 2022}
    assert not ((samples.row >= 36) & (samples.row < 42) & (samples.col >= 36) & (samples.col < 42)).any()
    assert (samples.labels == truth[samples.row, samples.col]).all()  # only unchanged, agreeing pixels
    assert list(attrs["feature_names"])[-5:] == ["ndvi", "evi", "ndwi", "ndsi", "bsi"]
    assert json.loads(attrs["source_cubes"])["2022"]["scene_fingerprint"] == "fp2022"
    assert list(attrs["class_names"]) == [c.name for c in CLASSES]
    assert json.loads(paths.report.read_text())["annual"]["2021"]["year"] == 2021


def test_unchanged_pixels_need_every_year_to_agree() -> None:
    reference = np.array([[1, 2, 3, 0]], dtype=np.uint8)
    maps = {2021: np.array([[1, 2, 4, 0]]), 2022: np.array([[1, 5, 3, 0]])}
    assert unchanged_pixels(reference, maps).tolist() == [[True, False, False, False]]


# --- the training-set file --------------------------------------------------------------------------
def _samples(splits: list[int]) -> Samples:
    n = len(splits)
    features = np.arange(n * 2 * 3, dtype=np.float32).reshape(n, 2, 3)
    return Samples(
        features=features,
        labels=np.arange(n, dtype=np.uint8) % 3 + 1,
        year=np.full(n, 2021),
        row=np.arange(n),
        col=np.arange(n) * 2,
        split=np.asarray(splits, dtype=np.uint8),
    )


def _meta() -> TrainingSetMetadata:
    return TrainingSetMetadata(
        aoi="t",
        epsg=32632,
        geotransform=(0.0, 10.0, 0.0, 0.0, 0.0, -10.0),
        grid_shape=(10, 10),
        band_names=["a", "b", "c"],
        feature_names=["a", "b", "c"],
        dates={2021: [dt.date(2021, 3, 1), dt.date(2021, 9, 1)]},
        source_cubes={2021: {"path": "c.h5"}},
        reference="ref.tif",
        legend="worldcover",
        config={},
    )


def test_training_set_rows_are_ordered_by_split_and_normalized_on_train_only(tmp_path: Path) -> None:
    samples = _samples([2, 0, 1, 0, 2, 0])
    summary = write_training_set(tmp_path / "ts.h5", samples, _meta(), seed=0)
    assert summary["splits"] == {"train": 3, "validation": 1, "test": 2}

    everything, attrs = read_training_set(tmp_path / "ts.h5")
    assert everything.split.tolist() == [0, 0, 0, 1, 2, 2]
    # Each row still carries its own coordinates and label.
    assert (everything.col == everything.row * 2).all()
    assert (everything.labels == everything.row % 3 + 1).all()
    train = samples.features[samples.split == 0].reshape(-1, 3)
    np.testing.assert_allclose(attrs["norm_mean"], train.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(attrs["norm_std"], train.std(axis=0), rtol=1e-5)
    test, _ = read_training_set(tmp_path / "ts.h5", split=SPLIT_TEST)
    assert test.split.tolist() == [2, 2] and sorted(test.row.tolist()) == [0, 4]
    assert attrs["dates"] == [["2021-03-01", "2021-09-01"]]
    assert attrs["format_version"] == 1 and list(attrs["split_names"]) == ["train", "validation", "test"]
    assert not list(tmp_path.glob(".*tmp*"))


def test_a_training_set_without_training_samples_is_refused(tmp_path: Path) -> None:
    with pytest.raises(EmptyTrainingSetError, match="no training sample"):
        write_training_set(tmp_path / "ts.h5", _samples([1, 2]), _meta(), seed=0)
    assert not (tmp_path / "ts.h5").exists()
