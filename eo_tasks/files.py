"""Writing files so that readers never see half of one: a temporary name, then an atomic rename."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


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
