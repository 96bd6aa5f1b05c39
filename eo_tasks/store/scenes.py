"""The scene catalog in PostGIS: what was discovered, downloaded, skipped or quarantined, and why.

Every write is an upsert or a guarded state transition, so running an ingest twice adds nothing
and two workers never download the same scene at once. The catalog also records the
datacubes and models made from the scenes (provenance: every map leads back to them).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eo_tasks.core.errors import CatalogError
from eo_tasks.core.files import file_digest
from eo_tasks.core.scenes import AssetRef, SceneInput, SceneRecord

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CatalogedScene:
    """A catalog row, as the download and preprocessing steps need it."""

    id: str
    collection: str
    provider: str
    provider_id: str
    state: str
    attempts: int
    assets: tuple[AssetRef, ...]
    properties: dict[str, Any]
    local_dir: str | None


def _assets_json(assets: Iterable[AssetRef]) -> str:
    return json.dumps({a.band: {"href": a.href, "checksum": a.checksum, "size": a.size} for a in assets})


class SceneCatalog:
    """Reads and writes the ``scene`` tables.

    Args:
        conn: An open psycopg2 connection to the PostGIS store.
    """

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def upsert_discovered(self, aoi: str, scenes: Sequence[SceneRecord]) -> list[str]:
        """Records discovered scenes and links them to the AOI.

        A scene already known keeps its state (a ready scene is never downloaded again).

        Returns:
            The ids that were new to the catalog.
        """
        new: list[str] = []
        with self.conn, self.conn.cursor() as cur:
            for s in scenes:
                cur.execute(
                    """
                    INSERT INTO scene (id, collection, platform, datetime, cloud_cover, provider, provider_id,
                                       footprint, properties, assets)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, ST_Multi(ST_GeomFromText(%s, 4326)), %s, %s)
                    ON CONFLICT (id) DO NOTHING
                    RETURNING id
                    """,
                    (
                        s.id,
                        s.collection,
                        s.platform,
                        s.datetime,
                        s.cloud_cover,
                        s.provider,
                        s.provider_id,
                        s.footprint_wkt,
                        json.dumps(dict(s.properties)),
                        _assets_json(s.assets),
                    ),
                )
                if cur.fetchone():
                    new.append(s.id)
                cur.execute(
                    "INSERT INTO aoi_scene (aoi, scene_id) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (aoi, s.id),
                )
        return new

    def record_skip(self, aoi: str, scene_id: str, reason: str) -> None:
        """Remembers why a scene was not taken (once per AOI and scene)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "INSERT INTO scene_skip (aoi, scene_id, reason) VALUES (%s, %s, %s) "
                "ON CONFLICT (aoi, scene_id) DO UPDATE SET reason = EXCLUDED.reason",
                (aoi, scene_id, reason),
            )

    def to_download(self, aoi: str, max_attempts: int) -> list[str]:
        """Scenes of the AOI that still need a download (new, or failed fewer than ``max_attempts`` times)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                """
                SELECT s.id FROM scene s JOIN aoi_scene a ON a.scene_id = s.id
                WHERE a.aoi = %s AND (s.state IN ('discovered', 'downloading')
                      OR (s.state IN ('failed', 'quarantined') AND s.attempts < %s))
                ORDER BY s.datetime, s.id
                """,
                (aoi, max_attempts),
            )
            return [row[0] for row in cur.fetchall()]

    def get(self, scene_id: str) -> CatalogedScene:
        """One scene's row."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT id, collection, provider, provider_id, state, attempts, assets, properties, "
                "local_dir FROM scene WHERE id = %s",
                (scene_id,),
            )
            row = cur.fetchone()
        if row is None:
            raise CatalogError(f"scene {scene_id} is not in the catalog")
        assets = tuple(
            AssetRef(band=band, href=a["href"], checksum=a.get("checksum"), size=a.get("size"))
            for band, a in row[6].items()
        )
        return CatalogedScene(
            id=row[0],
            collection=row[1],
            provider=row[2],
            provider_id=row[3],
            state=row[4],
            attempts=row[5],
            assets=assets,
            properties=row[7],
            local_dir=row[8],
        )

    def claim(self, scene_id: str) -> bool:
        """Moves a scene to ``downloading``; False if it is already ready (or used)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "UPDATE scene SET state = 'downloading', attempts = attempts + 1, reason = NULL, "
                "updated_at = now() WHERE id = %s AND state NOT IN ('ready', 'used') RETURNING id",
                (scene_id,),
            )
            return cur.fetchone() is not None

    def mark_ready(self, scene_id: str, local_dir: str, checksum: str, local_paths: dict[str, str]) -> None:
        """Records a verified download."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                """
                UPDATE scene
                SET state = 'ready', local_dir = %s, checksum = %s, reason = NULL, updated_at = now(),
                    assets = (SELECT jsonb_object_agg(band, a || jsonb_build_object('local_path', p -> band))
                              FROM jsonb_each(assets) AS e(band, a), (SELECT %s::jsonb AS p) AS paths)
                WHERE id = %s
                """,
                (local_dir, checksum, json.dumps(local_paths), scene_id),
            )

    def mark_failed(self, scene_id: str, reason: str, quarantined: bool = False) -> None:
        """Records a failed attempt (``quarantined`` when the data itself was bad)."""
        state = "quarantined" if quarantined else "failed"
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "UPDATE scene SET state = %s, reason = %s, updated_at = now() WHERE id = %s",
                (state, reason[:2000], scene_id),
            )

    def outcomes(self, scene_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """State and reason of each of ``scene_ids`` that is in the catalog."""
        if not scene_ids:
            return {}
        with self.conn, self.conn.cursor() as cur:
            cur.execute("SELECT id, state, reason FROM scene WHERE id = ANY(%s)", (list(scene_ids),))
            return {row[0]: (row[1], row[2]) for row in cur.fetchall()}

    def counts(self, aoi: str) -> dict[str, int]:
        """Number of the AOI's scenes per state."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT s.state, count(*) FROM scene s JOIN aoi_scene a ON a.scene_id = s.id "
                "WHERE a.aoi = %s GROUP BY s.state",
                (aoi,),
            )
            return {state: int(n) for state, n in cur.fetchall()}

    def latest_datetime(self, aoi: str, provider: str) -> Any:
        """Acquisition time of the AOI's newest scene from ``provider`` (None when there is none)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT max(s.datetime) FROM scene s JOIN aoi_scene a ON a.scene_id = s.id "
                "WHERE a.aoi = %s AND s.provider = %s",
                (aoi, provider),
            )
            row = cur.fetchone()
        return row[0] if row else None

    def ready_scenes(self, aoi: str, year: int) -> list[SceneInput]:
        """The AOI's downloaded scenes acquired in ``year``, as preprocessing reads them."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                """
                SELECT s.id, s.collection, s.datetime, s.assets, s.properties
                FROM scene s JOIN aoi_scene a ON a.scene_id = s.id
                WHERE a.aoi = %s AND s.state IN ('ready', 'used')
                  AND s.datetime >= make_timestamptz(%s, 1, 1, 0, 0, 0, 'UTC')
                  AND s.datetime < make_timestamptz(%s + 1, 1, 1, 0, 0, 0, 'UTC')
                ORDER BY s.datetime, s.id
                """,
                (aoi, year, year),
            )
            rows = cur.fetchall()
        return [
            SceneInput(
                id=row[0],
                collection=row[1],
                datetime=row[2],
                files={band: a["local_path"] for band, a in row[3].items() if a.get("local_path")},
                properties=row[4],
            )
            for row in rows
        ]

    def scene_years(self, aoi: str) -> list[int]:
        """Years in which the AOI has downloaded scenes."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT extract(year FROM s.datetime AT TIME ZONE 'UTC')::int FROM scene s "
                "JOIN aoi_scene a ON a.scene_id = s.id "
                "WHERE a.aoi = %s AND s.state IN ('ready', 'used') ORDER BY 1",
                (aoi,),
            )
            return [int(row[0]) for row in cur.fetchall()]

    def datacube_fingerprint(self, aoi: str, year: int) -> str | None:
        """The scene fingerprint of the AOI's registered cube of ``year``.

        None if there is none, or if its file failed its checksum (:meth:`verify_datacube`): the
        preprocess step then rebuilds it, and the stages that read it wait for the rebuild.
        """
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT scene_fingerprint FROM datacube "
                "WHERE aoi = %s AND year = %s AND stale_reason IS NULL",
                (aoi, year),
            )
            row = cur.fetchone()
        return None if row is None else str(row[0])

    def datacube_stale_reason(self, aoi: str, year: int) -> str | None:
        """Why the AOI's cube of ``year`` must be rebuilt (None if it is fine or not registered)."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute("SELECT stale_reason FROM datacube WHERE aoi = %s AND year = %s", (aoi, year))
            row = cur.fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def verify_datacube(self, aoi: str, year: int) -> str | None:
        """Checks the registered cube's file against its checksum; a cube that fails is marked for rebuild.

        Returns:
            Why the cube cannot be used (also stored as its ``stale_reason``), or None when it
            matches, has no checksum recorded (registered before checksums existed), or is not
            registered at all.
        """
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT path, sha256, stale_reason FROM datacube WHERE aoi = %s AND year = %s", (aoi, year)
            )
            row = cur.fetchone()
        if row is None:
            return None
        path, expected, stale = Path(row[0]), row[1], row[2]
        if stale is not None:
            return str(stale)
        if expected is None:
            log.warning("cube %s %d (%s) has no checksum in the catalog: not verified", aoi, year, path)
            return None
        if not path.is_file():
            reason = f"cube file {path} is missing"
        else:
            actual = file_digest(path)
            if actual == expected:
                return None
            reason = (
                f"cube file {path} no longer matches its checksum "
                f"(sha256 {actual[:12]}…, catalog {expected[:12]}…)"
            )
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "UPDATE datacube SET stale_reason = %s WHERE aoi = %s AND year = %s AND sha256 = %s",
                (reason, aoi, year, expected),
            )
        log.warning("cube %s %d marked for rebuild: %s", aoi, year, reason)
        return reason

    def record_datacube(
        self,
        aoi: str,
        year: int,
        path: str,
        fingerprint: str,
        scenes: Sequence[str],
        skipped: dict[str, str],
        n_composites: int,
        sha256: str | None = None,
    ) -> None:
        """Registers (or replaces) the cube of an AOI and year and marks its scenes used, atomically.

        Args:
            aoi: AOI name.
            year: Cube year.
            path: The cube file.
            fingerprint: Fingerprint of the scenes it was built from.
            scenes: Ids of the scenes used.
            skipped: Scenes left out, id → reason.
            n_composites: Composites per year.
            sha256: The file's SHA-256 (computed from ``path`` when not given).
        """
        if sha256 is None:
            sha256 = file_digest(Path(path))
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                """
                INSERT INTO datacube
                    (aoi, year, path, scene_fingerprint, scenes, skipped_scenes, n_composites, sha256)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (aoi, year) DO UPDATE SET path = EXCLUDED.path,
                    scene_fingerprint = EXCLUDED.scene_fingerprint, scenes = EXCLUDED.scenes,
                    skipped_scenes = EXCLUDED.skipped_scenes, n_composites = EXCLUDED.n_composites,
                    sha256 = EXCLUDED.sha256, stale_reason = NULL, created_at = now()
                """,
                (aoi, year, path, fingerprint, list(scenes), json.dumps(skipped), n_composites, sha256),
            )
            cur.execute(
                "UPDATE scene SET state = 'used', updated_at = now() WHERE id = ANY(%s) AND state = 'ready'",
                (list(scenes),),
            )
