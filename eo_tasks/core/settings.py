"""Deployment settings that come from the environment, not from AOI files.

``EO_DATA_DIR`` is the root of everything the platform writes (scenes, datacubes, models, maps):
a shared filesystem visible to the Airflow workers and the HPC nodes.
"""

from __future__ import annotations

import os
from pathlib import Path

from eo_tasks.core.errors import ConfigError


def data_dir() -> Path:
    """The platform's data root, ``$EO_DATA_DIR``."""
    value = os.environ.get("EO_DATA_DIR")
    if not value:
        raise ConfigError("EO_DATA_DIR is not set: point it at the platform's shared data directory")
    return Path(value)
