"""The scene catalog against the real PostGIS: migrations, idempotent upserts, state transitions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from eo_tasks.core.errors import CatalogError
from eo_tasks.core.scenes import AssetRef, SceneRecord
from eo_tasks.store.connection import MIGRATIONS_DIR, migrate
from eo_tasks.store.models import approved_model, model_status, record_model, set_model_status
from eo_tasks.store.scenes import SceneCatalog


def _scene(n: int, cloud: float = 10.0) -> SceneRecord:
    return SceneRecord(
        id=f"S2A_32TPS_2021060{n}_0_L2A",
        collection="sentinel-2-l2a",
        platform="sentinel-2a",
        datetime=dt.datetime(2021, 6, n, 10, 20, tzinfo=dt.UTC),
        cloud_cover=cloud,
        provider="local",
        provider_id=f"S2A_32TPS_2021060{n}_0_L2A",
        footprint_wkt="POLYGON((10 46,11 46,11 47,10 47,10 46))",
        assets=(
            AssetRef("red", f"/archive/{n}/red.tif", "multihash:1220ab", 10),
            AssetRef("scl", "/x/scl.tif"),
        ),
        properties={"s2:processing_baseline": "03.00", "proj:epsg": 32632},
    )


@pytest.fixture
def catalog(pg_schema: dict[str, Any]) -> Iterator[SceneCatalog]:
    args = {k: v for k, v in pg_schema.items() if k != "schema"}
    conn = psycopg2.connect(**args)
    migrate(conn)
    yield SceneCatalog(conn)
    conn.close()


def test_migrations_apply_once(catalog: SceneCatalog) -> None:
    assert migrate(catalog.conn) == []
    with catalog.conn.cursor() as cur:
        cur.execute("SELECT version FROM schema_migration")
        applied = sorted(r[0] for r in cur.fetchall())
        assert applied == sorted(p.stem for p in MIGRATIONS_DIR.glob("*.sql"))
        assert applied[:2] == ["0001_scene_catalog", "0002_datacube"]
        cur.execute("SELECT GeometryType(footprint) FROM scene LIMIT 0")


def test_second_upsert_inserts_nothing(catalog: SceneCatalog) -> None:
    assert catalog.upsert_discovered("trentino", [_scene(1), _scene(2)]) == [_scene(1).id, _scene(2).id]
    assert catalog.upsert_discovered("trentino", [_scene(1), _scene(2)]) == []
    assert catalog.counts("trentino") == {"discovered": 2}
    # Another AOI sharing a scene links to it without duplicating the scene.
    assert catalog.upsert_discovered("garda", [_scene(2)]) == []
    assert catalog.counts("garda") == {"discovered": 1}
    with catalog.conn.cursor() as cur:
        cur.execute("SELECT count(*), ST_GeometryType(min(footprint)) FROM scene")
        assert cur.fetchone() == (2, "ST_MultiPolygon")


def test_download_state_machine(catalog: SceneCatalog) -> None:
    scene = _scene(3)
    catalog.upsert_discovered("trentino", [scene])
    assert catalog.to_download("trentino", max_attempts=2) == [scene.id]
    assert catalog.claim(scene.id)
    catalog.mark_failed(scene.id, "checksum mismatch", quarantined=True)
    row = catalog.get(scene.id)
    assert (row.state, row.attempts) == ("quarantined", 1)
    assert catalog.to_download("trentino", max_attempts=2) == [scene.id]  # retried ...
    assert catalog.claim(scene.id)
    catalog.mark_failed(scene.id, "timeout")
    assert catalog.to_download("trentino", max_attempts=2) == []  # ... until the attempts are spent
    assert catalog.claim(scene.id)
    catalog.mark_ready(scene.id, "/data/s3", "abc", {"red": "/data/s3/red.tif", "scl": "/data/s3/scl.tif"})
    row = catalog.get(scene.id)
    assert row.state == "ready" and row.local_dir == "/data/s3"
    assert not catalog.claim(scene.id)  # a ready scene is never downloaded again
    assert catalog.to_download("trentino", max_attempts=5) == []
    with catalog.conn.cursor() as cur:
        cur.execute("SELECT assets -> 'red' ->> 'local_path', assets -> 'red' ->> 'checksum' FROM scene")
        assert cur.fetchone() == ("/data/s3/red.tif", "multihash:1220ab")


def test_skips_are_recorded_once_with_the_reason(catalog: SceneCatalog) -> None:
    catalog.record_skip("trentino", "S2B_X", "cloud cover 80.0 % > limit 40.0 %")
    catalog.record_skip("trentino", "S2B_X", "cloud cover 81.0 % > limit 40.0 %")
    with catalog.conn.cursor() as cur:
        cur.execute("SELECT scene_id, reason FROM scene_skip")
        assert cur.fetchall() == [("S2B_X", "cloud cover 81.0 % > limit 40.0 %")]


def test_unknown_scene_is_a_catalog_error(catalog: SceneCatalog) -> None:
    with pytest.raises(CatalogError, match="not in the catalog"):
        catalog.get("nope")


def test_latest_datetime_per_aoi_and_provider(catalog: SceneCatalog) -> None:
    assert catalog.latest_datetime("trentino", "local") is None
    catalog.upsert_discovered("trentino", [_scene(1), _scene(4)])
    assert catalog.latest_datetime("trentino", "local") == dt.datetime(2021, 6, 4, 10, 20, tzinfo=dt.UTC)
    assert catalog.latest_datetime("trentino", "earth-search") is None


def test_models_are_registered_with_their_card_and_used_once_approved(catalog: SceneCatalog) -> None:
    conn = catalog.conn
    assert approved_model(conn, "trentino") is None
    card = {
        "backend": "pytorch",
        "architecture": {"architecture": "lstm", "layers": 4, "hidden": 128},
        "metrics": {"test": {"overall_accuracy": 0.91}},
        "training_set": {"path": "/training/trentino/trainset.h5"},
    }
    record_model(conn, "trentino_pytorch_lstm_1", "trentino", "/models/1", card, "17")
    record_model(conn, "trentino_pytorch_lstm_1", "trentino", "/models/1b", card, "18")  # re-registered
    assert model_status(conn, "trentino_pytorch_lstm_1") == "pending"
    assert approved_model(conn, "trentino") is None  # pending: not used by the maps
    set_model_status(conn, "trentino_pytorch_lstm_1", "approved", "alice")
    assert approved_model(conn, "trentino") == ("trentino_pytorch_lstm_1", "/models/1b")
    record_model(conn, "trentino_pytorch_lstm_2", "trentino", "/models/2", card, "19")  # newer, pending
    assert approved_model(conn, "trentino") == ("trentino_pytorch_lstm_1", "/models/1b")
    set_model_status(conn, "trentino_pytorch_lstm_2", "rejected", "bob")
    assert approved_model(conn, "trentino") == ("trentino_pytorch_lstm_1", "/models/1b")
    assert (
        approved_model(conn, "trentino", "trentino_pytorch_lstm_2") is None
    )  # a pinned model must be approved
    with pytest.raises(CatalogError, match="no model"):
        set_model_status(conn, "nope", "approved", "alice")
    with catalog.conn.cursor() as cur:
        cur.execute(
            "SELECT backend, architecture, accuracy, slurm_job_id, training_set, card ->> 'backend' "
            "FROM model WHERE id = 'trentino_pytorch_lstm_1'"
        )
        assert cur.fetchall() == [
            ("pytorch", "lstm", pytest.approx(0.91), "18", "/training/trentino/trainset.h5", "pytorch")
        ]
