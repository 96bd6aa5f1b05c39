"""The simulator's landscapes, change processes and look-alikes (the accuracy scenario suite's ground)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from eo_simulator import ScenarioConfig, simulate
from eo_simulator.events import CLASS_CODE_OF_SURFACE, PlantedEvent, change_rasters, landcover, plant_events
from eo_simulator.grid import Grid
from eo_simulator.landscape import Landscape, build_landscape
from eo_simulator.landscapes import LANDSCAPES
from eo_simulator.lookalikes import LOOKALIKES, lookalike_records, plant_lookalikes
from eo_simulator.processes import CHANGE_PROCESSES, REGISTRY, process_cycle, shrub_share
from eo_simulator.records import event_records
from eo_simulator.sensors import render_ground
from eo_simulator.spectra import S2_BAND_INDEX, Surface, ndvi, surface_fractions
from eo_tasks.core.classes import CLASS_BY_CODE, CLASS_BY_NAME
from eo_tasks.core.errors import ConfigError

SCENARIOS = Path(__file__).resolve().parents[2] / "benchmarks" / "accuracy" / "scenarios"
SIZE, MARGIN = 96, 8
YEARS = (2021, 2022)


def _landscape(kind: str, seed: int = 3, deciduous: bool = False, size: int = SIZE) -> Landscape:
    grid = Grid(32632, 600000.0, 5100000.0, 10.0, size, size).padded(MARGIN)
    return build_landscape(np.random.default_rng(seed), grid, MARGIN, YEARS, kind, deciduous_shrubs=deciduous)


def _shares(landscape: Landscape) -> dict[str, float]:
    classes = landcover(landscape, [], YEARS[0])
    codes, counts = np.unique(classes, return_counts=True)
    return {CLASS_BY_CODE[int(c)].name: n / classes.size for c, n in zip(codes, counts, strict=True)}


def _aoi_class(landscape: Landscape, pixels: np.ndarray, year: int, events: list[PlantedEvent]) -> set[str]:
    full = np.zeros(landscape.grid.shape, dtype=np.uint8)
    full[landscape.aoi] = landcover(landscape, events, year)
    return {CLASS_BY_CODE[int(c)].name for c in np.unique(full.flat[pixels])}


def test_the_default_scenario_is_unchanged(tmp_path: Path) -> None:
    """Recorded from the simulator before landscapes, processes and look-alikes were added."""
    old_defaults = {
        "seed": 1,
        "epsg": 32632,
        "origin": [600000.0, 5100000.0],
        "width": 256,
        "height": 256,
        "years": [2021, 2022],
        "s2_per_year": 24,
        "l8_per_year": 12,
        "landsat_epsg": 32633,
        "cloud_free_probability": 0.3,
        "overcast_probability": 0.15,
        "max_partial_cloud_cover": 0.6,
        "cirrus_probability": 0.2,
        "n_changes": 5,
        "noise_sigma": 0.006,
        "reference_error_fraction": 0.07,
        "wrs_path": 193,
        "wrs_row": 28,
    }
    assert ScenarioConfig().to_dict() == {
        **old_defaults,
        "landscape": "alpine",
        "change_processes": [],
        "lookalikes": [],
    }
    config = ScenarioConfig(width=96, height=96, s2_per_year=6, l8_per_year=3, n_changes=6)
    result = simulate(config, tmp_path / "sim")
    records = json.loads(result.changes.read_text())
    got = [(r["id"], r["process"], r["n_pixels"], r["date"]) for r in records]
    assert got[:7] == [
        ("change-01", "clearcut", 120, "2022-08-12"),
        ("change-02", "construction", 137, "2021-11-17"),
        ("change-03", "new_water", 150, "2021-04-04"),
        ("change-04", "landslide", 122, "2021-11-25"),
        ("change-05", "clearcut", 144, "2022-05-30"),
        ("change-06", "clearcut", 169, "2021-11-04"),
        ("flood-01", "flood", 183, "2021-05-05"),
    ]
    assert [(r["id"], r["n_pixels"]) for r in records[7:]] == [
        ("snow-2020-shrub", 435),
        ("snow-2020-alpine_grass", 1038),
        ("snow-2020-rock", 739),
        ("snow-2021-shrub", 435),
        ("snow-2021-alpine_grass", 1038),
        ("snow-2021-rock", 739),
        ("snow-2022-shrub", 435),
        ("snow-2022-alpine_grass", 1038),
        ("snow-2022-rock", 739),
        ("rotation-2021", 741),
        ("rotation-2022", 906),
    ]


def test_every_landscape_has_its_class_mix() -> None:
    shares = {kind: _shares(_landscape(kind)) for kind in LANDSCAPES}
    assert set(LANDSCAPES) == {"alpine", "lowland", "forest", "mediterranean", "wetland"}
    assert shares["alpine"].get("snow_ice", 0) > 0.01 and shares["alpine"].get("bare", 0) > 0.05
    lowland = shares["lowland"]
    assert lowland.get("cropland", 0) + lowland.get("grassland", 0) > 0.6
    assert "snow_ice" not in lowland and lowland.get("bare", 0) < 0.05
    assert shares["forest"]["tree_cover"] > 0.5
    assert shares["mediterranean"].get("shrubland", 0) > 0.1 and "snow_ice" not in shares["mediterranean"]
    assert shares["wetland"].get("wetland", 0) + shares["wetland"].get("water", 0) > 0.3
    for kind in ("lowland", "forest", "mediterranean", "wetland"):
        assert "snow_ice" not in shares[kind], kind


def test_the_dry_landscape_never_snows_and_its_grass_is_green_in_winter_brown_in_summer() -> None:
    landscape = _landscape("mediterranean")
    grass = landscape.surface == Surface.DRY_GRASS
    for month in range(1, 13):
        ground = render_ground(landscape, [], date(2021, month, 15))
        assert not ground.snow.any(), month
    winter = ndvi(render_ground(landscape, [], date(2021, 2, 1)).reflectance)[grass].mean()
    summer = ndvi(render_ground(landscape, [], date(2021, 8, 1)).reflectance)[grass].mean()
    assert winter > summer + 0.2
    assert not [r for r in event_records(landscape, [], YEARS) if r["process"] == "snow"]
    assert [r for r in event_records(_landscape("alpine"), [], YEARS) if r["process"] == "snow"]


LANDSCAPE_OF = {"glacier_retreat": "alpine", "fire": "mediterranean", "reservoir": "lowland"}


@pytest.mark.parametrize("name", CHANGE_PROCESSES)
def test_each_process_changes_the_truth_class_on_its_date_and_not_before(name: str) -> None:
    landscape = _landscape(LANDSCAPE_OF.get(name, "alpine"))
    events = plant_events(
        np.random.default_rng(7), landscape, YEARS, 1, process_cycle((name,)), min_pixels=150, flood=False
    )
    assert len(events) == 1 and events[0].process.name == name
    event = events[0]
    assert event.pixels.size >= 150
    assert event.start.year == YEARS[-1]
    if name == "glacier_retreat":
        assert 7 <= event.start.month <= 9
    assert _aoi_class(landscape, event.pixels, YEARS[0], events) == {event.process.from_class}
    assert _aoi_class(landscape, event.pixels, YEARS[1], events) == {event.process.to_class}
    _, days = change_rasters(landscape, events)
    assert set(np.unique(days[days > 0])) == {(event.start - date(1970, 1, 1)).days}


def _mean_band(landscape: Landscape, events: list[PlantedEvent], day: date, band: str) -> float:
    event = events[0]
    reflectance = render_ground(landscape, events, day).reflectance[S2_BAND_INDEX[band]]
    return float(reflectance.flat[event.pixels].mean())


@pytest.mark.parametrize(
    ("name", "kind", "check"),
    [
        ("fire", "forest", "char"),
        ("quarry", "alpine", "bright"),
        ("reservoir", "lowland", "water"),
        ("glacier_retreat", "alpine", "melt"),
        ("windthrow", "forest", "dead_wood"),
    ],
)
def test_each_process_looks_like_itself(name: str, kind: str, check: str) -> None:
    landscape = _landscape(kind)
    events = plant_events(
        np.random.default_rng(7), landscape, YEARS, 1, process_cycle((name,)), min_pixels=150, flood=False
    )
    start = events[0].start
    before, soon, later = start - timedelta(days=5), start + timedelta(days=10), start + timedelta(days=60)
    ground_later = render_ground(landscape, events, later)
    if check == "char":  # dark, NIR below SWIR (negative NBR) right after the fire
        band = {b: _mean_band(landscape, events, soon, b) for b in ("nir", "swir22")}
        assert band["nir"] < band["swir22"]
        nir_before = _mean_band(landscape, events, before, "nir")
        assert nir_before > 2 * _mean_band(landscape, events, before, "swir22")
    elif check == "bright":
        red_before = _mean_band(landscape, events, before, "red")
        assert _mean_band(landscape, events, later, "red") > red_before + 0.05
    elif check == "water":
        assert not render_ground(landscape, events, before).water.flat[events[0].pixels].any()
        assert ground_later.water.flat[events[0].pixels].all()
    elif check == "melt":
        assert render_ground(landscape, events, before).snow.flat[events[0].pixels].all()
        assert not ground_later.snow.flat[events[0].pixels].any()
    else:
        summer = start.replace(month=7, day=15) if start.month < 7 else start + timedelta(days=3)
        green = ndvi(render_ground(landscape, [], summer).reflectance).flat[events[0].pixels].mean()
        felled = ndvi(render_ground(landscape, events, summer).reflectance).flat[events[0].pixels].mean()
        assert felled < green - 0.2


def test_shrub_encroachment_is_gradual_and_dated_at_half_cover() -> None:
    (grass_variant, *_) = [p for p in REGISTRY["shrub_encroachment"] if p.from_surfaces == (Surface.MEADOW,)]
    assert shrub_share(-1) < 0.5 <= shrub_share(0) and shrub_share(-120) == 0 and shrub_share(120) == 1
    doy = 200.0
    half = 0.5 * surface_fractions(Surface.MEADOW, doy) + 0.5 * surface_fractions(Surface.SHRUB, doy)
    assert np.allclose(grass_variant.fractions(0, doy), half)
    event = PlantedEvent("change-01", "permanent", grass_variant, date(2022, 6, 1), None, np.array([0]))
    assert not event.active(date(2022, 6, 1) - timedelta(days=121))
    assert event.active(date(2022, 6, 1) - timedelta(days=120))
    month_before = grass_variant.fractions(-30, doy)
    month_after = grass_variant.fractions(30, doy)
    shrub = surface_fractions(Surface.SHRUB, doy)
    assert np.abs(month_before - half).sum() < np.abs(month_before - shrub).sum()
    assert np.abs(month_after - shrub).sum() < np.abs(month_before - shrub).sum()


def test_lookalikes_change_the_reflectance_but_never_the_truth() -> None:
    years = (2021, 2022)
    landscape = _landscape("lowland", deciduous=True)
    names = ("ploughing", "snow_year", "drought_year", "deciduous_shrubs")
    with_anomalies, ploughed = plant_lookalikes(np.random.default_rng(5), landscape, [], years, names)
    assert {e.process.name for e in ploughed} == {"ploughing"} and len(ploughed) == 2
    truth = CLASS_CODE_OF_SURFACE[landscape.surface][landscape.aoi]
    for year in years:
        assert np.array_equal(landcover(with_anomalies, ploughed, year), truth)
    meadow = landscape.surface == Surface.MEADOW
    (drought,) = [a for a in with_anomalies.anomalies if a.name == "drought_year"]
    mid = drought.start + (drought.end - drought.start) / 2
    other_year = mid.replace(year=years[0] if mid.year == years[1] else years[1])
    dry = ndvi(render_ground(with_anomalies, [], mid).reflectance)[meadow].mean()
    normal = ndvi(render_ground(with_anomalies, [], other_year).reflectance)[meadow].mean()
    assert dry < normal - 0.15
    (snow,) = [a for a in with_anomalies.anomalies if a.name == "snow_year"]
    snowy = render_ground(with_anomalies, [], snow.start + timedelta(days=20)).snow
    assert snowy[meadow].all()
    assert not render_ground(landscape, [], snow.start + timedelta(days=20)).snow.any()
    plough = ploughed[0]
    during = plough.start + timedelta(days=10)
    bare = ndvi(render_ground(with_anomalies, ploughed, during).reflectance).flat[plough.pixels].mean()
    unploughed = ndvi(render_ground(with_anomalies, [], during).reflectance).flat[plough.pixels].mean()
    assert bare < 0.3 and bare < unploughed - 0.2  # bare soil's NDVI
    dry_hills = _landscape("mediterranean", deciduous=True)
    deciduous = dry_hills.surface == Surface.DECIDUOUS_SHRUB
    evergreen = dry_hills.surface == Surface.MAQUIS
    assert deciduous.any()
    assert CLASS_CODE_OF_SURFACE[Surface.DECIDUOUS_SHRUB] == CLASS_BY_NAME["shrubland"].code
    winter = ndvi(render_ground(dry_hills, [], date(2021, 1, 20)).reflectance)
    summer = ndvi(render_ground(dry_hills, [], date(2021, 7, 20)).reflectance)
    assert winter[deciduous].mean() < winter[evergreen].mean() - 0.2
    assert summer[deciduous].mean() > winter[deciduous].mean() + 0.2
    records = lookalike_records(with_anomalies, years) + event_records(with_anomalies, ploughed, years)
    assert {r["kind"] for r in records} == {"seasonal"}
    assert {"ploughing", "snow_year", "drought_year", "deciduous_shrubs"} <= {r["process"] for r in records}


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("landscape", "desert", "mediterranean"),
        ("change_processes", ["fire", "volcano"], "volcano"),
        ("lookalikes", ["locusts"], "drought_year"),
        ("change_processes", "fire", "list"),
        ("lookalikes", ["snow_year", "snow_year"], "repeat"),
    ],
)
def test_invalid_names_raise_a_config_error_naming_the_field(field: str, value: object, named: str) -> None:
    with pytest.raises(ConfigError, match=field) as error:
        ScenarioConfig.from_dict({field: value})
    assert named in str(error.value)


def test_the_scenario_files_cover_every_change_type_twice_and_every_lookalike() -> None:
    landscapes = [
        "alpine_valley",
        "forest_hills",
        "lowland_agriculture",
        "mediterranean_dry",
        "wetland_coast",
    ]
    formerly_held_out = [
        "alpine_dry_years",
        "alpine_lakes",
        "forest_storms",
        "lowland_floodplain",
        "lowland_mixed",
        "lowland_river",
        "mediterranean_cloudy",
        "wetland_delta",
        "wetland_lagoon",
    ]
    assert sorted(f.stem for f in SCENARIOS.glob("*.yaml")) == sorted(
        [*landscapes, "demo_valley", *formerly_held_out]
    )
    # the demo's own scenario is the reference row: the default config over three years
    demo = ScenarioConfig.from_dict(yaml.safe_load((SCENARIOS / "demo_valley.yaml").read_text())["scenario"])
    assert demo == ScenarioConfig(years=(2021, 2022, 2023))
    files = [SCENARIOS / f"{name}.yaml" for name in landscapes]
    planned: Counter[str] = Counter()
    lookalikes: set[str] = set()
    configs = []
    for path in files:
        data = yaml.safe_load(path.read_text())
        assert isinstance(data["description"], str) and "\n" not in data["description"].strip()
        config = ScenarioConfig.from_dict(data["scenario"])
        configs.append(config)
        assert len(config.years) == 3 and 2022 in config.years and config.width == config.height == 256
        assert 6 <= config.n_changes <= 8 and 0.05 <= config.reference_error_fraction <= 0.08
        names = config.change_processes
        planned.update(names[i % len(names)] for i in range(config.n_changes))
        lookalikes.update(config.lookalikes)
    wanted = set(CHANGE_PROCESSES) - {"landslide", "new_water"}
    assert all(planned[name] >= 2 for name in wanted), planned
    assert lookalikes == set(LOOKALIKES)
    assert len({c.seed for c in configs}) == 5


def test_every_scenario_file_and_held_out_one_is_a_valid_three_year_scenario_of_its_own_seed() -> None:
    paths = sorted([*SCENARIOS.glob("*.yaml"), *(SCENARIOS.parent / "held_out").glob("*.yaml")])
    configs = [ScenarioConfig.from_dict(yaml.safe_load(p.read_text())["scenario"]) for p in paths]
    assert len(paths) >= 12 and all(len(c.years) == 3 for c in configs)
    assert len({c.seed for c in configs}) == len(configs)  # a held-out scenario is not a suite one again
    assert any(c.l8_per_year == 0 for c in configs) and any(c.l8_per_year > c.s2_per_year for c in configs)


def test_the_cli_reads_a_scenario_file_and_flags_override_it(tmp_path: Path) -> None:
    scenario = {
        "landscape": "wetland",
        "seed": 9,
        "width": 64,
        "height": 64,
        "years": [2021, 2022],
        "s2_per_year": 2,
        "l8_per_year": 1,
        "n_changes": 2,
        "change_processes": ["reservoir", "construction"],
        "lookalikes": ["ploughing", "drought_year"],
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({"description": "tiny", "scenario": scenario}))
    out = tmp_path / "out"
    command = [sys.executable, "-m", "eo_simulator", str(out), "--scenario", str(path), "--seed", "10"]
    subprocess.run([*command, "--quiet"], check=True, capture_output=True, timeout=120)
    config = json.loads((out / "scenario.json").read_text())["config"]
    assert config["seed"] == 10 and config["landscape"] == "wetland" and config["width"] == 64
    assert config["lookalikes"] == ["ploughing", "drought_year"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"scenario": {**scenario, "landscape": "moon"}}))
    failed = subprocess.run(
        [sys.executable, "-m", "eo_simulator", str(tmp_path / "o2"), "--scenario", str(bad), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2 and "landscape" in failed.stderr


def test_quarries_are_large_buildings_small_and_no_change_under_150_px() -> None:
    landscape = _landscape("lowland", size=192)  # changes of 245 px × size factor
    sizes: dict[str, list[int]] = {"quarry": [], "construction": []}
    for seed in range(3):
        events = plant_events(
            np.random.default_rng(seed),
            landscape,
            YEARS,
            4,
            process_cycle(("quarry", "construction")),
            min_pixels=150,
            flood=False,
        )
        for event in events:
            sizes[event.process.name].append(int(event.pixels.size))
    assert min(sizes["quarry"] + sizes["construction"]) >= 150
    assert min(sizes["quarry"]) > 2 * max(sizes["construction"]), sizes
    assert max(sizes["construction"]) < 245 < min(sizes["quarry"]) / 2
