"""Failure notices to people: a webhook POST or an e-mail, configured by one Airflow connection.

Off by default: without the ``eo_alerts`` connection nothing is sent. With it, every failed task of
the platform's DAGs sends one notice (DAG, run, task, try, the error's first line and the task log's
URL) to:

- a webhook: connection type ``http``, ``host`` the URL (``https://…``), e.g. a chat's incoming
  webhook; the body is JSON (``{"text": …, "dag_id": …, …}``);
- e-mail: connection type ``smtp``, ``host``/``port``/``login``/``password`` of the server, extras
  ``{"to": "ops@example.org", "from": "eo-platform@example.org", "starttls": true}``.

Lives in ``plugins/`` (on ``sys.path`` in every Airflow component) so the DAG files can attach it.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from email.message import EmailMessage
from typing import Any

from airflow.sdk import BaseNotifier, Connection

log = logging.getLogger(__name__)
ALERTS_CONN_ID = "eo_alerts"
API_BASE = "http://127.0.0.1:18080"


def notice(context: dict[str, Any]) -> dict[str, Any]:
    """What a failure notice says, from a task's context."""
    ti = context["ti"]
    error = str(context.get("exception") or "failed").splitlines()[0][:500]
    dag_id, run_id, task_id = ti.dag_id, ti.run_id, ti.task_id
    log_url = f"{API_BASE}/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"
    text = f"eo-platform: {dag_id}.{task_id} failed (run {run_id}, try {ti.try_number}): {error}\n{log_url}"
    return {
        "text": text,
        "dag_id": dag_id,
        "run_id": run_id,
        "task_id": task_id,
        "try_number": ti.try_number,
        "error": error,
        "log_url": log_url,
    }


class FailureNotifier(BaseNotifier):
    """Sends a failure notice through the ``eo_alerts`` connection, if it exists.

    Args:
        conn_id: The Airflow connection that says where notices go.
        timeout: Seconds to wait for the webhook or the mail server.
    """

    template_fields = ()

    def __init__(self, conn_id: str = ALERTS_CONN_ID, timeout: float = 10.0) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.timeout = timeout

    def notify(self, context: Any) -> None:
        """Sends the notice; a notice that cannot be sent is logged, never raised."""
        try:
            conn = Connection.get(self.conn_id)
        except Exception:  # no such connection: notices are off
            return
        message = notice(context)
        try:
            if conn.conn_type in ("smtp", "email"):
                self._mail(conn, message)
            else:
                self._post(conn, message)
        except OSError as err:
            log.warning("could not send the failure notice through %s: %s", self.conn_id, err)

    def _post(self, conn: Any, message: dict[str, Any]) -> None:
        url = conn.host if "://" in (conn.host or "") else conn.extra_dejson.get("url", "")
        if not url.startswith(("http://", "https://")):
            raise OSError(f"connection {self.conn_id}: host must be the webhook's http(s) URL")
        request = urllib.request.Request(
            url, data=json.dumps(message).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            response.read()

    def _mail(self, conn: Any, message: dict[str, Any]) -> None:
        extra = conn.extra_dejson
        mail = EmailMessage()
        mail["Subject"] = f"[eo-platform] {message['dag_id']}.{message['task_id']} failed"
        mail["From"] = extra.get("from", "eo-platform@localhost")
        mail["To"] = extra["to"]
        mail.set_content(message["text"])
        with smtplib.SMTP(conn.host, int(conn.port or 25), timeout=self.timeout) as smtp:
            if extra.get("starttls"):
                smtp.starttls()
            if conn.login:
                smtp.login(conn.login, conn.password or "")
            smtp.send_message(mail)
