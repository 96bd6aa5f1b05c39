"""AOI files: valid ones load, invalid ones fail before anything is written, naming file and field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from eo_tasks.core.aoi import AOIConfig, load_all
from eo_tasks.core.aoi_sections import SourceSpec
from eo_tasks.core.errors import ConfigError
from tests.conftest import REPO

REPO_AOIS = REPO / "aois"

VALID: dict[str, Any] = {
    "name": "trentino",
    "grid": {"epsg": 32632, "bounds": [600000, 5090000, 610000, 5100000], "resolution": 10},
    "first_year": 2019,
    "sources": [
        {"provider": "local", "path": "/archive/catalog.json"},
        {"provider": "earth-search", "collections": ["sentinel-2-l2a"]},
    ],
    "reference": {"path": "/ref/worldcover.tif", "legend": "worldcover"},
}


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(VALID)
    *parents, leaf = path.split(".")
    node: Any = data
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    key: Any = int(leaf) if leaf.isdigit() else leaf
    if value is None:
        del node[key]
    else:
        node[key] = value
    return data


def _write(tmp_path: Path, data: dict[str, Any], name: str = "aoi.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_valid_file_loads_with_defaults(tmp_path: Path) -> None:
    config = AOIConfig.load(_write(tmp_path, VALID))
    assert config.name == "trentino"
    assert config.grid.shape == (1000, 1000)
    assert config.grid.geotransform == (600000.0, 10.0, 0.0, 5100000.0, 0.0, -10.0)
    assert config.cloud_cover_max == 40.0
    assert config.sources[1].collections == ("sentinel-2-l2a",)
    assert config.sources[0].collections == ("sentinel-2-l2a", "landsat-c2-l2")
    assert config.model.backend == "tensorflow" and config.hpc.conn_id == "eo_hpc"
    lon_min, lat_min, lon_max, lat_max = config.grid.footprint_wgs84()
    assert 10.2 < lon_min < lon_max < 10.5 and 45.9 < lat_min < lat_max < 46.1


def test_paths_expand_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EO_DATA_DIR", "/srv/eo")
    config = AOIConfig.from_dict(_with("sources.0.path", "${EO_DATA_DIR}/a/catalog.json"))
    assert config.sources[0].path == "/srv/eo/a/catalog.json"
    monkeypatch.delenv("EO_DATA_DIR")
    with pytest.raises(ConfigError, match="undefined environment variable"):
        AOIConfig.from_dict(_with("sources.0.path", "${EO_DATA_DIR}/a/catalog.json"))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("grid.epsg", 999999, r"grid\.epsg: EPSG:999999 is not a known"),
        ("grid.epsg", "utm", r"grid\.epsg: not an integer"),
        ("grid.bounds", [610000, 5090000, 600000, 5100000], r"grid\.bounds: min must be below max"),
        ("grid.bounds", [600000, 5100000, 610000, 5090000], r"grid\.bounds: min must be below max"),
        ("grid.bounds", [600005, 5090000, 610000, 5100000], r"grid\.bounds: 600005.0 is not a multiple"),
        ("sources.0.provider", "scihub", r"sources\[0\]\.provider: unknown provider 'scihub'"),
        ("sources.1.collections", ["sentinel-1-grd"], r"sources\[1\]\.collections: unknown collection"),
        ("reference.legend", None, r"reference\.legend: missing"),
        ("reference.legend", "glc2000", r"reference\.legend: legend 'glc2000' not found"),
        ("cloud_cover_max", 140, r"cloud_cover_max: 140.0 is not a percentage"),
        ("name", "Trentino Alto", r"name: 'Trentino Alto' must be lower-case"),
        ("first_year", None, r"AOI\.first_year: missing"),
        ("hpc", {"time_limit": "two hours"}, r"hpc\.time_limit: expected"),
        ("model", {"backend": "jax"}, r"model\.backend: expected tensorflow or pytorch"),
        ("maps", {"median": 4}, r"maps\.median: must be odd"),
        ("maps", {"window": 1}, r"maps\.window: must be at least 2"),
        ("maps", {"array_tasks": 0}, r"maps: .*array_tasks 1\.\.1000"),
        ("maps", {"dating_workers": 0}, r"maps\.dating_workers: 1\.\.256 expected"),
        ("maps", {"lag": 3}, r"maps: unknown field"),
        ("colour", "red", r"unknown field\(s\) \['colour'\]"),
    ],
)
def test_invalid_files_fail_naming_file_and_field(
    tmp_path: Path, path: str, value: Any, message: str
) -> None:
    data = _with(path, value)
    aoi_file = _write(tmp_path, data)
    with pytest.raises(ConfigError, match=message) as info:
        AOIConfig.load(aoi_file)
    assert str(info.value).startswith(str(aoi_file))


def test_sentinelsat_cannot_serve_landsat(tmp_path: Path) -> None:
    data = _with("sources.1", {"provider": "sentinelsat", "url": "https://hub/dhus/"})
    data["sources"][1]["collections"] = ["landsat-c2-l2"]
    with pytest.raises(ConfigError, match="Sentinel-2 only"):
        AOIConfig.from_dict(data)


def test_unreadable_yaml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot read AOI file"):
        AOIConfig.load(bad)


def test_load_all_keeps_valid_files_and_reports_bad_ones(tmp_path: Path) -> None:
    _write(tmp_path, VALID, "a.yaml")
    _write(tmp_path, _with("grid.epsg", 999999), "b.yaml")
    _write(tmp_path, {**VALID, "name": "other"}, "c.yaml")
    _write(tmp_path, VALID, "d.yaml")  # the same name as a.yaml
    valid, errors = load_all(tmp_path)
    assert [a.name for a in valid] == ["other"]
    messages = sorted(str(e) for e in errors)
    assert len(messages) == 2
    assert any("b.yaml" in m and "grid.epsg" in m for m in messages)
    assert any("'trentino' is used by more than one file" in m for m in messages)


def test_the_shipped_aoi_files_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EO_DATA_DIR", "/data")
    valid, errors = load_all(REPO_AOIS)
    assert errors == []
    assert "demo" in [a.name for a in valid]


def test_sources_of_one_provider_have_their_own_scene_id_scope() -> None:
    first = SourceSpec(provider="local", collections=("sentinel-2-l2a",), path="/archives/a/catalog.json")
    second = SourceSpec(provider="local", collections=("sentinel-2-l2a",), path="/archives/b/catalog.json")
    assert first.key != second.key and first.key.startswith("local-")
    assert first.key == SourceSpec(provider="local", collections=(), path="/archives/a/catalog.json").key
