"""Failure notices: a failed task POSTs one notice to the `eo_alerts` webhook; without it, nothing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pendulum
import pytest
from airflow.sdk import dag, task
from eo_notify import FailureNotifier


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


def _failing_dag() -> Any:
    @dag(
        dag_id="notify_probe",
        schedule=None,
        start_date=pendulum.datetime(2021, 1, 1, tz="UTC"),
        default_args={"retries": 0, "on_failure_callback": FailureNotifier()},
    )
    def probe() -> None:
        @task
        def breaks() -> None:
            raise ValueError("the reference map is unreadable")

        breaks()

    return probe()


def test_a_failed_task_sends_one_notice(
    webhook: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, received = webhook
    monkeypatch.setenv("AIRFLOW_CONN_EO_ALERTS", json.dumps({"conn_type": "http", "host": url}))
    run = _failing_dag().test()
    assert str(run.state) == "failed"
    assert len(received) == 1
    notice = received[0]
    assert (notice["dag_id"], notice["task_id"]) == ("notify_probe", "breaks")
    assert (
        "the reference map is unreadable" in notice["error"]
        and "notify_probe.breaks failed" in notice["text"]
    )


def test_without_the_connection_nothing_is_sent(webhook: tuple[str, list[dict[str, Any]]]) -> None:
    _, received = webhook
    run = _failing_dag().test()
    assert str(run.state) == "failed"
    assert received == []
