"""SLURM jobs from Airflow against the real sshd + SLURM: quoting, deferral, resubmission, kills."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from eo_tasks.core.errors import JobFailedError, JobSubmissionError
from eo_tasks.hpc.slurm import JobState, SlurmClient, render_job_script
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "plugins"))
from eo_slurm import SlurmJobOperator, SlurmJobTrigger


def _train_values(**overrides: Any) -> dict[str, Any]:
    values = dict(
        job_name="train-test",
        nodes=1,
        tasks_per_node=1,
        time_limit="00:02:00",
        signal_seconds=30,
        partition=None,
        account=None,
        gpus_per_node=0,
        modules=[],
        venv=str(REPO / ".venv-compute"),
        trainset="/nonexistent.h5",
        out_dir="/tmp/none",
        backend="pytorch",
        architecture="lstm",
        epochs=1,
        batch_size=8,
        master_port=29555,
        extra_args=[],
    )
    values.update(overrides)
    return values


def test_an_injected_partition_reaches_sbatch_quoted_and_runs_nothing(
    slurm: SlurmClient, tmp_path: Path
) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    script = render_job_script("train.sbatch.j2", _train_values(partition=f"debug; touch {marker}"))
    with pytest.raises(JobSubmissionError, match=r"(?i)partition"):
        slurm.submit(script, "inject-partition")
    time.sleep(1)
    assert not marker.exists()


def test_an_injected_value_in_the_script_body_stays_one_word(slurm: SlurmClient, tmp_path: Path) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    script = render_job_script("train.sbatch.j2", _train_values(backend=f"x; touch {marker}; echo"))
    job_id = slurm.submit(script, "inject-body")
    state = slurm.wait(job_id, timeout=120, poll_interval=0.5)
    assert state == JobState.FAILED  # the training refuses the odd backend name ...
    assert not marker.exists()  # ... and no shell ever ran the injected command


def _sleep_job(slurm: SlurmClient, seconds: int) -> str:
    return slurm.submit(f"#!/bin/bash\nsleep {seconds}\necho slept\n", f"sleep{seconds}")


def test_the_trigger_survives_an_sshd_restart(slurm: SlurmClient) -> None:
    job_id = _sleep_job(slurm, 12)
    trigger = SlurmJobTrigger("eo_hpc", job_id, poll_interval=0.5, max_unreachable=60)

    async def wait_while_sshd_restarts() -> Any:
        events = trigger.run()
        waiting = asyncio.ensure_future(events.__anext__())
        await asyncio.sleep(2)
        await asyncio.to_thread(_services, "down", "sshd")
        await asyncio.sleep(4)  # polls fail meanwhile
        await asyncio.to_thread(_services, "up", "sshd")
        return await asyncio.wait_for(waiting, timeout=120)

    event = asyncio.run(wait_while_sshd_restarts())
    assert event.payload == {"job_id": job_id, "state": "COMPLETED", "exit_code": 0}


def _services(action: str, service: str) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "services.sh"), action, service], check=True, capture_output=True
    )


def test_killing_a_deferred_task_cancels_the_job(slurm: SlurmClient) -> None:
    job_id = _sleep_job(slurm, 300)
    trigger = SlurmJobTrigger("eo_hpc", job_id)
    asyncio.run(trigger.on_kill())
    assert slurm.wait(job_id, timeout=60, poll_interval=0.5) == JobState.CANCELLED


def test_killing_a_running_task_cancels_the_job(slurm: SlurmClient, tmp_path: Path) -> None:
    (tmp_path / "sleep.sbatch.j2").write_text("#!/bin/bash\nsleep {{ seconds }}\n")
    op = SlurmJobOperator(
        task_id="sleep",
        template="sleep.sbatch.j2",
        values={"seconds": 300},
        job_name=f"kill-{uuid.uuid4().hex[:6]}",
        templates_dir=str(tmp_path),
    )
    with pytest.raises(TaskDeferred):
        op.execute({})
    assert op.job_id is not None
    op.on_kill()
    assert slurm.wait(op.job_id, timeout=60, poll_interval=0.5) == JobState.CANCELLED


def _run_operator(op: SlurmJobOperator) -> dict[str, Any]:
    """Drives the operator as Airflow does: execute, wait in the trigger, resume, repeat on resubmits."""
    try:
        op.execute({})
    except TaskDeferred as deferred:
        pending = deferred
    while True:
        trigger = pending.trigger
        event = asyncio.run(trigger.run().__anext__())
        try:
            resume = getattr(op, pending.method_name)
            return resume({}, event.payload, **(pending.kwargs or {}))  # type: ignore[no-any-return]
        except TaskDeferred as again:
            pending = again


def test_a_checkpointed_exit_is_resubmitted_and_completes(tmp_path: Path) -> None:
    state = tmp_path / "attempts"
    (tmp_path / "flaky.sbatch.j2").write_text(
        "#!/bin/bash\necho attempt >> {{ state }}\n"
        "if [[ $(wc -l < {{ state }}) -lt 2 ]]; then echo checkpointed; exit 99; fi\necho done\n"
    )
    op = SlurmJobOperator(
        task_id="flaky",
        template="flaky.sbatch.j2",
        values={"state": str(state)},
        job_name="flaky",
        templates_dir=str(tmp_path),
        poll_interval=0.5,
    )
    result = _run_operator(op)
    assert result["state"] == "COMPLETED" and result["submissions"] == 2
    assert state.read_text().count("attempt") == 2


def test_a_failing_job_fails_the_task_without_resubmission(tmp_path: Path) -> None:
    (tmp_path / "fail.sbatch.j2").write_text("#!/bin/bash\necho {{ message }}\nexit 3\n")
    op = SlurmJobOperator(
        task_id="fail",
        template="fail.sbatch.j2",
        values={"message": "bad input"},
        job_name="fail",
        templates_dir=str(tmp_path),
        poll_interval=0.5,
    )
    with pytest.raises(JobFailedError, match=r"FAILED.*after 1 submission"):
        _run_operator(op)
