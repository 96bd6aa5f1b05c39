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

log = logging.getLogger(__name__)
# Multihash prefixes (code, length) of the digests STAC's file:checksum uses in practice.
_MULTIHASH = {"1220": "sha256", "d50110": "md5", "1340": "sha512"}


def parse_checksum(checksum: str) -> tuple[str, str]:
    """Splits ``"md5:<hex>"``, ``"sha256:<hex>"`` or ``"multihash:<hex>"`` into (algorithm, hex digest)."""
    kind, _, value = checksum.partition(":")
    value = value.lower()
    if kind == "multihash":
        for prefix, algorithm in _MULTIHASH.items():
            if value.startswith(prefix):
                return algorithm, value[len(prefix) :]
        raise DownloadError(f"unsupported multihash {value[:8]}…")
    if kind in ("md5", "sha256", "sha512", "sha3_256"):
        return kind, value
    raise DownloadError(f"unsupported checksum {checksum!r}")


def verify(path: Path, checksum: str | None, size: int | None) -> None:
    """Raises :class:`ChecksumError` if ``path`` does not have the expected size and digest."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise ChecksumError(f"{path.name}: {actual_size} bytes, expected {size}")
    if checksum:
        algorithm, expected = parse_checksum(checksum)
        actual = file_digest(path, algorithm)
        if actual != expected:
            raise ChecksumError(f"{path.name}: {algorithm} {actual} != published {expected}")


def quarantine(path: Path, quarantine_dir: Path, reason: str) -> Path:
    """Moves a bad file aside with a note, so it can be inspected but never used."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    target = quarantine_dir / f"{path.name.removesuffix('.part')}.{stamp}"
    shutil.move(path, target)
    target.with_name(target.name + ".reason.txt").write_text(reason + "\n")
    log.warning("quarantined %s: %s", target, reason)
    return target


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
            raise DownloadError(f"{url}: range {offset}- not satisfiable; restarting")
        response.raise_for_status()
        resumed = response.status_code == 206
        if offset and not resumed:
            log.info("%s: server ignored the Range request; downloading from the start", url)
        expected = response.headers.get("Content-Length")
        written = 0
        with part.open("ab" if resumed else "wb") as f:
            for chunk in response.iter_content(CHUNK):
                f.write(chunk)
                written += len(chunk)
        if expected is not None and written < int(expected):
            raise DownloadError(f"{url}: connection closed after {written} of {expected} bytes")


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
    last_error: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            if parsed.scheme in ("http", "https"):
                _stream_http(href, part, session, timeout)
            else:
                _copy_local(Path(unquote(parsed.path) if parsed.scheme == "file" else href), part)
            verify(part, checksum, size)
            os.replace(part, dest)
            return dest
        except ChecksumError as err:
            last_error = err
            quarantine(part, quarantine_dir, f"{href}: {err}")
        except FileNotFoundError as err:
            raise DownloadError(f"{href}: not found") from err
        except (requests.RequestException, DownloadError, OSError) as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            if status is not None and 400 <= status < 500 and status not in (408, 429):
                raise DownloadError(f"{href}: HTTP {status}") from err
            last_error = err
        if attempt < attempts:
            delay = backoff * 2 ** (attempt - 1)
            log.info("%s: try %d/%d failed (%s); again in %.1fs", href, attempt, attempts, last_error, delay)
            sleep(delay)
    if isinstance(last_error, ChecksumError):
        raise ChecksumError(f"{href}: still corrupt after {attempts} tries: {last_error}") from last_error
    raise DownloadError(f"{href}: failed after {attempts} tries: {last_error}") from last_error
