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


def aoi_dir() -> Path:
    """The folder of AOI files: ``$EO_AOI_DIR``, else the ``aois/`` folder of a source checkout.

    An installed package has no AOI folder of its own: AOIs are configuration, so a deployment
    sets ``EO_AOI_DIR`` (docker-compose.yml does).
    """
    value = os.environ.get("EO_AOI_DIR")
    if value:
        return Path(value)
    checkout = Path(__file__).resolve().parents[2] / "aois"
    if checkout.is_dir():
        return checkout
    raise ConfigError("EO_AOI_DIR is not set: point it at the folder of AOI YAML files")
