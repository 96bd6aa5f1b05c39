"""The fault suite (issue 15): each test injects one fault and checks that nothing is lost or duplicated,
that files agree with rows, and that the message names the cause.

Faults go into the real, SHARED services; each one is short and undone in `finally`.

The services (sshd, slurmd, slurmctld, PostgreSQL) serve every test and agent on the machine: a
test that stops one restarts it the way ``scripts/services.sh`` does, whatever happens.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.integration.conftest import _connections, slurm  # noqa: F401 (shared fixtures)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/faults/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _pid(pidfile: Path) -> int | None:
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def run_dir() -> Path:
    """The service stack's state folder (``$EO_RUN_DIR``)."""
    return Path(os.environ["EO_RUN_DIR"]).resolve()  # the real folder, not a worktree's link


def stop_daemon(pidfile: Path, sig: signal.Signals = signal.SIGTERM) -> None:
    """Stops the daemon of ``pidfile`` (as services.sh's stop_pidfile: signal, wait up to 10 s)."""
    pid = _pid(pidfile)
    if pid is None:
        return
    os.kill(pid, sig)
    for _ in range(50):
        if _pid(pidfile) is None or not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.2)


def start_sshd() -> None:
    """Starts sshd as ``services.sh up sshd`` does, unless it runs."""
    ssh = run_dir() / "ssh"
    if _pid(ssh / "sshd.pid") is None:
        subprocess.run(
            ["/usr/sbin/sshd", "-f", str(ssh / "sshd_config"), "-E", str(ssh / "sshd.log")], check=True
        )
    _wait(lambda: _pid(ssh / "sshd.pid") is not None, "sshd")


def start_slurmd() -> None:
    """Starts slurmd as ``services.sh up slurm`` does, unless it runs, and waits for the node."""
    if _pid(run_dir() / "slurm" / "slurmd.pid") is None:
        subprocess.run(["slurmd"], check=True)

    def node_ready() -> bool:
        node = subprocess.run(["hostname", "-s"], capture_output=True, text=True).stdout.strip()
        state = subprocess.run(["sinfo", "-h", "-n", node, "-o", "%T"], capture_output=True, text=True).stdout
        if state.startswith(("down", "drain")):
            subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True)
        return state.strip().rstrip("*") in ("idle", "mixed", "allocated", "completing")

    _wait(node_ready, "slurm node")


def _wait(ready: object, what: str, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if ready():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not come back within {limit:.0f}s")
