"""Verified, resumable transfers of scene files.

A file is written to ``<name>.part``, resumed with an HTTP ``Range`` request after an interruption,
checked against the provider's checksum and size, and only then renamed into place. A file that
fails its checksum is moved to a quarantine folder (with a note saying why) and fetched again after
a back-off; it never reaches preprocessing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import requests

from eo_tasks.core.errors import ChecksumError, DownloadError
from eo_tasks.core.files import CHUNK, file_digest
from eo_tasks.core.redact import install_log_redaction, redact, scrubbed

log = logging.getLogger(__name__)
install_log_redaction()  # the HTTP stack logs signed URLs at DEBUG level
# Multihash function codes (https://github.com/multiformats/multicodec) of the digests hashlib
# offers: code -> (hashlib name, digest length in bytes). BLAKE2b/BLAKE2s come at every length.
MULTIHASH_CODES: dict[int, tuple[str, int]] = {
    0x11: ("sha1", 20),
    0x12: ("sha256", 32),
    0x13: ("sha512", 64),
    0x14: ("sha3_512", 64),
    0x15: ("sha3_384", 48),
    0x16: ("sha3_256", 32),
    0x17: ("sha3_224", 28),
    0x1013: ("sha224", 28),  # sha2-224 (hex 1013 is not a prefix clash: codes are varints)
    0x20: ("sha384", 48),
    0xD5: ("md5", 16),
    **{0xB200 + n: ("blake2b", n) for n in range(1, 65)},
    **{0xB240 + n: ("blake2s", n) for n in range(1, 33)},
}
_PLAIN = frozenset(
    {"md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256", "sha3_384", "sha3_512"}
)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """An unsigned LEB128 varint at ``pos``: (value, position after it)."""
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise DownloadError("malformed multihash varint")


def parse_multihash(value: str) -> tuple[str, str, int | None]:
    """Decodes a hex multihash into (hashlib algorithm, hex digest, BLAKE2 digest size or None).

    Raises:
        DownloadError: Not hex, an unknown function code, or a length that does not match the
            digest (CDSE's metadata assets carry MD5 codes with a 32-byte length: refused).
    """
    try:
        data = bytes.fromhex(value)
    except ValueError as err:
        raise DownloadError(f"multihash {value[:12]}… is not hex") from scrubbed(err)
    code, pos = _varint(data, 0)
    length, pos = _varint(data, pos)
    if code not in MULTIHASH_CODES:
        raise DownloadError(f"unsupported multihash code 0x{code:x} ({value[:8]}…)")
    algorithm, size = MULTIHASH_CODES[code]
    digest = data[pos:]
    if length != size or len(digest) != length:
        raise DownloadError(
            f"inconsistent multihash {value[:8]}…: {algorithm} digests are {size} bytes, "
            f"the header says {length} and {len(digest)} follow"
        )
    return algorithm, digest.hex(), size if algorithm.startswith("blake2") else None


def parse_checksum(checksum: str) -> tuple[str, str]:
    """Splits ``"md5:<hex>"``, ``"sha256:<hex>"`` or ``"multihash:<hex>"`` into (algorithm, hex digest).

    BLAKE2 digests come back as ``blake2b-<bits>`` / ``blake2s-<bits>``.
    """
    kind, _, value = checksum.partition(":")
    value = value.lower()
    if kind == "multihash":
        algorithm, digest, size = parse_multihash(value)
        return (f"{algorithm}-{size * 8}" if size else algorithm), digest
    if kind in _PLAIN:
        return kind, value
    raise DownloadError(f"unsupported checksum {checksum[:40]!r}")


def digest_of(path: Path, algorithm: str) -> str:
    """Hex digest of ``path`` with an algorithm as :func:`parse_checksum` names it."""
    name, _, bits = algorithm.partition("-")
    return file_digest(path, name, int(bits) // 8 if bits else None)


def verify(path: Path, checksum: str | None, size: int | None) -> None:
    """Raises :class:`ChecksumError` if ``path`` does not have the expected size and digest."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumError(f"{path.name}: {actual_size} bytes, expected {size}")
    if checksum:
        algorithm, expected = parse_checksum(checksum)
        actual = digest_of(path, algorithm)
        if actual != expected:
            raise ChecksumError(f"{path.name}: {algorithm} {actual} != published {expected}")


def quarantine(path: Path, quarantine_dir: Path, reason: str) -> Path:
    """Moves a bad file aside with a note, so it can be inspected but never used.

    One copy per bad file: a later failure of the same file replaces the copy, and its note
    lists every failure (time and reason), so retries never fill the disk.
    """
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    target = quarantine_dir / path.name.removesuffix(".part")
    shutil.move(path, target)  # replaces an earlier copy of the same file
    note = target.with_name(target.name + ".reason.txt")
    with note.open("a") as f:
        f.write(f"{stamp} {redact(reason)}\n")
    log.warning("quarantined %s: %s", target, redact(reason))
    return target


def read_end_to_end(path: Path) -> None:
    """Proves a file whole when no checksum or size was published: every block read, or every zip member.

    GDAL opens the raster and reads every block of every band (a file cut short fails on the
    first missing block); a zip (a SAFE product) has every member's CRC checked.

    Raises:
        ChecksumError: The file cannot be read to its end.
    """
    import zipfile

    from osgeo import gdal

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                raise ChecksumError(f"{path.name}: zip member {bad} is corrupt")
            return
        gdal.UseExceptions()
        dataset = gdal.Open(str(path))
        for index in range(1, dataset.RasterCount + 1):
            band = dataset.GetRasterBand(index)
            bx, by = band.GetBlockSize()
            for y in range(0, dataset.RasterYSize, by):
                for x in range(0, dataset.RasterXSize, bx):
                    w, h = min(bx, dataset.RasterXSize - x), min(by, dataset.RasterYSize - y)
                    band.ReadRaster(x, y, w, h)
    except (RuntimeError, zipfile.BadZipFile, OSError) as err:
        raise ChecksumError(f"{path.name}: not readable to its end ({err})") from scrubbed(err)


def _copy_local(source: Path, part: Path) -> None:
    with source.open("rb") as src, part.open("wb") as dst:
        shutil.copyfileobj(src, dst, CHUNK)


def _stream_http(url: str, part: Path, session: requests.Session, timeout: float) -> None:
    """Appends the rest of ``url`` to ``part``, resuming with a Range request."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with session.get(url, headers=headers, stream=True, timeout=timeout) as response:
        if response.status_code == 416:  # the part file is already complete (or longer): start over
            part.unlink()
            raise DownloadError(redact(f"{url}: range {offset}- not satisfiable; restarting"))
        response.raise_for_status()
        resumed = response.status_code == 206
        if offset and not resumed:
            log.info("%s: server ignored the Range request; downloading from the start", redact(url))
        expected = response.headers.get("Content-Length")
        written = 0
        with part.open("ab" if resumed else "wb") as f:
            for chunk in response.iter_content(CHUNK):
                f.write(chunk)
                written += len(chunk)
        if expected is not None and written < int(expected):
            raise DownloadError(redact(f"{url}: connection closed after {written} of {expected} bytes"))


def fetch(
    href: str,
    dest: Path,
    *,
    checksum: str | None = None,
    size: int | None = None,
    session: requests.Session | None = None,
    quarantine_dir: Path | None = None,
    attempts: int = 4,
    backoff: float = 1.0,
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Path:
    """Downloads (or copies) ``href`` to ``dest``, verified, atomically.

    Args:
        href: ``http(s)://`` URL, ``file://`` URL or local path.
        dest: Final path; nothing is written there unless the file verified.
        checksum: ``"<algorithm>:<hex>"`` published by the provider, if any.
        size: Published size in bytes, if any.
        session: HTTP session carrying the provider's authentication.
        quarantine_dir: Where files failing their checksum go (default: ``<dest dir>/quarantine``).
        attempts: Tries in all (network errors resume; checksum failures start over).
        backoff: Seconds before the second try, doubling after each failure.
        timeout: Seconds of network silence before a try is abandoned.
        sleep: Injected for tests.

    Returns:
        ``dest``.

    Raises:
        ChecksumError: The last try still did not match the published checksum.
        DownloadError: The last try failed for any other reason.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    quarantine_dir = quarantine_dir or dest.parent / "quarantine"
    parsed = urlparse(href)
    session = session or requests.Session()
    remote = parsed.scheme in ("http", "https")
    if checksum:
        parse_checksum(checksum)  # an unverifiable checksum fails before any transfer, not after each
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            if remote:
                _stream_http(href, part, session, timeout)
            else:
                _copy_local(Path(unquote(parsed.path) if parsed.scheme == "file" else href), part)
            verify(part, checksum, size)
            os.replace(part, dest)
            return dest
        except ChecksumError as err:
            last_error = err
            quarantine(part, quarantine_dir, f"{href}: {err}")
            if not remote:  # a static file gives the same bytes every time: no point in retrying now
                raise ChecksumError(redact(f"{href}: {err}")) from scrubbed(err)
        except FileNotFoundError as err:
            raise DownloadError(redact(f"{href}: not found")) from scrubbed(err)
        except (requests.RequestException, DownloadError, OSError) as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                raise DownloadError(redact(f"{href}: HTTP {status}")) from scrubbed(err)
            last_error = err
        if attempt < attempts:
            delay = backoff * 2 ** (attempt - 1)
            log.info(
                "%s: try %d/%d failed (%s); again in %.1fs",
                redact(href),
                attempt,
                attempts,
                redact(last_error),
                delay,
            )
            sleep(delay)
    if isinstance(last_error, ChecksumError):
        message = f"{href}: still corrupt after {attempts} tries: {last_error}"
        raise ChecksumError(redact(message)) from scrubbed(last_error)
    assert last_error is not None  # the loop ran at least once and did not return
    raise DownloadError(redact(f"{href}: failed after {attempts} tries: {last_error}")) from scrubbed(
        last_error
    )
