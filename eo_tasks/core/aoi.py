"""Area-of-interest configuration: one YAML file per AOI, validated before anything is written.

Adding an AOI is adding a file to ``aois/`` (or ``$EO_AOI_DIR``). Every error names the file and
the field, so a typo is found at DAG parse time, not hours into a run. Path values may use
environment variables (``${EO_DATA_DIR}/...``); secrets never appear here: sources and the HPC name
Airflow connections instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.preprocess_spec import PreprocessSpec
from eo_tasks.core.settings import aoi_dir
from eo_tasks.core.validate import as_mapping, check_known_keys, expand_path, require_key

PROVIDERS = ("local", "stac", "earth-search", "planetary-computer", "cdse", "usgs", "sentinelsat")
COLLECTIONS = ("sentinel-2-l2a", "landsat-c2-l2")
ARCHITECTURES = ("lstm", "transformer")
BACKENDS = ("tensorflow", "pytorch")
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class SourceSpec:
    """Where scenes come from.

    Attributes:
        provider: One of :data:`PROVIDERS`.
        collections: Platform collection names to fetch from this source.
        url: STAC API or DHuS URL (providers other than ``local``).
        path: ``catalog.json`` of a local static STAC archive (provider ``local``).
        conn_id: Airflow connection holding the credentials, if the provider needs any.
    """

    provider: str
    collections: tuple[str, ...]
    url: str | None = None
    path: str | None = None
    conn_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str) -> SourceSpec:
        """Validates and builds a source."""
        check_known_keys(data, {"provider", "collections", "url", "path", "conn_id"}, where)
        provider = str(require_key(data, "provider", where))
        if provider not in PROVIDERS:
            raise ConfigError(
                f"{where}.provider: unknown provider {provider!r}; known: {', '.join(PROVIDERS)}"
            )
        collections = tuple(data.get("collections") or COLLECTIONS)
        for name in collections:
            if name not in COLLECTIONS:
                raise ConfigError(f"{where}.collections: unknown collection {name!r}; known: {COLLECTIONS}")
        if provider == "sentinelsat" and "landsat-c2-l2" in collections:
            raise ConfigError(f"{where}.collections: DHuS hubs (sentinelsat) serve Sentinel-2 only")
        path = data.get("path")
        if provider == "local":
            path = expand_path(str(require_key(data, "path", where)))
        url = data.get("url")
        if provider in ("stac", "sentinelsat") and not url:
            raise ConfigError(f"{where}.url: required for provider {provider!r}")
        return cls(
            provider=provider,
            collections=collections,
            url=str(url) if url else None,
            path=path,
            conn_id=data.get("conn_id"),
        )


@dataclass(frozen=True)
class ReferenceSpec:
    """The public reference map that training sets are derived from."""

    path: str
    legend: str

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "reference") -> ReferenceSpec:
        """Validates and builds the reference-map settings (the legend must exist)."""
        from eo_tasks.core.classes import Legend

        check_known_keys(data, {"path", "legend"}, where)
        path = expand_path(str(require_key(data, "path", where)))
        legend = str(require_key(data, "legend", where))
        try:
            Legend.load(legend)
        except ConfigError as err:
            raise ConfigError(f"{where}.legend: {err}") from err
        return cls(path=path, legend=legend)


@dataclass(frozen=True)
class HPCSpec:
    """Where and how jobs run on the cluster (credentials live in the Airflow connection)."""

    conn_id: str = "eo_hpc"
    partition: str | None = None
    account: str | None = None
    time_limit: str = "02:00:00"
    nodes: int = 1
    tasks_per_node: int = 2
    gpus_per_node: int = 0
    modules: tuple[str, ...] = ()  # `module load`s before the job starts

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "hpc") -> HPCSpec:
        """Validates and builds the HPC settings."""
        allowed = {
            "conn_id",
            "partition",
            "account",
            "time_limit",
            "nodes",
            "tasks_per_node",
            "gpus_per_node",
            "modules",
        }
        check_known_keys(data, allowed, where)
        spec = cls(**{**dict(data), "modules": tuple(data.get("modules") or ())})
        if not re.fullmatch(r"(\d+-)?\d{1,2}:\d{2}:\d{2}", spec.time_limit):
            raise ConfigError(f"{where}.time_limit: expected [D-]HH:MM:SS, got {spec.time_limit!r}")
        for name in ("nodes", "tasks_per_node"):
            if int(getattr(spec, name)) < 1:
                raise ConfigError(f"{where}.{name}: must be at least 1")
        return spec

    def job_values(self, venv: str) -> dict[str, Any]:
        """The values every job template's ``#SBATCH`` header and environment take from these settings.

        Args:
            venv: The compute environment on the cluster (the HPC connection's ``compute_venv``).
        """
        return {
            "time_limit": self.time_limit,
            "partition": self.partition,
            "account": self.account,
            "gpus_per_node": self.gpus_per_node,
            "modules": list(self.modules),
            "venv": venv,
        }


@dataclass(frozen=True)
class TrainingSpec:
    """The AOI file's ``model`` section: which classifier to train, on which backend, and how long.

    ``layers`` and ``hidden`` override the published sizes (4 x 128 LSTM, 5-layer d_model-128
    Transformer), e.g. for small test AOIs.
    """

    backend: str = "tensorflow"
    architecture: str = "transformer"
    epochs: int = 100
    batch_size: int = 256
    layers: int | None = None
    hidden: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "model") -> TrainingSpec:
        """Validates and builds the model settings."""
        check_known_keys(data, {"backend", "architecture", "epochs", "batch_size", "layers", "hidden"}, where)
        spec = cls(**dict(data))
        for name in ("epochs", "batch_size", "layers", "hidden"):
            value = getattr(spec, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{where}.{name}: must be a positive integer, got {value!r}")
        if spec.backend not in BACKENDS:
            raise ConfigError(f"{where}.backend: expected tensorflow or pytorch, got {spec.backend!r}")
        if spec.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"{where}.architecture: expected lstm or transformer, got {spec.architecture!r}"
            )
        return spec


@dataclass(frozen=True)
class ChangeParams:
    """Parameters of the analysis (defaults from the paper).

    Attributes:
        window: ``w``, composites per classifier window.
        median: ``p``, length of the median filter (odd).
        ath: Smallest connected change region kept, in pixels.
    """

    window: int = 15
    median: int = 5
    ath: int = 100

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChangeParams:
        """Validates and builds the parameters (unknown keys are an error)."""
        unknown = set(data) - {"window", "median", "ath"}
        if unknown:
            raise ConfigError(f"maps: unknown field(s) {sorted(unknown)}")
        params = cls(**{k: int(v) for k, v in data.items()})
        if params.window < 2:
            raise ConfigError(f"maps.window: must be at least 2, got {params.window}")
        if params.median < 1 or params.median % 2 == 0:
            raise ConfigError(f"maps.median: must be odd and positive, got {params.median}")
        if params.ath < 1:
            raise ConfigError(f"maps.ath: must be positive, got {params.ath}")
        return params

    @property
    def half(self) -> int:
        """Half a window, rounded up: the persistence and date-shift unit."""
        return (self.window + 1) // 2


@dataclass(frozen=True)
class MapsSpec:
    """The yearly maps: the change analysis and how the inference job and the DAG run.

    Attributes:
        changes: ``window`` (w), ``median`` (p), ``ath`` of the label-sequence analysis.
        lag_days: Days after a year ends before its map is made (late scenes still arrive).
        block_px: Side of the spatial blocks of the inference job array.
        array_tasks: Tasks in the inference job array (each takes every n-th block).
    """

    changes: ChangeParams = field(default_factory=ChangeParams)
    lag_days: int = 15
    block_px: int = 128
    array_tasks: int = 2

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "maps") -> MapsSpec:
        """Validates and builds the section; the change parameters default to the paper's."""
        check_known_keys(data, {"window", "median", "ath", "lag_days", "block_px", "array_tasks"}, where)
        try:
            changes = ChangeParams.from_dict({k: data[k] for k in ("window", "median", "ath") if k in data})
            spec = cls(
                changes, **{k: int(data[k]) for k in ("lag_days", "block_px", "array_tasks") if k in data}
            )
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from err
        if spec.lag_days < 0 or spec.block_px < 16 or not 1 <= spec.array_tasks <= 1000:
            raise ConfigError(f"{where}: lag_days >= 0, block_px >= 16 and array_tasks 1..1000 expected")
        return spec


@dataclass(frozen=True)
class AOIConfig:
    """Everything the DAGs need to know about one area of interest."""

    name: str
    grid: GridSpec
    first_year: int
    sources: tuple[SourceSpec, ...]
    reference: ReferenceSpec
    cloud_cover_max: float = 40.0
    composites_per_year: int = 24
    ingest_schedule: str = "@daily"
    last_year: int | None = None
    model: TrainingSpec = field(default_factory=TrainingSpec)
    hpc: HPCSpec = field(default_factory=HPCSpec)
    maps: MapsSpec = field(default_factory=MapsSpec)
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)
    source_file: str = ""

    @classmethod
    def from_dict(cls, data: Any, source_file: str = "<dict>", check_crs: bool = True) -> AOIConfig:
        """Validates a parsed AOI document.

        Args:
            data: The parsed YAML.
            source_file: Named in every error message.
            check_crs: Ask GDAL whether the grid's EPSG code exists (False where GDAL must not be
                imported, e.g. while Airflow parses DAG files; tasks validate fully when they start).

        Returns:
            The configuration.

        Raises:
            ConfigError: Naming the file and the field at fault.
        """
        try:
            return cls._from_dict(as_mapping(data, "AOI"), source_file, check_crs)
        except ConfigError as err:
            raise ConfigError(f"{source_file}: {err}") from err

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any], source_file: str, check_crs: bool) -> AOIConfig:
        allowed = {
            "name",
            "grid",
            "first_year",
            "last_year",
            "sources",
            "reference",
            "cloud_cover_max",
            "composites_per_year",
            "ingest_schedule",
            "model",
            "hpc",
            "maps",
            "preprocess",
        }
        check_known_keys(data, allowed, "AOI")
        name = str(require_key(data, "name", "AOI"))
        if not _NAME.match(name):
            raise ConfigError(
                f"name: {name!r} must be lower-case letters, digits and '_' (it names DAGs and rows)"
            )
        first_year = int(require_key(data, "first_year", "AOI"))
        last_year = data.get("last_year")
        if last_year is not None and int(last_year) < first_year:
            raise ConfigError(f"last_year: {last_year} is before first_year {first_year}")
        sources = require_key(data, "sources", "AOI")
        if not isinstance(sources, list) or not sources:
            raise ConfigError("sources: expected a non-empty list")
        composites = int(data.get("composites_per_year", 24))
        if not 4 <= composites <= 73:
            raise ConfigError(
                f"composites_per_year: {composites} is outside 4..73 (73: one per 5-day revisit)"
            )
        cloud = float(data.get("cloud_cover_max", 40.0))
        if not 0 <= cloud <= 100:
            raise ConfigError(f"cloud_cover_max: {cloud} is not a percentage")
        return cls(
            name=name,
            grid=GridSpec.from_dict(
                as_mapping(require_key(data, "grid", "AOI"), "grid"), check_crs=check_crs
            ),
            first_year=first_year,
            last_year=None if last_year is None else int(last_year),
            sources=tuple(
                SourceSpec.from_dict(as_mapping(s, f"sources[{i}]"), f"sources[{i}]")
                for i, s in enumerate(sources)
            ),
            reference=ReferenceSpec.from_dict(as_mapping(require_key(data, "reference", "AOI"), "reference")),
            cloud_cover_max=cloud,
            composites_per_year=composites,
            ingest_schedule=str(data.get("ingest_schedule", "@daily")),
            model=TrainingSpec.from_dict(as_mapping(data.get("model") or {}, "model")),
            hpc=HPCSpec.from_dict(as_mapping(data.get("hpc") or {}, "hpc")),
            maps=MapsSpec.from_dict(as_mapping(data.get("maps") or {}, "maps")),
            preprocess=PreprocessSpec.from_dict(as_mapping(data.get("preprocess") or {}, "preprocess")),
            source_file=source_file,
        )

    @classmethod
    def load(cls, path: str | Path, check_crs: bool = True) -> AOIConfig:
        """Reads and validates one AOI file."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{path}: cannot read AOI file: {err}") from err
        return cls.from_dict(data, source_file=str(path), check_crs=check_crs)


def load_all(
    directory: Path | None = None, check_crs: bool = True
) -> tuple[list[AOIConfig], list[ConfigError]]:
    """Loads every ``*.yaml`` AOI file of a folder, sorted by name.

    Returns:
        The valid AOIs, and an error (naming file and field) for each invalid file: one bad file
        must not hide the other AOIs.
    """
    directory = directory or aoi_dir()
    valid: list[AOIConfig] = []
    errors: list[ConfigError] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            valid.append(AOIConfig.load(path, check_crs=check_crs))
        except ConfigError as err:
            errors.append(err)
    names = [a.name for a in valid]
    for name in {n for n in names if names.count(n) > 1}:
        errors.append(ConfigError(f"{directory}: AOI name {name!r} is used by more than one file"))
        valid = [a for a in valid if a.name != name]
    return valid, errors
