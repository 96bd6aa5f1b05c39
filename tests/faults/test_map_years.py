"""Faults while a year's map is replaced: overlapping runs, a lost connection, a killed process, re-runs.

A year is switched in one transaction to a new version of its files; the previous version's files,
rows and STAC item stay exactly as they were until then, and one run at a time writes a year.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import eo_tasks.maps.versions as versions
from eo_tasks.core.errors import ConcurrentRunError, ServiceUnavailableError
from eo_tasks.core.grid import blocks
from eo_tasks.maps.infer import BLOCK_FILE, write_block
from eo_tasks.maps.outputs import MapPaths
from eo_tasks.maps.pipeline import assemble_year
from eo_tasks.maps.review import Review, apply_review, read_class_map
from eo_tasks.store.maps import year_lock
from tests.conftest import REPO
from tests.faults import world
from tests.faults.conftest import check_consistent, rows, snapshot

CHANGES_SQL = (
    "SELECT id, to_class, extract(year FROM change_date)::int, status, new_class, reviewed_by, reviewed_at "
    "FROM lc_change ORDER BY id"
)


def _two_years(conn: Any, root: Path) -> dict[str, int]:
    """Assembles 2021 and 2022; the change ids by name (A: bare, dated 2021; B: bare, 2022; C: grass)."""
    world.assemble(conn, root, 2021)
    stored = world.assemble(conn, root, 2022)
    assert stored.changes == 3
    found = rows(conn, CHANGES_SQL)
    names = {(world.BARE, 2021): "A", (world.BARE, 2022): "B", (world.GRASS, 2022): "C"}
    ids = {names[(to, year)]: cid for cid, to, year, *_ in found}
    assert sorted(ids) == ["A", "B", "C"], found
    return ids


def _review(conn: Any, ids: dict[str, int]) -> None:
    """Approves A (carried back into 2021), rejects B, relabels C as water."""
    assert apply_review(conn, Review(ids["A"], "approve", "ana")).maps_updated == (2021,)
    assert apply_review(conn, Review(ids["B"], "reject", "ben")).pixels_updated == 150
    apply_review(conn, Review(ids["C"], "relabel", "cleo", new_class=world.WATER))


def test_a_rerun_keeps_ids_reviews_and_pixels(root: Path, connect: Callable[[], Any]) -> None:
    conn = connect()
    ids = _two_years(conn, root)
    world.assemble(conn, root, 2022)  # an unreviewed re-run: same changes, same ids (the review page's links)
    assert [r[0] for r in rows(conn, CHANGES_SQL)] == sorted(ids.values())
    _review(conn, ids)
    reviewed = rows(conn, CHANGES_SQL)

    world.assemble(conn, root, 2022)  # A is no longer detected (2021 holds it now): its row stays
    assert rows(conn, CHANGES_SQL) == reviewed
    for year in world.YEARS:
        check_consistent(conn, root, year)
    classes = read_class_map(str(MapPaths.for_year(root / "data", world.AOI, 2022).classes))[0]
    r, c = world.CHANGES["B"][:2]
    assert (classes[r, c] == world.TREE).all()  # the rejected change stays out of the re-run map
    assert apply_review(conn, Review(ids["B"], "reject", "dan")).pixels_updated == 0

    world.assemble(conn, root, 2021)  # the earlier year again: the approved change stays carried back
    assert rows(conn, "SELECT count(*) FROM lc_change") == [(3,)]
    for year in world.YEARS:
        check_consistent(conn, root, year)
    first = read_class_map(str(MapPaths.for_year(root / "data", world.AOI, 2021).classes))[0]
    r, c = world.CHANGES["A"][:2]
    assert (first[r, c] == world.BARE).all()


def test_two_overlapping_runs_of_a_year_write_it_once(
    root: Path, connect: Callable[[], Any], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    world.assemble(connect(), root, 2021)
    world.write_labels(root, 2022, "k2")  # the second run's own labels (another run key)
    stale = world.write_labels(root, 2022, "k0")  # a long-gone run's labels
    for path in [stale, *stale.iterdir()]:
        os.utime(path, (1e9, 1e9))
    write_files = versions.write_files

    def slow(*args: Any, **kwargs: Any) -> None:  # widen the window in which the runs overlap
        write_files(*args, **kwargs)
        threading.Event().wait(1.0)

    monkeypatch.setattr(versions, "write_files", slow)
    barrier, errors, results = threading.Barrier(2), [], []

    def run(key: str) -> None:
        conn = connect()
        barrier.wait()
        try:
            results.append(world.assemble(conn, root, 2022, key))
        except Exception as err:
            errors.append(err)

    caplog.set_level(logging.WARNING, logger="eo_tasks.store.maps")
    threads = [threading.Thread(target=run, args=(key,)) for key in ("k1", "k2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors and len(results) == 2
    assert "another run is writing this year's map; waiting for it" in caplog.text  # they did overlap
    conn = connect()
    assert rows(conn, "SELECT year, count(*) FROM lc_change GROUP BY year") == [(2022, 3)]
    assert rows(conn, "SELECT count(*) FROM lc_map") == [(2,)]
    check_consistent(conn, root, 2022)
    # Neither run removed the other's labels; the stale folder went, under the lock.
    assert world.labels_dir(root, 2022, "k1").is_dir() and world.labels_dir(root, 2022, "k2").is_dir()
    assert not stale.exists()


def test_a_second_writer_waits_a_bounded_time_then_fails_clearly(
    root: Path, connect: Callable[[], Any]
) -> None:
    with (
        year_lock(connect(), world.AOI, 2021),
        pytest.raises(
            ConcurrentRunError, match=r"another run is writing the map of faulty 2021 .* stored nothing"
        ),
    ):
        world.assemble(connect(), root, 2021, lock_wait_s=1.0)
    assert rows(connect(), "SELECT count(*) FROM lc_map") == [(0,)]
    assert not list((root / "data" / "maps" / world.AOI / "2021").glob("v*"))


@pytest.mark.parametrize("fault", ["connection terminated", "error before the commit"])
def test_a_failure_inside_the_switch_keeps_the_previous_version(
    root: Path, connect: Callable[[], Any], monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    conn = connect()
    ids = _two_years(conn, root)
    _review(conn, ids)
    reviewed = rows(conn, CHANGES_SQL)
    before = snapshot(conn, root)
    victim, killer = connect(), connect()
    write_files = versions.write_files

    def failing(*args: Any, **kwargs: Any) -> None:
        write_files(*args, **kwargs)  # the new version's files are complete, the rows not yet switched
        if fault == "connection terminated":
            assert rows(killer, "SELECT pg_terminate_backend(%s)", victim.get_backend_pid()) == [(True,)]
        else:
            raise OSError("No space left on device (injected)")

    monkeypatch.setattr(versions, "write_files", failing)
    expected = (
        (ServiceUnavailableError, "lost the PostGIS connection while replacing the map of faulty 2022")
        if fault == "connection terminated"
        else (OSError, "No space left on device")
    )
    with pytest.raises(expected[0], match=expected[1]):
        world.assemble(victim, root, 2022)
    assert snapshot(conn, root) == before  # rows, every file (COGs, PNGs, STAC, CURRENT), byte for byte
    check_consistent(conn, root, 2022)

    monkeypatch.undo()
    world.assemble(conn, root, 2022)  # the next run succeeds and keeps the reviews
    assert rows(conn, CHANGES_SQL) == reviewed
    check_consistent(conn, root, 2022)


@pytest.mark.parametrize("point", ["files-written", "committed"])
def test_a_killed_assemble_leaves_nothing_the_next_run_cannot_fix(
    root: Path, connect: Callable[[], Any], pg: dict[str, Any], point: str
) -> None:
    conn = connect()
    ids = _two_years(conn, root)
    _review(conn, ids)
    reviewed = rows(conn, CHANGES_SQL)
    before = snapshot(conn, root)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.world", str(root), json.dumps(pg), "2022", point],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    reached = proc.stdout.readline().strip()
    if reached != point:
        proc.kill()
        pytest.fail(f"the assemble process did not reach {point}: {proc.communicate()[1][-3000:]}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    after = snapshot(conn, root)
    old = {k: v for k, v in before["files"].items()}
    assert {k: after["files"].get(k) for k in old} == old  # the previous version's files are untouched
    if point == "files-written":
        assert after["lc_map"] == before["lc_map"] and after["lc_change"] == before["lc_change"]
    else:  # committed: the rows point at the new version, which is complete
        assert after["lc_change"] == before["lc_change"]
        assert Path(rows(conn, "SELECT cog_path FROM lc_map WHERE year = 2022")[0][0]).is_file()

    world.assemble(conn, root, 2022)  # the lock died with the killed session: the next run goes ahead
    assert rows(conn, CHANGES_SQL) == reviewed
    check_consistent(conn, root, 2022)


def test_a_review_during_a_rerun_waits_and_lands_in_the_new_version(
    root: Path, connect: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = connect()
    ids = _two_years(conn, root)
    inside, release = threading.Event(), threading.Event()
    write_files = versions.write_files

    def held(*args: Any, **kwargs: Any) -> None:  # the re-run stops inside its transaction
        write_files(*args, **kwargs)
        inside.set()
        release.wait(30)

    monkeypatch.setattr(versions, "write_files", held)
    rerun = threading.Thread(target=world.assemble, args=(connect(), root, 2022))
    rerun.start()
    assert inside.wait(30)
    with pytest.raises(ConcurrentRunError, match="another run is writing the map of faulty 2022"):
        apply_review(connect(), Review(ids["B"], "reject", "ben"), lock_wait_s=0.5)
    outcome: list[Any] = []
    review = threading.Thread(
        target=lambda: outcome.append(apply_review(connect(), Review(ids["B"], "reject", "ben")))
    )
    review.start()
    threading.Event().wait(1.0)
    assert not outcome  # it waits for the re-run ...
    release.set()
    rerun.join(60)
    review.join(60)
    assert outcome and outcome[0].pixels_updated == 150  # ... then rewrites the version the re-run made
    assert rows(conn, "SELECT status FROM lc_change WHERE id = %s", ids["B"]) == [("rejected",)]
    check_consistent(conn, root, 2022)


YEARS = (2022, 2023)


def _third_year(conn: Any, root: Path) -> None:
    """2023: B's ground is forest again from January (ploughed, not cleared); C is a third
    ground (neither the forest before it nor 2022's); the labels turn both back to forest."""
    import h5py

    from eo_tasks.core.cube import to_int16
    from eo_tasks.store.scenes import SceneCatalog

    grid = world.config(root).grid
    year, n = 2023, world.N
    reflectance = np.full((n, *grid.shape, len(world.BANDS)), 0.3, np.float32)
    for name in ("A", "C"):
        r, c = world.CHANGES[name][:2]
        reflectance[:, r, c, :] = 0.05 if name == "A" else 0.6
    dates = [dt.date(year, 1, 15) + dt.timedelta(days=30 * k) for k in range(n)]
    path = world.cube_file(root, year)
    with h5py.File(path, "w") as f:
        f.create_dataset("reflectance", data=to_int16(reflectance))
        f.create_dataset("valid", data=np.ones((n, *grid.shape), np.uint8))
        f.create_dataset("dates", data=[d.isoformat().encode() for d in dates])
        f.attrs.update(
            band_names=world.BANDS,
            epsg=grid.epsg,
            geotransform=grid.geotransform,
            year=year,
            aoi=world.AOI,
            scenes=json.dumps([f"S2_{year}_1"]),
        )
    SceneCatalog(conn).record_datacube(world.AOI, year, str(path), f"fp{year}", [], {}, n)
    series = [d.isoformat() for d in world.DATES[n:]] + [d.isoformat() for d in dates]
    positions = 2 * n - world.W + 1
    labels = np.full((positions, *grid.shape), world.TREE, np.uint8)
    r, c = world.CHANGES["A"][:2]
    labels[:, r, c] = world.BARE
    for name, label in (("B", world.BARE), ("C", world.GRASS)):
        r, c = world.CHANGES[name][:2]
        labels[: n - world.W + 1, r, c] = label  # windows inside 2022; from those reaching 2023 on: forest
    attrs = {"window": world.W, "model_id": "m1", "composite_dates": json.dumps(series)}
    for b in blocks(grid, world.BLOCK):
        window = (slice(b.row0, b.row0 + b.rows), slice(b.col0, b.col0 + b.cols))
        arrays = {
            "labels": labels[(slice(None), *window)],
            "confidence": np.full((positions, b.rows, b.cols), 90, np.uint8),
            "annual": np.full((b.rows, b.cols), world.TREE, np.uint8),
        }
        write_block(world.labels_dir(root, year) / BLOCK_FILE.format(row0=b.row0, col0=b.col0), arrays, attrs)


def test_the_next_year_withdraws_a_change_it_turns_back_where_the_ground_agrees(
    root: Path, connect: Callable[[], Any]
) -> None:
    from eo_tasks.maps.pipeline import SECOND_YEAR_CHECK

    conn = connect()
    ids = _two_years(conn, root)
    _third_year(conn, root)
    values = {**world.values(root, 2022), "year": 2023, "out_dir": str(world.labels_dir(root, 2023))}
    values["cubes"] = [str(world.cube_file(root, y)) for y in (2022, 2023)]
    stored = assemble_year(conn, world.config(root), values, root / "data")

    status = {cid: (s, who) for cid, _, _, s, _, who, _ in rows(conn, CHANGES_SQL)}
    assert status[ids["B"]] == ("rejected", SECOND_YEAR_CHECK)  # the ground came back: withdrawn
    assert status[ids["C"]] == ("pending", None) and status[ids["A"]] == ("pending", None)
    assert stored.changes == 0  # no change back of B (withdrawn), none of C (the labels erred)
    maps = {
        y: read_class_map(str(MapPaths.for_year(root / "data", world.AOI, y).classes))[0]
        for y in (2022, 2023)
    }
    for name, kept in (("A", world.BARE), ("B", world.TREE), ("C", world.GRASS)):
        r, c = world.CHANGES[name][:2]
        assert (maps[2022][r, c] == kept).all() and (maps[2023][r, c] == kept).all(), name
    for year in YEARS:
        check_consistent(conn, root, year)

    before = snapshot(conn, root)["lc_change"]
    assemble_year(conn, world.config(root), values, root / "data")  # a re-run: nothing more, nothing twice
    assert snapshot(conn, root)["lc_change"] == before
