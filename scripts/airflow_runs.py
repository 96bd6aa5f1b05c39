"""Drive and follow the platform's DAG runs through Airflow's REST API, as the UI shows them.

`make demo` and the scheduler end-to-end test use it: unpause an AOI's DAGs, trigger ingestion,
then follow each stage's run (started by the Assets the previous stage emits) with one line per
task state change, and stop with the failing task's log tail. Only the standard library: it runs
wherever the API is reachable.

Usage:
    airflow_runs.py chain AOI              unpause the AOI's DAGs, trigger ingest_<aoi>, follow the
                                           chain to an approved model
    airflow_runs.py follow-backfill AOI    follow maps_<aoi>'s newest backfill to its end
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

STAGES = ("ingest", "preprocess", "trainset", "train")
TERMINAL = {"success", "failed", "upstream_failed", "skipped", "removed"}
RUN_TERMINAL = {"success", "failed"}


class RunFailed(RuntimeError):
    """A followed DAG run failed; the message carries the failing task's log tail."""


class AirflowAPI:
    """A small client of Airflow 3's REST API (``/api/v2``), with a token from ``/auth/token``.

    Args:
        base: The api-server's URL.
        username: User for the token (None: the local stack's SimpleAuthManager, all admins).
        password: Its password.
    """

    def __init__(self, base: str, username: str | None = None, password: str | None = None) -> None:
        self.base = base.rstrip("/")
        self.username, self.password = username, password
        self._token: str | None = None

    def _fetch_token(self) -> str:
        if self.username:
            body = json.dumps({"username": self.username, "password": self.password}).encode()
            request = urllib.request.Request(
                f"{self.base}/auth/token", data=body, headers={"Content-Type": "application/json"}
            )
        else:
            request = urllib.request.Request(f"{self.base}/auth/token")
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.load(response)["access_token"])

    def call(self, method: str, path: str, body: Any = None, accept: str = "application/json") -> Any:
        """One API call; returns the decoded JSON (or text)."""
        self._token = self._token or self._fetch_token()
        request = urllib.request.Request(
            f"{self.base}/api/v2{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self._token}",
                "Content-Type": "application/json",
                "Accept": accept,
            },
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            raw = response.read()
        return json.loads(raw) if raw and accept == "application/json" else raw.decode()

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> None:
        """Waits until the DAG processor has parsed ``dag_id``."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.call("GET", f"/dags/{dag_id}")
                return
            except urllib.error.HTTPError as err:
                if err.code != 404 or time.monotonic() > deadline:
                    raise
            time.sleep(3)

    def unpause(self, dag_id: str) -> None:
        """Unpauses a DAG."""
        self.call("PATCH", f"/dags/{dag_id}?update_mask=is_paused", {"is_paused": False})

    def respond(self, dag_id: str, run_id: str, task_id: str, choice: str, map_index: int = -1) -> None:
        """Answers a human-in-the-loop task (e.g. ``Approve``), as the UI's Required actions page does."""
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{task_id}"
        self.call(
            "PATCH", f"{path}/{map_index}/hitlDetails", {"chosen_options": [choice], "params_input": {}}
        )

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Triggers a run now; returns its run id."""
        now = dt.datetime.now(dt.UTC).isoformat()
        run = self.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": now, "conf": conf or {}})
        return str(run["dag_run_id"])

    def runs(self, dag_id: str, limit: int = 25) -> list[dict[str, Any]]:
        """The DAG's newest runs first."""
        query = urllib.parse.urlencode({"order_by": "-run_after", "limit": limit})
        return list(self.call("GET", f"/dags/{dag_id}/dagRuns?{query}")["dag_runs"])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones included)."""
        path = f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances?limit=1000"
        return list(self.call("GET", path)["task_instances"])

    def log_tail(self, dag_id: str, run_id: str, ti: dict[str, Any], lines: int = 40) -> str:
        """The end of a task instance's log."""
        path = (
            f"/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}/taskInstances/{ti['task_id']}"
            f"/logs/{max(1, int(ti.get('try_number') or 1))}?map_index={ti.get('map_index', -1)}"
        )
        try:
            content = self.call("GET", path).get("content", [])
        except urllib.error.HTTPError as err:
            return f"(log unavailable: HTTP {err.code})"
        text = [c.get("event", str(c)) if isinstance(c, dict) else str(c) for c in content]
        return "\n".join(text[-lines:])


def _time(value: str | None) -> dt.datetime:
    """An API time (``…Z``) or an ISO time as an aware datetime; None as the earliest time."""
    if not value:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)  # a time without zone is UTC


def _label(ti: dict[str, Any]) -> str:
    index = ti.get("map_index", -1)
    return (
        ti["task_id"] if index in (-1, None) else f"{ti['task_id']}[{ti.get('rendered_map_index') or index}]"
    )


