"""The sections of an AOI file (sources, reference, HPC, model, maps), each validated by its from_dict."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.validate import check_known_keys, check_slurm_values, expand_path, require_key

PROVIDERS = ("local", "stac", "earth-search", "planetary-computer", "cdse", "usgs", "sentinelsat")
COLLECTIONS = ("sentinel-2-l2a", "landsat-c2-l2")
ARCHITECTURES = ("lstm", "transformer")
BACKENDS = ("tensorflow", "pytorch")


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

    @property
    def key(self) -> str:
        """The source's name in scene ids: ``<provider>-<8 hex of its URL or path>``.

        Two sources of one provider (two local archives, two STAC APIs) never share scene ids,
        so one AOI's scenes never stand in for another's.
        """
        where = self.url or self.path or ""
        return f"{self.provider}-{hashlib.sha256(where.encode()).hexdigest()[:8]}"

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
        check_slurm_values(data, where)  # they reach #SBATCH lines: strict patterns, no newlines
        spec = cls(**{**dict(data), "modules": tuple(data.get("modules") or ())})
        for name in ("nodes", "tasks_per_node"):
            if getattr(spec, name) < 1:
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
    auto_approve: bool = False  # a new model is used by the maps only after a person approves it

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "model") -> TrainingSpec:
        """Validates and builds the model settings."""
        check_known_keys(
            data,
            {"backend", "architecture", "epochs", "batch_size", "layers", "hidden", "auto_approve"},
            where,
        )
        spec = cls(**dict(data))
        for name in ("epochs", "batch_size", "layers", "hidden"):
            value = getattr(spec, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ConfigError(f"{where}.{name}: must be a positive integer, got {value!r}")
        if not isinstance(spec.auto_approve, bool):
            raise ConfigError(f"{where}.auto_approve: expected true or false, got {spec.auto_approve!r}")
        if spec.backend not in BACKENDS:
            raise ConfigError(f"{where}.backend: expected tensorflow or pytorch, got {spec.backend!r}")
        if spec.architecture not in ARCHITECTURES:
            raise ConfigError(
                f"{where}.architecture: expected lstm or transformer, got {spec.architecture!r}"
            )
        return spec


CHANGE_RULES = ("platform", "published")


@dataclass(frozen=True)
class ChangeParams:
    """Parameters of the analysis (``window``, ``median`` and ``ath`` default to the paper's).

    Attributes:
        window: ``w``, composites per classifier window.
        median: ``p``, length of the median filter (odd).
        ath: Smallest connected change region kept, in pixels.
        rules: ``published`` (Sedona et al. 2023, as written) or ``platform`` (the default: the
            published rules plus those measured on the accuracy suite, see ``eo_tasks.maps.changes``).
    """

    window: int = 15
    median: int = 5
    ath: int = 100
    rules: str = "platform"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ChangeParams:
        """Validates and builds the parameters (unknown keys are an error)."""
        unknown = set(data) - {"window", "median", "ath", "rules"}
        if unknown:
            raise ConfigError(f"maps: unknown field(s) {sorted(unknown)}")
        rules = str(data.get("rules", "platform"))
        if rules not in CHANGE_RULES:
            raise ConfigError(f"maps.rules: expected one of {', '.join(CHANGE_RULES)}, got {rules!r}")
        params = cls(**{k: int(v) for k, v in data.items() if k != "rules"}, rules=rules)
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
        changes: ``window`` (w), ``median`` (p), ``ath`` and ``rules`` of the label-sequence analysis.
        lag_days: Days after a year ends before its map is made (late scenes still arrive).
        block_px: Side of the spatial blocks of the inference job array.
        array_tasks: Tasks in the inference job array (each takes every n-th block).
        dating_workers: Processes the assemble step dates the change regions in, block by block
            (1: the task's own process).
    """

    changes: ChangeParams = field(default_factory=ChangeParams)
    lag_days: int = 15
    block_px: int = 128
    array_tasks: int = 2
    dating_workers: int = 1

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "maps") -> MapsSpec:
        """Validates and builds the section; the change parameters default to the paper's."""
        analysis = ("window", "median", "ath", "rules")
        job = ("lag_days", "block_px", "array_tasks", "dating_workers")
        check_known_keys(data, {*analysis, *job}, where)
        try:
            changes = ChangeParams.from_dict({k: data[k] for k in analysis if k in data})
            spec = cls(changes, **{k: int(data[k]) for k in job if k in data})
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}: {err}") from err
        if spec.lag_days < 0 or spec.block_px < 16 or not 1 <= spec.array_tasks <= 1000:
            raise ConfigError(f"{where}: lag_days >= 0, block_px >= 16 and array_tasks 1..1000 expected")
        if not 1 <= spec.dating_workers <= 256:
            raise ConfigError(f"{where}.dating_workers: 1..256 expected, got {spec.dating_workers}")
        return spec
