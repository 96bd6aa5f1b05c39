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

from eo_tasks.core.aoi_sections import HPCSpec, MapsSpec, ReferenceSpec, SourceSpec, TrainingSpec
from eo_tasks.core.errors import ConfigError
from eo_tasks.core.grid import GridSpec
from eo_tasks.core.preprocess_spec import PreprocessSpec
from eo_tasks.core.settings import aoi_dir
from eo_tasks.core.validate import as_mapping, check_known_keys, require_key

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


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
    # Overrides of the training-set builder's settings (``eo_tasks.trainset.TrainsetConfig``, which
    # validates them when the trainset_<aoi> tasks start; a run's ``trainset`` param overrides these).
    trainset: Mapping[str, Any] = field(default_factory=dict)
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
            "trainset",
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
            trainset=dict(as_mapping(data.get("trainset") or {}, "trainset")),
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
