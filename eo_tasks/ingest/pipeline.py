"""Ingest stage: discover an AOI's new scenes at its providers, then download each one verified.

Discovery is incremental: each provider is searched from a little before the newest scene the
catalog already has for the AOI (or from the AOI's first year on the first run), so a daily run
asks for days, not years, and a missed day heals itself. Scenes above the AOI's cloud limit are
recorded as skipped with the reason, never downloaded.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.aoi_sections import SourceSpec
from eo_tasks.core.errors import ChecksumError, DownloadError, ProviderError
from eo_tasks.core.files import file_digest
from eo_tasks.core.redact import redact
from eo_tasks.core.scenes import canonical_platform, platform_refusal, scoped_id
from eo_tasks.ingest.download import fetch, quarantine, read_end_to_end
from eo_tasks.ingest.providers import SceneProvider, SearchQuery
from eo_tasks.store.scenes import SceneCatalog

log = logging.getLogger(__name__)
LOOKBACK = dt.timedelta(days=30)  # providers publish late; re-search this much before the newest scene


@dataclass(frozen=True)
class DiscoveryResult:
    """What one discovery found.

    Attributes:
        found: Scenes the providers returned.
        new: Scenes new to the catalog.
        skipped_cloudy: Scenes above the AOI's cloud-cover limit.
        to_download: Ids of the AOI's scenes that still need a download (new or earlier failures).
        refused: Scenes refused with a reason recorded (platform policy, unsafe id).
        states: The AOI's catalog states after discovery (``quarantined``, ``failed``… included).
    """

    found: int
    new: int
    skipped_cloudy: int
    to_download: list[str]
    refused: int = 0
    states: dict[str, int] = dataclasses.field(default_factory=dict)


def search_window(
    aoi: AOIConfig, latest_known: dt.datetime | None, until: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The time range to search at one provider.

    Args:
        aoi: The AOI (its first and last year bound the range).
        latest_known: Acquisition time of the newest scene already catalogued from that provider.
        until: End of the run's data interval.

    Returns:
        ``(start, end)``, end exclusive.
    """
    first = dt.datetime(aoi.first_year, 1, 1, tzinfo=dt.UTC)
    start = max(first, latest_known - LOOKBACK) if latest_known else first
    end = until
    if aoi.last_year is not None:
        end = min(end, dt.datetime(aoi.last_year + 1, 1, 1, tzinfo=dt.UTC))
    return start, max(start, end)


def discover(
    aoi: AOIConfig,
    catalog: SceneCatalog,
    providers: Sequence[tuple[SourceSpec, SceneProvider]],
    until: dt.datetime,
    since: dt.datetime | None = None,
    max_attempts: int = 3,
) -> DiscoveryResult:
    """Searches every source of the AOI and records what it finds.

    Args:
        aoi: The AOI.
        catalog: The scene catalog.
        providers: Each AOI source with its provider.
        until: Search up to this time (the run's data interval end).
        since: Search from this time instead of the incremental window (manual re-discovery).
        max_attempts: Scenes that failed this many downloads are no longer offered.

    Returns:
        Counts and the ids still to download.
    """
    found = new = cloudy = refused = 0
    bbox = aoi.grid.footprint_wgs84()
    for source, provider in providers:
        latest = None if since else catalog.latest_datetime(aoi.name, provider.name)
        start, end = (since, until) if since else search_window(aoi, latest, until)
        query = SearchQuery(bbox=bbox, start=start, end=end, collections=source.collections)
        log.info("%s: searching %s %s from %s to %s", aoi.name, provider.name, source.collections, start, end)
        t0 = time.monotonic()
        accepted = []
        for scene in provider.search(query):
            found += 1
            try:  # ids are scoped by source, and checked before they name a folder
                scene = dataclasses.replace(
                    scene, id=scoped_id(source.key, scene.id), platform=canonical_platform(scene.platform)
                )
            except ProviderError as err:
                refused += 1
                log.warning("%s: %s", aoi.name, err)
                catalog.record_skip(aoi.name, f"{source.key}/{scene.id[:80]!r}", str(err))
                continue
            reason = platform_refusal(scene.collection, scene.platform)
            if reason is None and scene.cloud_cover is not None and scene.cloud_cover > aoi.cloud_cover_max:
                cloudy += 1
                reason = f"cloud cover {scene.cloud_cover:.1f} % > limit {aoi.cloud_cover_max:.1f} %"
            elif reason is not None:
                refused += 1
            if reason is not None:
                log.info("skip %s: %s", scene.id, reason)
                catalog.record_skip(aoi.name, scene.id, reason)
                continue
            accepted.append(scene)
        new += len(catalog.upsert_discovered(aoi.name, accepted))
        log.info(
            "%s: %s returned %d scenes in %.1fs (%d accepted)",
            aoi.name,
            provider.name,
            found,
            time.monotonic() - t0,
            len(accepted),
        )
    to_download = catalog.to_download(aoi.name, max_attempts)
    states = catalog.counts(aoi.name)
    log.info(
        "%s: %d found, %d new, %d above the cloud limit, %d refused, %d to download",
        aoi.name,
        found,
        new,
        cloudy,
        refused,
        len(to_download),
    )
    if refused or states.get("quarantined") or states.get("failed"):
        log.warning(
            "%s: %d scenes refused in this discovery (reasons in scene_skip); catalog has %d quarantined "
            "and %d failed scenes (reasons in scene.reason)",
            aoi.name,
            refused,
            states.get("quarantined", 0),
            states.get("failed", 0),
        )
    return DiscoveryResult(
        found=found, new=new, skipped_cloudy=cloudy, to_download=to_download, refused=refused, states=states
    )


