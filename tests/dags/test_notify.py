"""Failure notices: a failed task POSTs one notice to the `eo_alerts` webhook; without it, nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.dag_processing.dagbag import DagBag
from eo_notify import FailureNotifier

from tests.conftest import REPO


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A webhook on loopback that keeps what it is sent."""
    received: list[dict[str, Any]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def _context() -> dict[str, Any]:
    """What Airflow hands a failure callback (the fields the notice reads)."""
    ti = SimpleNamespace(dag_id="maps_demo", run_id="backfill__2022-01-01", task_id="assemble", try_number=2)
    return {"ti": ti, "exception": ValueError("the reference map is unreadable\nsecond line")}


def test_a_failure_sends_one_notice(
    webhook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = webhook
    monkeypatch.setenv("AIRFLOW_CONN_EO_ALERTS", json.dumps({"conn_type": "http", "host": url}))
    FailureNotifier().notify(_context())
    assert len(received) == 1
    notice = received[0]
    assert (notice["dag_id"], notice["task_id"], notice["try_number"]) == ("maps_demo", "assemble", 2)
    assert notice["error"] == "the reference map is unreadable"
    assert "maps_demo.assemble failed" in notice["text"] and notice["log_url"].endswith("/tasks/assemble")


def test_without_the_connection_nothing_is_sent(webhook: tuple[str, list[dict[str, Any]]]) -> None:
    _, received = webhook
    FailureNotifier().notify(_context())
    assert received == []


def test_an_unreachable_webhook_is_logged_not_raised(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_EO_ALERTS", json.dumps({"conn_type": "http", "host": "http://127.0.0.1:9/"})
    )
    FailureNotifier(timeout=2).notify(_context())
    assert "could not send the failure notice" in caplog.text


def test_every_platform_dag_sends_failure_notices() -> None:
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert bag.dags
    for dag_id, dag in bag.dags.items():
        callbacks = dag.default_args.get("on_failure_callback")
        callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
        # by name: Airflow's plugin loader may hold its own copy of the plugins' modules
        assert any(type(c).__name__ == "FailureNotifier" for c in callbacks), f"{dag_id}: no failure notices"
