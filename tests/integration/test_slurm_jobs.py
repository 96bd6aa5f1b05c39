"""SLURM jobs from Airflow against the real sshd + SLURM: quoting, deferral, resubmission, kills."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflow.sdk.exceptions import TaskDeferred

from eo_tasks.core.errors import ConfigError, JobFailedError
from eo_tasks.hpc.slurm import JobState, SlurmClient, render_job_script, run_key
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


def test_an_injected_partition_is_refused_before_anything_reaches_the_cluster(tmp_path: Path) -> None:
    marker = tmp_path / f"pwned-{uuid.uuid4().hex}"
    with pytest.raises(ConfigError, match=r"train\.sbatch\.j2\.partition"):
        render_job_script("train.sbatch.j2", _train_values(partition=f"debug; touch {marker}"))
    with pytest.raises(ConfigError, match=r"train\.sbatch\.j2\.account: control characters"):
        render_job_script("train.sbatch.j2", _train_values(account=f"x\ntouch {marker}\n#"))
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


# sshd stopped during a wait, slurmd killed mid-job: tests/faults/test_slurm_faults.py.


def test_killing_a_deferred_task_cancels_the_job(slurm: SlurmClient) -> None:
    job_id = _sleep_job(slurm, 300)
    trigger = SlurmJobTrigger("eo_hpc", job_id)
    asyncio.run(trigger.on_kill())
    assert slurm.wait(job_id, timeout=60, poll_interval=0.5) == JobState.CANCELLED
    assert "by the platform: the task was killed" in slurm.status(job_id).describe(job_id)


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
    with pytest.raises(JobFailedError, match=r"(?s)FAILED.*exit code 3.*after 1 submission.*bad input"):
        _run_operator(op)


def test_the_trigger_streams_output_live_over_one_connection(
    slurm: SlurmClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Each line the job prints reaches the task log within a poll interval; one SSH handshake."""
    script = (
        '#!/bin/bash\nfor i in 1 2 3 4 5 6; do echo "epoch $i loss 0.$i at $(date +%s.%N)"; sleep 1.5; done\n'
    )
    job_id = slurm.submit(script, "live")
    trigger = SlurmJobTrigger("eo_hpc", job_id, slurm.work_dir, poll_interval=1.0)
    seen: dict[int, float] = {}

    class Stamp:
        """Stands in for the trigger's logger (whose records the triggerer writes to the task log)."""

        def _record(self, message: str, *args: Any) -> None:
            now = time.time()
            for line in (message % args).splitlines():
                if line.startswith("epoch "):
                    seen.setdefault(int(line.split()[1]), now - float(line.split()[-1]))

        info = warning = error = _record

    trigger._log = Stamp()  # type: ignore[assignment]
    event = asyncio.run(asyncio.wait_for(trigger.run().__anext__(), timeout=120))
    assert event.payload["state"] == "COMPLETED"
    assert sorted(seen) == [1, 2, 3, 4, 5, 6]  # every line, once
    live = [seen[i] for i in range(1, 6)]  # printed while the job still ran
    print(f"delay from a job's line to the task log: max {max(live):.2f}s, mean {sum(live) / 5:.2f}s")
    assert max(live) < 1.0 + 3.0  # one poll interval plus a poll's own round trips
    assert trigger.connections == 1


def _operator(tmp_path: Path, seconds: int, name: str) -> SlurmJobOperator:
    (tmp_path / "sleep.sbatch.j2").write_text("#!/bin/bash\n#SBATCH --time=00:05:00\nsleep {{ seconds }}\n")
    return SlurmJobOperator(
        task_id="sleep",
        template="sleep.sbatch.j2",
        values={"seconds": seconds, "time_limit": "00:05:00"},
        job_name=name,
        templates_dir=str(tmp_path),
        poll_interval=0.5,
    )


class _TI:
    """The task instance fields the operator reads (a real one needs a scheduler)."""

    def __init__(self, run_id: str, try_number: int) -> None:
        self.dag_id, self.run_id, self.task_id, self.map_index = "slurm_test", run_id, "sleep", -1
        self.try_number = try_number
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def test_a_retry_adopts_the_live_job_of_its_run_key(slurm: SlurmClient, tmp_path: Path) -> None:
    run_id = f"manual__{uuid.uuid4().hex}"
    first, second = _operator(tmp_path, 60, "adopt"), _operator(tmp_path, 60, "adopt")
    try:
        with pytest.raises(TaskDeferred):
            first.execute({"ti": _TI(run_id, 1)})
        ti = _TI(run_id, 2)
        with pytest.raises(TaskDeferred):
            second.execute({"ti": ti})
        assert second.job_id == first.job_id and ti.xcom["slurm_job_id"] == first.job_id
        key = run_key("slurm_test", run_id, "sleep", -1)
        assert slurm.find_live(key) == first.job_id
    finally:
        if first.job_id:
            slurm.cancel(first.job_id, "by the test")


def test_a_forgotten_job_is_decided_from_its_exit_status_file(slurm: SlurmClient) -> None:
    ok = slurm.submit("#!/bin/bash\necho fine\n", "exit-ok")
    bad = slurm.submit("#!/bin/bash\nexit 7\n", "exit-bad")
    assert slurm.wait(ok, 60, 0.5) == JobState.COMPLETED and slurm.wait(bad, 60, 0.5) == JobState.FAILED
    # What status() falls back to once scontrol and sacct have forgotten the job (MinJobAge, no accounting):
    assert slurm.status_from_files(ok).state == JobState.COMPLETED
    gone = slurm.status_from_files(bad)
    assert (gone.state, gone.exit_code) == (JobState.FAILED, 7) and "forgotten" in gone.detail
    never = slurm.status_from_files("999999999")
    assert never.state == JobState.FAILED and "left no exit status" in never.detail
