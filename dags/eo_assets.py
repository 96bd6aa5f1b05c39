"""The Assets that link an AOI's DAGs, one function per stage's output. Not a DAG file.

``scenes_<aoi>`` (ingest → preprocess), ``cubes_<aoi>`` (preprocess → trainset), ``trainset_<aoi>``
(trainset → train), ``model_<aoi>`` (train → maps and people), ``maps_<aoi>`` (maps → review, users).
"""

from __future__ import annotations

from airflow.sdk import Asset


def scenes_asset(aoi_name: str) -> Asset:
    """Announces new ready scenes of an AOI (ingest → preprocess)."""
    return Asset(name=f"scenes_{aoi_name}", uri=f"eo://scenes/{aoi_name}", group="eo-scenes")


def cube_asset(aoi_name: str) -> Asset:
    """Announces new or rebuilt datacubes of an AOI (preprocess → training sets and maps)."""
    return Asset(name=f"cubes_{aoi_name}", uri=f"eo://cubes/{aoi_name}", group="eo-cubes")


def trainset_asset(aoi_name: str) -> Asset:
    """Announces a new multi-year training set of an AOI (training sets → model training)."""
    return Asset(name=f"trainset_{aoi_name}", uri=f"eo://trainset/{aoi_name}", group="eo-trainsets")


def model_asset(aoi_name: str) -> Asset:
    """Announces a newly registered model of an AOI (training → yearly maps)."""
    return Asset(name=f"model_{aoi_name}", uri=f"eo://models/{aoi_name}", group="eo-models")


def maps_asset(aoi_name: str) -> Asset:
    """Announces a new or replaced yearly map of an AOI (for the review UI and downstream users)."""
    return Asset(name=f"maps_{aoi_name}", uri=f"eo://maps/{aoi_name}", group="eo-maps")
