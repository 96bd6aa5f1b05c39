"""Planetary Computer SAS tokens never leave the download: logs, catalog rows, quarantine notes, errors.

The provider signs every href with a SAS token from the replayed PC token endpoint
(tests/fixtures/hub_replay.py); the downloads then fail as a bad night would make them fail (5xx,
a connection cut off, a file that is not readable to its end). Whatever is written about them must
name the file without its signature: ``sig=``, ``st=`` and ``se=`` values are redacted. The final
check of the ingest run (:func:`eo_tasks.ingest.pipeline.check_downloads`) then fails listing the
scene and why, redacted too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from eo_tasks.core.aoi_sections import SourceSpec
from eo_tasks.core.errors import DownloadError
from eo_tasks.core.scenes import SceneRecord, scoped_id
from eo_tasks.ingest.pipeline import check_downloads, download_scene
from eo_tasks.ingest.providers import SceneProvider, SearchQuery, make_provider
from eo_tasks.store.scenes import SceneCatalog
from tests.fixtures.hub_replay import HubReplay

AOI = "signed"


@pytest.fixture
def hub() -> Iterator[HubReplay]:
    with HubReplay(page_size=3) as server:
        yield server


@pytest.fixture
def catalog(conn: Any) -> SceneCatalog:
    return SceneCatalog(conn)


def _pc_scene(hub: HubReplay, catalog: SceneCatalog) -> tuple[SceneProvider, SceneRecord]:
    spec = SourceSpec.from_dict(
        {"provider": "planetary-computer", "url": hub.url("/pc/api/stac/v1")}, "sources[0]"
    )
    provider = make_provider(spec)
    query = SearchQuery(
        bbox=(-180.0, -90.0, 180.0, 90.0),  # the real recorded PC items of 2019-01-01
        start=dt.datetime(2019, 1, 1, tzinfo=dt.UTC),
        end=dt.datetime(2019, 1, 2, tzinfo=dt.UTC),
        collections=("sentinel-2-l2a",),
    )
    scene = next(iter(provider.search(query)))
    scene = dataclasses.replace(scene, id=scoped_id(provider.name, scene.id))
    catalog.upsert_discovered(AOI, [scene])
    return provider, scene


def _secrets(hub: HubReplay) -> list[str]:
    """The signature values the replayed SAS endpoint handed out (non-empty, or the test proves nothing)."""
    signatures = list(hub.sas_tokens)
    assert signatures, "no SAS token was issued: nothing was signed"
    return signatures


def _written(
    caplog: pytest.LogCaptureFixture, catalog: SceneCatalog, data: Path, *errors: BaseException
) -> str:
    """Everything the platform wrote about the failures: log records, reasons, notes, tracebacks."""
    with catalog.conn, catalog.conn.cursor() as cur:
        cur.execute("SELECT coalesce(string_agg(reason, '\n'), '') FROM scene")
        reasons = cur.fetchone()[0]
    notes = "\n".join(p.read_text() for p in (data / "quarantine").rglob("*.reason.txt"))
    tracebacks = "\n".join("".join(traceback.format_exception(e)) for e in errors)
    logs = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    return "\n".join([logs, caplog.text, reasons, notes, tracebacks])


def _assert_clean(text: str, hub: HubReplay) -> None:
    for signature in _secrets(hub):
        assert signature not in text
    leaks = re.findall(r"[?&](?:sig|st|se|sv|skoid|skt|ske)=(?!REDACTED)[^&\s]{0,30}", text)
    assert not leaks, leaks
    assert "sig=REDACTED" in text  # the signed hrefs were written about, redacted


def _blob_path(hub: HubReplay, href: str) -> str:
    return href[len(hub.base_url) :].split("?")[0]


def test_sas_token_never_written_when_the_blob_store_fails(
    hub: HubReplay, catalog: SceneCatalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider, scene = _pc_scene(hub, catalog)
    hub.faults.add(_blob_path(hub, scene.asset("blue").href), "status", status=503, times=None)
    data = tmp_path / "data"
    with pytest.raises(DownloadError) as failed:
        download_scene(scene.id, catalog, provider, data, attempts=2)
    assert "503" in str(failed.value)  # blue is fetched first (bands in name order)
    assert catalog.get(scene.id).state == "failed"
    assert "sig=REDACTED" in str(failed.value)  # the file is named, its signature is not
    with pytest.raises(DownloadError) as lost:
        check_downloads(AOI, catalog, [scene.id], fetched=0)
    assert scene.id in str(lost.value) and "[failed]" in str(lost.value)
    _assert_clean(_written(caplog, catalog, data, failed.value, lost.value), hub)


def test_sas_token_never_written_when_a_download_is_cut_off_or_unreadable(
    hub: HubReplay, catalog: SceneCatalog, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider, scene = _pc_scene(hub, catalog)
    # the first band is cut off once (resumed with Range); PC publishes no checksum, and the
    # served bytes are not a GeoTIFF, so reading end to end fails and the scene is quarantined
    hub.faults.add("/pc-blob/*", "cutoff", times=1)
    data = tmp_path / "data"
    with pytest.raises(DownloadError) as failed:
        download_scene(scene.id, catalog, provider, data, attempts=2)
    assert catalog.get(scene.id).state == "quarantined"
    assert hub.count(_blob_path(hub, scene.asset("blue").href)) == 2  # cut off, then fetched again
    notes = list((data / "quarantine").rglob("*.reason.txt"))
    assert notes, "nothing was quarantined"
    assert any("REDACTED" in n.read_text() for n in notes)  # the note names the signed href, redacted
    with pytest.raises(DownloadError) as lost:
        check_downloads(AOI, catalog, [scene.id], fetched=0)
    assert "[quarantined]" in str(lost.value)
    _assert_clean(_written(caplog, catalog, data, failed.value, lost.value), hub)
