"""One scenario through the platform's stages, in process, each stage cached on disk.

The stages are the library functions the DAGs call (no Airflow, no SLURM): simulate → cubes
(Dask) → reference, annual training sets and per-year random forests → multi-year training set
→ model (``python -m eo_tasks.training`` in the compute environment, the demo's model settings)
→ sliding-window labels per map year (``python -m eo_tasks.maps.infer``, compute environment).
What the suite compares, the label-sequence analysis, runs afterwards on the cached labels
(:mod:`benchmarks.accuracy.analysis`), so a change to the rules is re-scored in seconds.

A stage is skipped when its output exists; the work folder's name carries a hash of the
scenario and the model settings, so a changed scenario never reuses stale outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
COMPUTE_PYTHON = REPO / ".venv-compute" / "bin" / "python"
# The demo's model (aois/demo.yaml): small and short, so it trains in minutes on two cores.
DEMO_MODEL: dict[str, Any] = {
    "arch": "transformer",
    "epochs": 10,
    "batch_size": 256,
    "layers": 2,
    "hidden": 32,
}
WINDOW = 15
BLOCK_PX = 128

Log = Callable[[str], None]


@dataclass
class ScenarioRun:
    """Where one scenario's stages write, and how long each took.

    Attributes:
        name: The scenario's name (its file's stem).
        scenario: The simulator's settings (``ScenarioConfig.from_dict`` input).
        root: The work folder of this scenario and model.
        model: Training settings (``python -m eo_tasks.training`` options).
        seconds: Stage → wall seconds of the stages run now.
    """

    name: str
    scenario: Mapping[str, Any]
    root: Path
    model: Mapping[str, Any] = field(default_factory=lambda: dict(DEMO_MODEL))
    seconds: dict[str, float] = field(default_factory=dict)

    @classmethod
    def create(
        cls, name: str, scenario: Mapping[str, Any], work: Path, model: Mapping[str, Any] | None = None
    ) -> ScenarioRun:
        """The run of ``scenario`` under ``work``/``<name>-<hash of scenario and model>``."""
        model = dict(model or DEMO_MODEL)
        key = hashlib.sha256(json.dumps([scenario, model], sort_keys=True).encode()).hexdigest()[:10]
        return cls(name, scenario, work / f"{name}-{key}", model)

    @property
    def archive(self) -> Path:
        """The simulated archive (catalog, truth, reference, aoi.yaml)."""
        return self.root / "archive"

    @property
    def years(self) -> list[int]:
        """The scenario's years."""
        return [int(y) for y in self.scenario["years"]]

    def cube(self, year: int) -> Path:
        """The year's datacube."""
        return self.root / "cubes" / f"{year}.h5"

    @property
    def training(self) -> Path:
        """The training stages' folder (``TrainingPaths`` root)."""
        return self.root / "training"

    @property
    def model_dir(self) -> Path:
        """The trained model."""
        return self.root / "model"

    def labels(self, year: int) -> Path:
        """The sliding-window labels of a map year (block files)."""
        return self.root / "labels" / str(year)

    def cubes_of(self, year: int) -> list[Path]:
        """The cubes a map year's windows slide over: the previous year's and its own."""
        return [self.cube(y) for y in (year - 1, year) if y in self.years]

    def aoi(self) -> Any:
        """The AOI file the simulator wrote."""
        from eo_tasks.core.aoi import AOIConfig

        return AOIConfig.load(self.archive / "aoi.yaml")

    def run_all(self, log: Log = print) -> None:
        """Every stage whose output is missing, in order."""
        stages = [
            ("simulate", (self.archive / "truth" / "change_date.tif").is_file, self.simulate),
            ("cubes", lambda: all(self.cube(y).is_file() for y in self.years), self.build_cubes),
            ("trainset", lambda: (self.training / "trainset.h5").is_file(), self.build_trainset),
            ("train", lambda: (self.model_dir / "model_card.json").is_file(), self.train),
            ("infer", lambda: all((self.labels(y) / "done").is_file() for y in self.years), self.infer),
        ]
        for stage, done, run in stages:
            if done():
                continue
            started = time.monotonic()
            log(f"{self.name}: {stage} ...")
            run(log)
            self.seconds[stage] = round(time.monotonic() - started, 1)
            log(f"{self.name}: {stage} done in {self.seconds[stage]:.0f} s")
        (self.root / "timings.json").write_text(json.dumps(self._timings(), indent=2) + "\n")

    def _timings(self) -> dict[str, float]:
        path = self.root / "timings.json"
        earlier = json.loads(path.read_text()) if path.is_file() else {}
        return {**earlier, **self.seconds}

    # --- the stages -----------------------------------------------------------------------------
    def simulate(self, log: Log) -> None:
        """Writes the scenario's archive."""
        from eo_simulator import ScenarioConfig, simulate

        simulate(ScenarioConfig.from_dict(self.scenario), self.archive, None, overwrite=True)

    def build_cubes(self, log: Log) -> None:
        """One cube per year from the archive's scenes (Dask, as ``preprocess_<aoi>``)."""
        from eo_tasks.core.calendar import Calendar
        from eo_tasks.core.scenes import SceneInput
        from eo_tasks.ingest.providers.base import SearchQuery
        from eo_tasks.ingest.providers.stac import LocalArchiveProvider
        from eo_tasks.preprocess.cluster import dask_client
        from eo_tasks.preprocess.datacube import CubeSpec, build_cube

        aoi = self.aoi()
        provider = LocalArchiveProvider(str(self.archive / "catalog.json"))
        with dask_client(2) as client:
            for year in self.years:
                query = SearchQuery.calendar_year(aoi.grid.footprint_wgs84(), year)
                scenes = [SceneInput.in_place(r) for r in provider.search(query)]
                spec = CubeSpec(
                    aoi=aoi.name, grid=aoi.grid, year=year, calendar=Calendar(aoi.composites_per_year)
                )
                self.cube(year).parent.mkdir(parents=True, exist_ok=True)
                build_cube(scenes, spec, self.cube(year), client=client)
                log(f"{self.name}: cube {year} from {len(scenes)} scenes")

    def build_trainset(self, log: Log) -> None:
        """Reference → annual sets and per-year forests → the multi-year set (as ``trainset_<aoi>``)."""
        from eo_tasks.trainset.annual import build_annual
        from eo_tasks.trainset.config import TrainsetConfig
        from eo_tasks.trainset.multiyear import build_multiyear
        from eo_tasks.trainset.pipeline import TrainingPaths, prepare_reference

        aoi = self.aoi()
        paths = TrainingPaths(self.training)
        self.training.mkdir(parents=True, exist_ok=True)
        config = TrainsetConfig.for_aoi(aoi)
        prepare_reference(aoi, paths)
        for year in self.years:
            build_annual(aoi, self.cube(year), paths, config)
        build_multiyear(aoi, {y: self.cube(y) for y in self.years}, paths, config)

    def train(self, log: Log) -> None:
        """The model, trained on windows of ``WINDOW`` composites in the compute environment."""
        args = [
            "-m",
            "eo_tasks.training",
            "--trainset",
            str(self.training / "trainset.h5"),
            "--out",
            str(self.model_dir),
            "--backend",
            "tensorflow",
            "--window",
            str(WINDOW),
        ]
        for name, value in self.model.items():
            args += [f"--{name.replace('_', '-')}", str(value)]
        _compute(args, log)

    def infer(self, log: Log) -> None:
        """Sliding-window labels for every map year (the first: its own cube only)."""
        for year in self.years:
            out = self.labels(year)
            cubes = [str(p) for p in self.cubes_of(year)]
            args = ["-m", "eo_tasks.maps.infer", "--model", str(self.model_dir), "--cubes", *cubes]
            _compute([*args, "--out", str(out), "--block-px", str(BLOCK_PX), "--window", str(WINDOW)], log)
            (out / "done").touch()


def _compute(args: list[str], log: Log) -> None:
    """Runs the compute environment's Python with the repository importable; its last lines on failure."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "2"}
    python = str(COMPUTE_PYTHON) if COMPUTE_PYTHON.exists() else sys.executable
    done = subprocess.run([python, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise RuntimeError(f"{' '.join(args[:2])} failed ({done.returncode}):\n{tail}")
    for line in done.stdout.splitlines()[-3:]:
        log(f"  {line}")
