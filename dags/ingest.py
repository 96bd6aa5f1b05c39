"""Ingest DAGs, one per AOI file: discover new scenes, download them verified, announce them.

Adding an AOI is adding a YAML file to ``aois/`` (or ``$EO_AOI_DIR``); this file turns each one
into an ``ingest_<aoi>`` DAG. Invalid AOI files are reported by the ``platform_health`` DAG.
"""

from __future__ import annotations

import datetime as dt
import logging
from datetime import timedelta
from typing import Any

import pendulum
from airflow.sdk import Param, dag, task
from eo_assets import scenes_asset
from eo_common import credentials, failure_notifier, scene_catalog

from eo_tasks.core.aoi import AOIConfig, load_all

log = logging.getLogger(__name__)

DOC_MD = """
### Ingest `{name}`

Keeps the scene catalog of AOI **{name}** (`{file}`) complete:

1. **discover** — searches each source of the AOI ({sources}) from a little before the newest scene
   already catalogued (the whole history on the first run), skips scenes above
   {cloud:.0f} % cloud cover (recorded in `scene_skip` with the reason), upserts the rest into the
   PostGIS `scene` table (`eo_postgis`).
2. **download** — one mapped task per scene still to fetch (pool `scene_downloads`): every file
   checksum-verified, resumed after interruptions, renamed into place; corrupt files are
   quarantined and the task retried with back-off.
3. **announce** — emits the Asset `{asset}` when new scenes became ready, which triggers the
   preprocessing of the AOI.
4. **check_downloads** — runs last, whatever happened: logs the counts (fetched, quarantined,
   refused by platform policy, catalog states) and **fails** when scenes of this run were
   quarantined or failed, listing each with its reason (secrets redacted), so such a run is never a
   silent success. The scenes that did arrive were announced before. Refused scenes (e.g.
   Landsat-7) are only counted: they are expected.

Running it twice adds nothing the second time.

**Params:** `since` (ISO date, optional) searches from that date instead of incrementally;
`max_attempts` (default 3) download attempts before a scene is left failed/quarantined.
"""


def build_ingest_dag(aoi: AOIConfig) -> None:
    """Declares the ingest DAG of one AOI."""
    asset = scenes_asset(aoi.name)

    @dag(
        dag_id=f"ingest_{aoi.name}",
        schedule=aoi.ingest_schedule,
        start_date=pendulum.datetime(aoi.first_year, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        tags=["ingest", f"aoi:{aoi.name}"],
        doc_md=DOC_MD.format(
            name=aoi.name,
            file=aoi.source_file,
            sources=", ".join(s.provider for s in aoi.sources),
            cloud=aoi.cloud_cover_max,
            asset=asset.name,
        ),
        default_args={
            "owner": "eo-platform",
            "retries": 2,
            "retry_delay": timedelta(minutes=1),
            "on_failure_callback": failure_notifier(),
        },
        params={
            "since": Param(None, type=["null", "string"], format="date", description="search from this date"),
            "max_attempts": Param(3, type="integer", minimum=1),
        },
    )
    def ingest() -> None:
        @task
        def discover(
            params: dict[str, Any] | None = None,
            data_interval_end: dt.datetime | None = None,
            ti: Any = None,
        ) -> list[str]:
            """Searches the AOI's sources; returns the ids to download (refusal count: XCom ``refused``)."""
            from eo_tasks.ingest.pipeline import discover as discover_scenes
            from eo_tasks.ingest.providers import make_provider

            config = AOIConfig.load(aoi.source_file)  # full validation at task start
            providers = [(s, make_provider(s, credentials(s.conn_id))) for s in config.sources]
            params = params or {}
            since = params.get("since")
            result = discover_scenes(
                config,
                scene_catalog(),
                providers,
                until=data_interval_end or dt.datetime.now(dt.UTC),
                since=dt.datetime.fromisoformat(since).replace(tzinfo=dt.UTC) if since else None,
                max_attempts=int(params.get("max_attempts", 3)),
            )
            if ti is not None:
                ti.xcom_push(key="refused", value=result.refused)
            return result.to_download

        @task(
            pool="scene_downloads",
            retries=3,
            retry_delay=timedelta(seconds=30),
            retry_exponential_backoff=True,
            map_index_template="{{ task.op_kwargs['scene_id'] }}",
        )
        def download(scene_id: str) -> dict[str, Any]:
            """Downloads one scene, verified; returns its state and size."""
            from eo_tasks.core.settings import data_dir
            from eo_tasks.ingest.pipeline import download_scene
            from eo_tasks.ingest.providers import make_provider

            catalog = scene_catalog()
            config = AOIConfig.load(aoi.source_file)
            source = next((s for s in config.sources if scene_id.startswith(f"{s.key}/")), None)
            if source is None:
                raise ValueError(f"{scene_id} came from a source that {aoi.name} no longer lists")
            provider = make_provider(source, credentials(source.conn_id))
            result = download_scene(scene_id, catalog, provider, data_dir())
            return {"scene_id": scene_id, "state": result.state, "bytes": result.bytes}

        @task(outlets=[asset], trigger_rule="all_done")
        def announce(results: list[dict[str, Any]]) -> int:
            """Emits the AOI's scenes Asset if this run made scenes ready."""
            from airflow.sdk.exceptions import AirflowSkipException

            fetched = [r for r in results if r and r["bytes"] > 0]
            counts = scene_catalog().counts(aoi.name)
            log.info("%s: %d scenes fetched in this run; catalog states %s", aoi.name, len(fetched), counts)
            if not fetched:
                raise AirflowSkipException("no new scenes: nothing to announce")
            return len(fetched)

        @task(trigger_rule="all_done", retries=1, retry_delay=timedelta(seconds=10))
        def check_downloads(attempted: list[str], refused: int, results: list[dict[str, Any]]) -> str:
            """Fails the run, listing each scene and why, when scenes of this run were quarantined."""
            from airflow.sdk.exceptions import AirflowFailException

            from eo_tasks.core.errors import DownloadError
            from eo_tasks.ingest.pipeline import check_downloads as check

            fetched = sum(1 for r in results if r and r["bytes"] > 0)
            try:
                return check(aoi.name, scene_catalog(), attempted, fetched, refused).summary()
            except DownloadError as err:  # a verdict on the run, not a transient error: no retry
                raise AirflowFailException(str(err)) from err

        found = discover()
        results = download.expand(scene_id=found)
        announced = announce(results)  # type: ignore[arg-type]
        refused = found["refused"]  # type: ignore[index]  # the XCom key discover pushes
        announced >> check_downloads(found, refused, results)  # type: ignore[arg-type]

    ingest()


AOIS, AOI_ERRORS = load_all(check_crs=False)
for _aoi in AOIS:
    build_ingest_dag(_aoi)