def follow_run(
    api: AirflowAPI,
    dag_id: str,
    run_id: str,
    say: Callable[[str], None],
    timeout: float = 3600,
    respond: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Follows one run to its end, saying each task state change; raises RunFailed on failure.

    ``respond(dag_id, run_id, ti)`` is called once for each task that waits for a person
    (human-in-the-loop ``awaiting_input``), e.g. to approve a model in a test.
    """
    started = time.monotonic()
    seen: dict[tuple[str, int], str] = {}
    while True:
        for ti in api.task_instances(dag_id, run_id):
            key = (ti["task_id"], ti.get("map_index", -1))
            state = ti.get("state") or "none"
            if seen.get(key) != state:
                seen[key] = state
                say(f"{dag_id:<22} {_label(ti):<34} {state}")
                if state == "awaiting_input" and respond is not None:
                    respond(dag_id, run_id, ti)
        run = next(r for r in api.runs(dag_id) if r["dag_run_id"] == run_id)
        if run["state"] in RUN_TERMINAL:
            if run["state"] == "failed":
                failed = [t for t in api.task_instances(dag_id, run_id) if t.get("state") == "failed"]
                tails = "\n".join(f"--- {_label(t)}:\n{api.log_tail(dag_id, run_id, t)}" for t in failed)
                raise RunFailed(f"{dag_id} run {run_id} failed:\n{tails}")
            return dict(run)
        if time.monotonic() - started > timeout:
            raise RunFailed(f"{dag_id} run {run_id} still {run['state']} after {timeout:.0f} s")
        time.sleep(3)


def next_run(api: AirflowAPI, dag_id: str, after: str, wait: float) -> str | None:
    """The id of ``dag_id``'s first run queued after ``after`` (ISO time), waiting up to ``wait`` s."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        newer = [r for r in api.runs(dag_id) if _time(r.get("queued_at")) > _time(after)]
        if newer:
            return str(min(newer, key=lambda r: _time(r.get("queued_at")))["dag_run_id"])
        time.sleep(3)
    return None


def run_chain(
    api: AirflowAPI,
    aoi: str,
    say: Callable[[str], None],
    respond: Callable[[str, str, dict[str, Any]], None] | None = None,
) -> dict[str, str]:
    """Unpauses the AOI's DAGs, triggers ingestion and follows the Asset-driven chain to a model.

    A stage whose Asset did not fire (its upstream found nothing new, e.g. a repeated demo) is
    triggered by hand, so the chain always runs to the end. Returns stage → run id.
    """
    dags = [f"{stage}_{aoi}" for stage in (*STAGES, "maps")]
    after = dt.datetime.now(dt.UTC).isoformat()
    for dag_id in dags:
        api.wait_for_dag(dag_id)
        api.unpause(dag_id)
    say(f"unpaused {', '.join(dags)}")
    runs: dict[str, str] = {}
    for stage in STAGES:
        dag_id = f"{stage}_{aoi}"
        # Unpausing ingest_<aoi> schedules its latest interval; the others start on their Assets.
        run_id = next_run(api, dag_id, after, wait=60 if stage == "ingest" else 90)
        if run_id is None:
            run_id = api.trigger(dag_id)
            why = "no scheduled run" if stage == "ingest" else "its Asset did not fire"
            say(f"{dag_id}: triggered by hand ({why})")
        else:
            say(f"{dag_id}: started ({'scheduled' if stage == 'ingest' else 'by its Asset'}, run {run_id})")
        run = follow_run(api, dag_id, run_id, say, respond=respond)
        runs[stage] = run_id
        # The next stage's run may be queued by the Asset before this run is marked finished.
        after = run.get("start_date") or after
    return runs


def follow_backfill(api: AirflowAPI, aoi: str, say: Callable[[str], None], since: str) -> list[str]:
    """Follows every run of ``maps_<aoi>`` queued since ``since`` (a backfill's years) to its end.

    Returns once the scheduler has also marked the backfill completed (a new backfill of the DAG is
    refused until then). Raises RunFailed when a year fails.
    """
    dag_id, deadline = f"maps_{aoi}", time.monotonic() + 3600
    done: list[str] = []
    while time.monotonic() < deadline:
        recent = sorted(
            (r for r in api.runs(dag_id) if _time(r.get("queued_at")) >= _time(since)),
            key=lambda r: r.get("logical_date") or "",
        )
        pending = [r for r in recent if r["dag_run_id"] not in done]
        if recent and not pending:
            wait_backfill_completed(api, dag_id, since, say)
            return done
        if not pending:
            time.sleep(3)  # the backfill's runs are not queued yet
            continue
        follow_run(api, dag_id, pending[0]["dag_run_id"], say)
        done.append(pending[0]["dag_run_id"])
    raise RunFailed(f"{dag_id}: the backfill did not end within an hour")


def wait_backfill_completed(api: AirflowAPI, dag_id: str, since: str, say: Callable[[str], None]) -> None:
    """Waits until the scheduler marks the DAG's backfills since ``since`` completed (it looks every 30 s).

    Until then Airflow refuses a new backfill of the DAG ("Another backfill is running").
    """
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        backfills = api.call("GET", f"/backfills?dag_id={dag_id}&limit=100")["backfills"]
        if all(b.get("completed_at") for b in backfills if _time(b["created_at"]) >= _time(since)):
            say(f"{dag_id}: backfill completed")
            return
        time.sleep(3)
    raise RunFailed(f"{dag_id}: the scheduler did not mark the backfill completed within 3 minutes")


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=("chain", "follow-backfill"))
    parser.add_argument("aoi")
    parser.add_argument("--since", help="follow-backfill: runs queued since this ISO time")
    args = parser.parse_args(argv)
    api = AirflowAPI(
        f"http://127.0.0.1:{os.environ.get('EO_AIRFLOW_PORT', '18080')}",
        os.environ.get("EO_AIRFLOW_USER"),
        os.environ.get("EO_AIRFLOW_PASSWORD"),
    )
    start = time.monotonic()

    def say(line: str) -> None:
        elapsed = int(time.monotonic() - start)
        print(f"[{elapsed // 60:02d}:{elapsed % 60:02d}] {line}", flush=True)

    try:
        if args.command == "chain":
            run_chain(api, args.aoi, say)
        else:
            follow_backfill(api, args.aoi, say, args.since or "")
    except RunFailed as err:
        print(err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
