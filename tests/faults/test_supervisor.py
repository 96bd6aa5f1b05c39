"""Fault: a supervised Airflow process dies (as the scheduler, triggerer and DAG processor did after a
12 s PostgreSQL outage). The supervisor of ``services.sh up scheduler`` restarts it, with backoff, and
``services.sh status`` says plainly what is down or unhealthy instead of "ok".

The shared scheduler of the machine is never touched: the supervisor here runs with its own run
directory and a stand-in for the ``airflow`` command (``EO_AIRFLOW_BIN``) whose parts sleep and whose
``jobs check`` answers from a file, so the kill, the restart and the health report are real, and
the test's processes are the only ones it signals.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

SERVICES_SH = REPO / "scripts" / "services.sh"
PARTS = ("dag-processor", "triggerer", "scheduler")
FAKE_AIRFLOW = """#!/bin/bash
# Stand-in for `airflow PART` (sleeps like a service) and `airflow jobs check`
# (healthy while $FAKE/healthy exists).
if [[ $1 == jobs ]]; then [[ -e "$FAKE/healthy" ]]; exit $?; fi
echo "fake airflow $1 started (pid $$)"
exec sleep 100000
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A private run directory, the stand-in ``airflow`` and the supervisor's environment."""
    if os.geteuid() != 0:
        pytest.skip("services.sh needs root, as on the service machines")
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "airflow").write_text(FAKE_AIRFLOW)
    (fake / "airflow").chmod(0o755)
    run = tmp_path / "run"
    env = {
        **os.environ,
        "EO_RUN_DIR": str(run),
        "AIRFLOW_HOME": str(run / "airflow"),
        "EO_AIRFLOW_BIN": str(fake / "airflow"),
        "EO_AIRFLOW_PORT": str(_closed_port()),  # no api-server: health comes from `airflow jobs check`
        "EO_SUPERVISE_INTERVAL": "1",
        "EO_SUPERVISE_BACKOFF": "2",
        "FAKE": str(fake),
    }
    env.pop("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", None)
    run.mkdir()
    started: list[int] = []
    try:
        yield {"env": env, "run": run, "fake": fake, "started": started}
    finally:  # stop only what this test started: the pids in its own run directory
        for pidfile in run.glob("*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
        for pid in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def _sh(stack: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SERVICES_SH), *args], env=stack["env"], capture_output=True, text=True, timeout=60
    )


def _pid(stack: dict[str, Any], name: str) -> int | None:
    path = stack["run"] / f"airflow-{name}.pid"
    try:
        pid = int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _alive(pid) else None


def test_a_killed_part_is_restarted_with_backoff_and_status_tells_the_truth(stack: dict[str, Any]) -> None:
    run, log = stack["run"], stack["run"] / "airflow" / "supervisor.log"
    supervisor = subprocess.Popen(
        ["bash", str(SERVICES_SH), "supervise"],
        env=stack["env"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # what `up scheduler` starts in the background
    stack["started"].append(supervisor.pid)
    (run / "airflow-supervisor.pid").write_text(str(supervisor.pid))
    _wait(lambda: all(_pid(stack, p) for p in PARTS), 15, "the supervisor to start all three parts")

    (stack["fake"] / "healthy").touch()
    ok = _sh(stack, "status", "scheduler")
    assert ok.returncode == 0 and "scheduler: ok" in ok.stdout, ok.stdout + ok.stderr

    # Alive but without a healthy heartbeat (e.g. stuck on a dead database connection): not ok.
    (stack["fake"] / "healthy").unlink()
    stuck = _sh(stack, "status", "scheduler")
    assert stuck.returncode == 1 and "triggerer runs" in stuck.stdout and "not healthy" in stuck.stdout
    (stack["fake"] / "healthy").touch()

    # SIGKILL the triggerer: the supervisor restarts it and says so in its log.
    old = _pid(stack, "triggerer")
    assert old is not None
    killed_at = time.monotonic()
    os.kill(old, signal.SIGKILL)
    new = _wait(lambda: (p := _pid(stack, "triggerer")) and p != old and p, 15, "the triggerer's restart")
    first_restart = time.monotonic() - killed_at
    assert "triggerer was not running: restarted" in log.read_text()

    # Killed again at once: the next restart waits for the backoff (2 s, doubled per failure).
    killed_at = time.monotonic()
    os.kill(new, signal.SIGKILL)
    newer = _wait(lambda: (p := _pid(stack, "triggerer")) and p != new and p, 20, "the second restart")
    second_restart = time.monotonic() - killed_at
    assert second_restart >= 3.0, f"restarted after {second_restart:.1f}s: no backoff"
    assert _alive(newer) and all(_pid(stack, p) for p in PARTS)
    assert _sh(stack, "status", "scheduler").returncode == 0
    print(f"restart after a kill: {first_restart:.1f}s, after a second kill: {second_restart:.1f}s")

    # `down` stops the supervisor first (nothing comes back), then the three parts.
    down = _sh(stack, "down", "scheduler")
    assert down.returncode == 0, down.stderr
    assert not _alive(supervisor.pid) or supervisor.poll() is not None
    time.sleep(3)  # longer than the supervisor's interval: nothing is restarted
    assert not list(run.glob("airflow-*.pid")) and not any(_alive(p) for p in (old, new, newer))
    gone = _sh(stack, "status", "scheduler")
    assert (
        gone.returncode == 1
        and "is not running" in gone.stdout
        and "supervisor is not running" in gone.stdout
    )
    assert "supervisor: stopping" in log.read_text()