@dataclass(frozen=True)
class DownloadResult:
    """One scene's download."""

    scene_id: str
    state: str
    local_dir: str | None
    bytes: int
    seconds: float


def scene_dir(data_dir: Path, collection: str, scene_id: str) -> Path:
    """Where a scene's files live: ``<data>/scenes/<collection>/<provider>/<item id>/``.

    Raises:
        ProviderError: The id is not a scoped id of safe parts (nothing outside the archive).
    """
    provider, _, item = scene_id.partition("/")
    if scoped_id(provider, item) != scene_id:  # pragma: no cover - scoped_id raises first
        raise ProviderError(f"refused scene id {scene_id!r}")
    return data_dir / "scenes" / collection / provider / item


def _suffix(href: str, safe: bool) -> str:
    if safe:
        return ".zip"
    return Path(urlparse(href).path).suffix or ".bin"


def download_scene(
    scene_id: str, catalog: SceneCatalog, provider: SceneProvider, data_dir: Path, attempts: int = 4
) -> DownloadResult:
    """Downloads every asset of a scene, verified, and marks it ready.

    A file is proven whole by its published checksum or size, or else by reading it end to end
    (:func:`~eo_tasks.ingest.download.read_end_to_end`): a file cut short by a server that sent
    no ``Content-Length`` is quarantined, the scene marked ``quarantined`` with the reason, and the
    next run fetches it again (up to the discovery's ``max_attempts``). A scene that is already
    ready is left alone; any other failure marks it ``failed``; both re-raise so the orchestrator
    retries with back-off. Reasons are stored without secrets (:func:`~eo_tasks.core.redact.redact`).

    Args:
        scene_id: Catalog id (``<provider>/<item id>``).
        catalog: The scene catalog.
        provider: The provider the scene was discovered at.
        data_dir: Root of the platform's data.
        attempts: Tries per file (network errors resume; checksum failures start over).

    Returns:
        The outcome.
    """
    scene = catalog.get(scene_id)
    try:
        target = scene_dir(data_dir, scene.collection, scene.id)
    except ProviderError as err:
        catalog.mark_failed(scene_id, str(err), quarantined=True)
        raise
    if not catalog.claim(scene_id):
        log.info("%s is already %s", scene_id, scene.state)
        return DownloadResult(scene_id, scene.state, scene.local_dir, 0, 0.0)
    quarantine_dir = data_dir / "quarantine" / scene.collection / scene.id
    safe = scene.properties.get("format") == "SAFE"
    t0 = time.monotonic()
    try:
        assets = provider.download_assets(scene.provider_id, scene.assets)
        paths: dict[str, str] = {}
        digests = hashlib.sha256()
        session = provider.session()
        for asset in sorted(assets, key=lambda a: a.band):
            path = fetch(
                asset.href,
                target / f"{asset.band}{_suffix(asset.href, safe)}",
                checksum=asset.checksum,
                size=asset.size,
                session=session,
                quarantine_dir=quarantine_dir,
                attempts=attempts,
            )
            if asset.checksum is None and asset.size is None:
                try:
                    read_end_to_end(path)
                except ChecksumError as err:
                    quarantine(path, quarantine_dir, f"{asset.href}: {err}")
                    raise
            paths[asset.band] = str(path)
            digests.update(file_digest(path).encode())
    except ChecksumError as err:
        catalog.mark_failed(scene_id, redact(err), quarantined=True)
        log.warning("%s quarantined: %s", scene_id, redact(err))
        raise
    except (DownloadError, ProviderError) as err:
        catalog.mark_failed(scene_id, redact(err))
        raise
    size = sum(Path(p).stat().st_size for p in paths.values())
    seconds = time.monotonic() - t0
    catalog.mark_ready(scene_id, str(target), digests.hexdigest(), paths)
    log.info(
        "%s ready: %d files, %.1f MB in %.1fs (%.1f MB/s)",
        scene_id,
        len(paths),
        size / 1e6,
        seconds,
        size / 1e6 / max(seconds, 1e-6),
    )
    return DownloadResult(scene_id, "ready", str(target), size, seconds)


