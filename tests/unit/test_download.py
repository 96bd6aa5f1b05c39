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


# Every multihash code hashlib can compute, with its digest length (multicodec table).
_CODES = [
    ("11", "sha1", None),
    ("12", "sha256", None),
    ("13", "sha512", None),
    ("14", "sha3_512", None),
    ("15", "sha3_384", None),
    ("16", "sha3_256", None),
    ("17", "sha3_224", None),
    ("20", "sha384", None),
    ("d501", "md5", None),
    ("b220", "blake2b", 32),  # blake2b-256 = 0xb220
    ("b240", "blake2b", 64),  # blake2b-512
    ("b250", "blake2s", 16),  # blake2s-128 = 0xb250
    ("b260", "blake2s", 32),  # blake2s-256
]


def _varint_hex(code: int) -> str:
    out = bytearray()
    while True:
        byte, code = code & 0x7F, code >> 7
        out.append(byte | (0x80 if code else 0))
        if not code:
            return out.hex()


@pytest.mark.parametrize(("code", "algorithm", "size"), _CODES)
def test_every_hashlib_multihash_verifies(
    tmp_path: Path, code: str, algorithm: str, size: int | None
) -> None:
    digest = getattr(hashlib, algorithm)(digest_size=size) if size else hashlib.new(algorithm)
    digest.update(DATA)
    raw = digest.digest()
    varint = _varint_hex(int(code, 16)) if code != "d501" else "d501"
    path = tmp_path / "f.bin"
    path.write_bytes(DATA)
    checksum = f"multihash:{varint}{len(raw):02x}{raw.hex()}"
    verify(path, checksum, len(DATA))
    flipped = raw[:-1] + bytes([raw[-1] ^ 1])
    with pytest.raises(ChecksumError):
        verify(path, f"multihash:{varint}{len(raw):02x}{flipped.hex()}", None)


def test_real_cdse_checksums_parse() -> None:
    # values from the real CDSE item (tests/fixtures/recorded/real/cdse_s2l2a_item.json)
    b02 = "1620224759635fcc8684cf2c5de1c1e96e222558baeba515e8768cecf9842ed70fd5"
    assert parse_checksum(f"multihash:{b02}") == ("sha3_256", b02[4:])
    assert parse_checksum("multihash:d5011054939b72925a0b810b35a36f2bb8c56e")[0] == "md5"
    # CDSE's metadata assets: MD5 code with a 32-byte length, which cannot be an MD5 digest
    quirk = "d5012097f6a31564beed318f8d83aca261a88aae121918efd704355a7a2c0929fb7441"
    with pytest.raises(DownloadError, match="inconsistent"):
        parse_checksum(f"multihash:{quirk}")


def test_unverifiable_checksum_fails_before_any_transfer(hub: HubReplay, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="unsupported"):
        _fetch(hub, tmp_path, checksum="multihash:1b20" + "ab" * 32)
    assert hub.count(PATH) == 0


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
    assert bad[0].name == "B04.tif"
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
    # one copy per bad file, whatever the number of tries; the note lists every try
    assert [p.name for p in sorted((tmp_path / "quarantine").iterdir())] == ["B04.tif", "B04.tif.reason.txt"]
    assert len((tmp_path / "quarantine" / "B04.tif.reason.txt").read_text().splitlines()) == 3


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
    sleeps = Sleeps()
    with pytest.raises(ChecksumError):
        fetch(str(source), tmp_path / "out" / "B04.tif", checksum=f"sha256:{wrong}", attempts=4, sleep=sleeps)
    assert not (tmp_path / "out" / "B04.tif").exists()
    assert source.read_bytes() == DATA  # the source is never moved
    # a static file gives the same bytes every time: one try, one quarantined copy, no back-off
    assert sleeps == []
    assert len(list((tmp_path / "out" / "quarantine").glob("*.reason.txt"))) == 1


def test_missing_local_file_is_a_download_error(tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="not found"):
        fetch(str(tmp_path / "nope.tif"), tmp_path / "out.tif", sleep=Sleeps())


# ---------------------------------------------------------------- secrets

SAS = "st=2024-01-01T00%3A00Z&se=2024-01-02T00%3A00Z&sp=rl&sv=2021-06-08&sr=c&skoid=abc&sig=S3cr3tSig%3D"


def test_signed_url_secrets_never_reach_errors_or_quarantine_notes(hub: HubReplay, tmp_path: Path) -> None:
    hub.faults.add(PATH, "corrupt", times=None)
    url = f"{hub.url(PATH)}?{SAS}"
    with pytest.raises(ChecksumError) as caught:
        fetch(url, tmp_path / "B04.tif", checksum=f"sha256:{SHA256}", attempts=2, sleep=Sleeps(), timeout=5.0)
    notes = (tmp_path / "quarantine" / "B04.tif.reason.txt").read_text()
    for text in (str(caught.value), notes):
        assert "S3cr3tSig" not in text and "skoid=abc" not in text
        assert "sig=REDACTED" in text and PATH in text


def test_redact_covers_tokens_and_userinfo() -> None:
    from eo_tasks.core.redact import redact

    text = redact(
        "GET https://x.blob.core.windows.net/c/b.tif?" + SAS + " Authorization: Bearer eyJ.a.b "
        "https://user:pw@hub/x?token=t0k&X-Amz-Signature=abc&keep=1"
    )
    assert "S3cr3t" not in text and "eyJ" not in text and "pw@" not in text and "t0k" not in text
    assert "abc" not in text.replace("skoid=REDACTED", "") and "keep=1" in text
