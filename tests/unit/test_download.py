"""eo_tasks.ingest.download against the local replay server (real HTTP, no mocks)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from eo_tasks.core.errors import ChecksumError, DownloadError
from eo_tasks.core.files import CHUNK
from eo_tasks.ingest.download import fetch, parse_checksum, verify
from tests.fixtures.hub_replay import HubReplay, Logged, pseudo_random_bytes

PATH = "/files/test/T32TPS_20210605T101031_B04_10m.tif"
# Larger than download.CHUNK: a read cut short loses what it had buffered, so resuming needs
# at least one complete chunk before the cut. Odd size: the halves are not aligned.
DATA = pseudo_random_bytes("download-test", 2 * CHUNK + 512 * 1024 + 1)
SHA256 = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def hub() -> Iterator[HubReplay]:
    with HubReplay() as server:
        server.add_file(PATH, DATA)
        yield server


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _fetch(hub: HubReplay, tmp_path: Path, **kwargs: object) -> Path:
    options: dict = {"checksum": f"sha256:{SHA256}", "size": len(DATA), "sleep": Sleeps(), "timeout": 5.0}
    options.update(kwargs)
    return fetch(hub.url(PATH), tmp_path / "B04.tif", **options)


def _range_start(request: Logged) -> int:
    match = re.fullmatch(r"bytes=(\d+)-", request.headers.get("Range", ""))
    assert match, request.headers
    return int(match.group(1))


# ---------------------------------------------------------------- checksums


def test_parse_checksum_plain_forms() -> None:
    md5 = hashlib.md5(b"x").hexdigest()
    assert parse_checksum(f"md5:{md5.upper()}") == ("md5", md5)
    assert parse_checksum(f"sha256:{SHA256}") == ("sha256", SHA256)


def test_parse_checksum_multihashes() -> None:
    md5 = hashlib.md5(DATA).hexdigest()
    assert parse_checksum(f"multihash:1220{SHA256}") == ("sha256", SHA256)
    assert parse_checksum(f"multihash:d50110{md5}") == ("md5", md5)
    assert parse_checksum(f"multihash:1220{SHA256.upper()}") == ("sha256", SHA256)


@pytest.mark.parametrize("checksum", ["multihash:1b20" + "ab" * 32, "crc32:deadbeef", "deadbeef"])
def test_parse_checksum_unsupported(checksum: str) -> None:
    with pytest.raises(DownloadError, match="unsupported"):
        parse_checksum(checksum)


def test_verify_checks_digest_and_size(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    verify(path, f"multihash:1220{SHA256}", len(DATA))
    verify(path, f"multihash:d50110{hashlib.md5(DATA).hexdigest()}", None)
    with pytest.raises(ChecksumError, match="bytes, expected"):
        verify(path, None, len(DATA) + 1)
    with pytest.raises(ChecksumError, match="published"):
        verify(path, f"sha256:{hashlib.sha256(b'other').hexdigest()}", None)


# ---------------------------------------------------------------- HTTP


def test_fetch_downloads_verified_and_atomic(hub: HubReplay, tmp_path: Path) -> None:
    dest = _fetch(hub, tmp_path)
    assert dest.read_bytes() == DATA
    assert not dest.with_name(dest.name + ".part").exists()
    assert hub.count(PATH) == 1


def test_503_then_success_is_retried_with_backoff(hub: HubReplay, tmp_path: Path) -> None:
    hub.faults.add(PATH, "status", times=2, status=503)
    sleeps = Sleeps()
    dest = _fetch(hub, tmp_path, sleep=sleeps, backoff=0.5)
    assert dest.read_bytes() == DATA
    assert hub.count(PATH) == 3
    assert sleeps == [0.5, 1.0]


def test_persistent_503_gives_up_after_attempts(hub: HubReplay, tmp_path: Path) -> None:
    hub.faults.add(PATH, "status", times=None, status=503)
    with pytest.raises(DownloadError, match="failed after 3 tries") as err:
        _fetch(hub, tmp_path, attempts=3)
    assert not isinstance(err.value, ChecksumError)
    assert hub.count(PATH) == 3
    assert not (tmp_path / "B04.tif").exists()


def test_timeout_is_retried(hub: HubReplay, tmp_path: Path) -> None:
    hub.faults.add(PATH, "timeout", times=1, delay=2.0)
    dest = _fetch(hub, tmp_path, timeout=0.3)
    assert dest.read_bytes() == DATA
    assert hub.count(PATH) == 2


def test_cut_off_download_resumes_with_range(hub: HubReplay, tmp_path: Path) -> None:
    hub.faults.add(PATH, "cutoff", times=1)
    sleeps = Sleeps()
    dest = _fetch(hub, tmp_path, sleep=sleeps)
    assert dest.read_bytes() == DATA
    first, second = hub.requests_to(PATH)
    assert "Range" not in first.headers
    offset = _range_start(second)
    assert 0 < offset <= len(DATA) // 2  # resumed from what the cut-off try had written
    assert len(sleeps) == 1


def test_cut_off_download_from_a_server_ignoring_range_ends_correct(hub: HubReplay, tmp_path: Path) -> None:
    hub.faults.add(PATH, "cutoff", times=1)
    ignore = hub.faults.add(PATH, "ignore_range", times=None)
    dest = _fetch(hub, tmp_path)
    assert dest.read_bytes() == DATA
    _, second = hub.requests_to(PATH)
    assert 0 < _range_start(second) <= len(DATA) // 2  # asked to resume, got the whole file again
    assert ignore.hits == 2


def test_stale_complete_part_file_is_restarted(hub: HubReplay, tmp_path: Path) -> None:
    (tmp_path / "B04.tif.part").write_bytes(DATA)  # left by a crash between the download and the rename
    dest = _fetch(hub, tmp_path)
    assert dest.read_bytes() == DATA
    assert [r.headers.get("Range") for r in hub.requests_to(PATH)] == [f"bytes={len(DATA)}-", None]


def test_checksum_mismatch_is_quarantined_then_refetched(hub: HubReplay, tmp_path: Path) -> None:
    hub.faults.add(PATH, "corrupt", times=1)
    quarantine = tmp_path / "q"
    dest = _fetch(hub, tmp_path, quarantine_dir=quarantine)
    assert dest.read_bytes() == DATA
    assert hub.count(PATH) == 2
    reasons = sorted(quarantine.glob("*.reason.txt"))
    bad = [p for p in quarantine.iterdir() if not p.name.endswith(".reason.txt")]
    assert len(reasons) == 1 and len(bad) == 1
    assert bad[0].name.startswith("B04.tif.")
    assert len(bad[0].read_bytes()) == len(DATA) and bad[0].read_bytes() != DATA
    reason = reasons[0].read_text()
    assert PATH in reason and "sha256" in reason


def test_persistent_corruption_raises_checksum_error(hub: HubReplay, tmp_path: Path) -> None:
    hub.faults.add(PATH, "corrupt", times=None)
    with pytest.raises(ChecksumError, match="still corrupt after 3 tries"):
        _fetch(hub, tmp_path, attempts=3)
    assert hub.count(PATH) == 3
    assert not (tmp_path / "B04.tif").exists()
    assert not (tmp_path / "B04.tif.part").exists()
    assert len(list((tmp_path / "quarantine").glob("*.reason.txt"))) == 3


def test_404_fails_without_retries(hub: HubReplay, tmp_path: Path) -> None:
    sleeps = Sleeps()
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(hub.url("/files/test/missing.tif"), tmp_path / "m.tif", sleep=sleeps, timeout=5.0)
    assert hub.count("/files/test/missing.tif") == 1
    assert sleeps == []
    assert not (tmp_path / "m.tif").exists()


def test_fetch_uses_the_given_session(hub: HubReplay, tmp_path: Path) -> None:
    session = requests.Session()
    session.headers["X-Provider"] = "replay"
    _fetch(hub, tmp_path, session=session)
    assert hub.requests_to(PATH)[0].headers["X-Provider"] == "replay"


# ---------------------------------------------------------------- local files


def test_local_path_and_file_url_are_copied_and_verified(tmp_path: Path) -> None:
    source = tmp_path / "archive dir" / "B04.tif"
    source.parent.mkdir()
    source.write_bytes(DATA)
    by_path = fetch(str(source), tmp_path / "a" / "B04.tif", checksum=f"sha256:{SHA256}", size=len(DATA))
    by_url = fetch(source.as_uri(), tmp_path / "b" / "B04.tif", checksum=f"multihash:1220{SHA256}")
    assert by_path.read_bytes() == DATA and by_url.read_bytes() == DATA
    assert "%20" in source.as_uri()


def test_local_copy_with_wrong_checksum_is_quarantined(tmp_path: Path) -> None:
    source = tmp_path / "B04.tif"
    source.write_bytes(DATA)
    wrong = hashlib.sha256(b"not this").hexdigest()
    with pytest.raises(ChecksumError):
        fetch(
            str(source), tmp_path / "out" / "B04.tif", checksum=f"sha256:{wrong}", attempts=2, sleep=Sleeps()
        )
    assert not (tmp_path / "out" / "B04.tif").exists()
    assert source.read_bytes() == DATA  # the source is never moved
    assert len(list((tmp_path / "out" / "quarantine").glob("*.reason.txt"))) == 2


def test_missing_local_file_is_a_download_error(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="not found"):
        fetch(str(tmp_path / "nope.tif"), tmp_path / "out.tif", sleep=Sleeps())