@dataclass(frozen=True)
class RunReport:
    """What one ingest run left behind, for its final check.

    Attributes:
        aoi: The AOI.
        fetched: Scenes this run downloaded and made ready.
        lost: ``(scene id, state, reason)`` of each scene this run tried that is now
            ``quarantined`` or ``failed``; reasons redacted.
        refused: Scenes refused at discovery by policy (platform, unsafe id): expected, not a failure.
        states: The AOI's catalog states after the run.
    """

    aoi: str
    fetched: int
    lost: tuple[tuple[str, str, str], ...]
    refused: int
    states: dict[str, int]

    def summary(self) -> str:
        """One line of counts for the task log."""
        return (
            f"{self.aoi}: {self.fetched} scenes fetched, {len(self.lost)} quarantined or failed, "
            f"{self.refused} refused by policy; catalog states {dict(sorted(self.states.items()))}"
        )

    def problem(self) -> str | None:
        """The message that fails the run when scenes were lost (None when none was)."""
        if not self.lost:
            return None
        head = f"{self.aoi}: {len(self.lost)} scenes of this run did not arrive (the others were announced):"
        lines = [head]
        lines += [f"  {scene_id} [{state}]: {reason}" for scene_id, state, reason in self.lost]
        lines.append("they are fetched again by the next run, up to max_attempts tries")
        return "\n".join(lines)


def check_downloads(
    aoi: str,
    catalog: SceneCatalog,
    attempted: Sequence[str],
    fetched: int,
    refused: int = 0,
) -> RunReport:
    """The final check of an ingest run: logs its counts and fails it if scenes were lost.

    Refused scenes (platform policy) are only counted; a scene this run tried to download that is
    now quarantined or failed makes the run fail, so it never shows as a silent success.

    Args:
        aoi: The AOI.
        catalog: The scene catalog.
        attempted: Ids of the scenes this run tried to download.
        fetched: How many of them this run made ready.
        refused: Scenes refused at discovery.

    Returns:
        The run's report (when nothing was lost).

    Raises:
        DownloadError: Some scenes of this run are quarantined or failed; the message lists each
            one with its (redacted) reason.
    """
    outcomes = catalog.outcomes(attempted)
    lost = tuple(
        (scene_id, state, redact(reason or "no reason recorded"))
        for scene_id in attempted
        for state, reason in [outcomes.get(scene_id, ("missing", "not in the catalog"))]
        if state in ("quarantined", "failed", "missing")
    )
    report = RunReport(aoi=aoi, fetched=fetched, lost=lost, refused=refused, states=catalog.counts(aoi))
    log.info("%s", report.summary())
    if refused:
        log.info("%s: %d scenes refused by policy (reasons in scene_skip), as expected", aoi, refused)
    problem = report.problem()
    if problem is not None:
        log.error("%s", problem)
        raise DownloadError(problem)
    return report
