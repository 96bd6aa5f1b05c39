"""Deferrable waits on the platform's store: a year's map starts as soon as its inputs exist.

``MapInputsSensor`` checks once in the worker and, while something is missing (the year's cubes,
an approved model, the previous year's map), defers to ``MapInputsTrigger``, which polls the store
from the triggerer every ``poll_interval`` seconds. A reschedule-mode sensor with an hourly poke
idled up to an hour per year in a backfill; this wait costs one short query per poll and reacts
within ``poll_interval`` once year Y−1's map is stored.

Lives in ``plugins/`` so that the triggerer can import the trigger by its class path.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Connection
from airflow.sdk.exceptions import AirflowSensorTimeout
from airflow.triggers.base import BaseTrigger, TriggerEvent

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.settings import data_dir
from eo_tasks.maps.pipeline import InferenceInputs, inference_inputs
from eo_tasks.store.connection import ConnectionFields, connect, migrate
from eo_tasks.store.scenes import SceneCatalog


def check_map_inputs(
    store: ConnectionFields, aoi_file: str, year: int, venv: str, model_id: str | None
) -> InferenceInputs:
    """One look at the store: what the year's map still waits for, or the inference job's values."""
    config = AOIConfig.load(Path(aoi_file))
    with closing(connect(store, connect_timeout=10)) as conn:
        migrate(conn)
        return inference_inputs(SceneCatalog(conn), config, year, data_dir(), venv, model_id)


class MapInputsTrigger(BaseTrigger):
    """Polls the store from the triggerer until a map year's inputs exist, or a deadline passes.

    Args:
        aoi_file: The AOI's YAML file.
        year: The map year.
        venv: The compute environment on the cluster (from the HPC connection).
        model_id: A pinned model (None: the newest approved one).
        store_conn_id: Airflow connection of the PostGIS store.
        poll_interval: Seconds between looks.
        deadline: ISO time after which the wait gives up.
    """

    def __init__(
        self,
        aoi_file: str,
        year: int,
        venv: str,
        model_id: str | None,
        store_conn_id: str,
        poll_interval: float,
        deadline: str,
    ) -> None:
        super().__init__()
        self.aoi_file, self.year, self.venv, self.model_id = aoi_file, year, venv, model_id
        self.store_conn_id, self.poll_interval, self.deadline = store_conn_id, poll_interval, deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and arguments, to rebuild the trigger in the triggerer."""
        return (
            "eo_waits.MapInputsTrigger",
            {
                "aoi_file": self.aoi_file,
                "year": self.year,
                "venv": self.venv,
                "model_id": self.model_id,
                "store_conn_id": self.store_conn_id,
                "poll_interval": self.poll_interval,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Looks every ``poll_interval`` seconds; logs what is missing whenever that changes."""
        store = await Connection.async_get(self.store_conn_id)
        deadline = dt.datetime.fromisoformat(self.deadline)
        said: tuple[str, ...] = ()
        while True:
            found = await asyncio.to_thread(
                check_map_inputs, store, self.aoi_file, self.year, self.venv, self.model_id
            )
            if found.values is not None:
                yield TriggerEvent({"status": "ready", "values": found.values})
                return
            if found.missing != said:
                self.log.info("year %d waits for: %s", self.year, ", ".join(found.missing))
                said = found.missing
            if dt.datetime.now(dt.UTC) > deadline:
                yield TriggerEvent({"status": "timeout", "missing": list(found.missing)})
                return
            await asyncio.sleep(self.poll_interval)


class MapInputsSensor(BaseOperator):
    """Waits (deferred) until a map year's inputs exist; returns the inference job's values.

    The year is the run's logical date's year; the ``model_id`` param pins a model (it must be
    approved), otherwise the newest approved model is used and recorded with the map.

    Args:
        aoi_file: The AOI's YAML file.
        hpc_conn_id: Airflow SSH connection of the HPC (its extra ``compute_venv``).
        store_conn_id: Airflow connection of the PostGIS store.
        poll_interval: Seconds between looks in the triggerer.
        wait: How long to wait at most.
    """

    def __init__(
        self,
        *,
        aoi_file: str,
        hpc_conn_id: str,
        store_conn_id: str = "eo_postgis",
        poll_interval: float = 15.0,
        wait: dt.timedelta = dt.timedelta(days=7),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aoi_file, self.hpc_conn_id, self.store_conn_id = aoi_file, hpc_conn_id, store_conn_id
        self.poll_interval, self.wait = poll_interval, wait

    def execute(self, context: Any) -> dict[str, Any]:
        """Looks once; defers to the trigger while inputs are missing."""
        year = int(context["logical_date"].year)
        venv = Connection.get(self.hpc_conn_id).extra_dejson["compute_venv"]
        model_id = (context.get("params") or {}).get("model_id") or None
        found = check_map_inputs(Connection.get(self.store_conn_id), self.aoi_file, year, venv, model_id)
        if found.values is not None:
            self.log.info("year %d: inputs ready (model %s)", year, found.values["model_id"])
            return found.values
        self.log.info("year %d waits for: %s (deferred)", year, ", ".join(found.missing))
        deadline = dt.datetime.now(dt.UTC) + self.wait
        self.defer(
            trigger=MapInputsTrigger(
                self.aoi_file,
                year,
                venv,
                model_id,
                self.store_conn_id,
                self.poll_interval,
                deadline.isoformat(),
            ),
            method_name="execute_complete",
        )

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, Any]:
        """The trigger found the inputs, or gave up."""
        if event["status"] != "ready":
            raise AirflowSensorTimeout(f"gave up waiting for: {', '.join(event['missing'])}")
        self.log.info("inputs ready (model %s)", event["values"]["model_id"])
        return dict(event["values"])
