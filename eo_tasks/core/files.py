"""Files that readers never see half of (a temporary name, then an atomic rename), and file digests."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: Path, suffix: str = "") -> Iterator[Path]:
    """Yields a temporary path next to ``path``; renames it into place if the block succeeds.

    The name is unique per process and thread (the review UI's threads may rewrite one map), and
    the temporary file is removed whatever happens.

    Args:
        path: The final path (its folder is created).
        suffix: Appended to the temporary name, for writers that choose a format by extension.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: Path, data: Any, sort_keys: bool = True) -> Path:
    """Writes indented JSON through :func:`atomic_path` (reports, model cards, STAC documents)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=sort_keys) + "\n")
    return path


CHUNK = 1 << 20


def file_digest(path: Path, algorithm: str = "sha256", digest_size: int | None = None) -> str:
    """Hex digest of a file, read in chunks (``digest_size`` in bytes for BLAKE2's variable lengths)."""
    digest: Any
    if algorithm in ("blake2b", "blake2s") and digest_size:
        digest = getattr(hashlib, algorithm)(digest_size=digest_size)
    else:
        digest = hashlib.new(algorithm)
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
