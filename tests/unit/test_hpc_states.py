"""SLURM job-state parsing and classification."""

from __future__ import annotations

import pytest

from eo_tasks.core.errors import ConfigError, EOError, HPCError, JobFailedError
from eo_tasks.hpc.slurm import JobState, array_state


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("COMPLETED", JobState.COMPLETED),
        ("CANCELLED by 0", JobState.CANCELLED),
        ("OUT_OF_ME+", JobState.OUT_OF_MEMORY),  # sacct truncates long names
        ("NODE_FAIL\n", JobState.NODE_FAIL),
        ("PENDING", JobState.PENDING),
        ("SPECIAL_EXIT", JobState.SPECIAL_EXIT),
        ("STOPPED", JobState.STOPPED),
        ("REQUEUED", JobState.REQUEUED),
        ("REQUEUE_H+", JobState.REQUEUE_HOLD),
        ("RESIZING", JobState.RESIZING),
        ("DEADLINE", JobState.DEADLINE),
    ],
)
def test_parse(text: str, state: JobState) -> None:
    assert JobState.parse(text) is state


@pytest.mark.parametrize("text", ["", "EXPLODED", "  ", "REQUEUE+"])
def test_parse_rejects_unknown_states(text: str) -> None:
    with pytest.raises(HPCError, match="unknown SLURM job state"):
        JobState.parse(text)


def test_terminal_and_retryable_classification() -> None:
    terminal = {s for s in JobState if s.is_terminal}
    assert JobState.RUNNING not in terminal and JobState.PENDING not in terminal
    assert {JobState.COMPLETED, JobState.FAILED, JobState.TIMEOUT, JobState.OUT_OF_MEMORY} <= terminal
    retryable = {s for s in JobState if s.is_retryable}
    # The cluster's fault, not the job's: resubmit and resume from the checkpoint.
    assert {JobState.TIMEOUT, JobState.PREEMPTED, JobState.NODE_FAIL} <= retryable
    assert not retryable & {JobState.FAILED, JobState.OUT_OF_MEMORY, JobState.CANCELLED, JobState.COMPLETED}
    assert retryable <= terminal


def test_errors_share_one_root_and_the_builtin_bases() -> None:
    err = JobFailedError("42", "TIMEOUT", "slurmstepd: CANCELLED DUE TO TIME LIMIT")
    assert isinstance(err, HPCError) and isinstance(err, EOError) and isinstance(err, RuntimeError)
    assert (err.job_id, err.state) == ("42", "TIMEOUT")
    assert "job 42 ended TIMEOUT" in str(err)


def test_job_templates_quote_body_values_and_refuse_odd_directive_values() -> None:
    from eo_tasks.hpc.slurm import render_job_script

    script = render_job_script(
        "probe.sbatch.j2", {"ntasks": 2, "time_limit": "00:05:00", "partition": "debug"}
    )
    assert "#SBATCH --partition=debug\n" in script and "#SBATCH --ntasks=2\n" in script
    with pytest.raises(ConfigError, match=r"probe\.sbatch\.j2\.partition: expected a SLURM name"):
        render_job_script(
            "probe.sbatch.j2", {"ntasks": 2, "time_limit": "00:05:00", "partition": "debug; touch /tmp/pwned"}
        )


def test_job_templates_refuse_missing_values() -> None:
    import jinja2

    from eo_tasks.hpc.slurm import render_job_script

    with pytest.raises(jinja2.UndefinedError):
        render_job_script("probe.sbatch.j2", {"ntasks": 2})


S = JobState


@pytest.mark.parametrize(
    ("tasks", "state"),
    [
        ([S.COMPLETED], S.COMPLETED),
        ([S.COMPLETED, S.RUNNING, S.PENDING], S.RUNNING),  # an array is active while any task is
        ([S.PENDING, S.PENDING], S.PENDING),
        ([S.COMPLETED, S.COMPLETED, S.COMPLETED], S.COMPLETED),
        ([S.COMPLETED, S.TIMEOUT], S.TIMEOUT),  # resubmitting cures it
        ([S.TIMEOUT, S.FAILED, S.COMPLETED], S.FAILED),  # a resubmission would fail again
    ],
)
def test_array_state(tasks: list[JobState], state: JobState) -> None:
    assert array_state(tasks) is state


def test_every_slurm_state_is_known_and_classified() -> None:
    names = [
        "PENDING",
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "SUSPENDED",
        "STOPPED",
        "REQUEUED",
        "RESIZING",
        "SPECIAL_EXIT",
        "PREEMPTED",
        "NODE_FAIL",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "TIMEOUT",
        "CANCELLED",
        "FAILED",
        "COMPLETED",
    ]
    active = {
        "PENDING",
        "RUNNING",
        "CONFIGURING",
        "COMPLETING",
        "SUSPENDED",
        "STOPPED",
        "REQUEUED",
        "RESIZING",
    }
    for name in names:
        state = JobState.parse(name)
        assert state.is_terminal == (name not in active), name
        assert state.meaning and state.meaning != name.lower()
    assert not JobState.SPECIAL_EXIT.is_retryable and not JobState.DEADLINE.is_retryable


def test_run_keys_are_deterministic_and_try_independent() -> None:
    from eo_tasks.hpc.slurm import run_key

    key = run_key("train_alps", "scheduled__2024-01-01", "train", -1)
    assert key == run_key("train_alps", "scheduled__2024-01-01", "train", -1) and key.isalnum()
    assert key != run_key("train_alps", "scheduled__2024-01-01", "train", 0)
    assert key != run_key("train_alps", "manual__2024-01-01", "train", -1)


def test_a_cancelled_status_names_who_and_why() -> None:
    from eo_tasks.hpc.slurm import JobStatus

    text = JobStatus(JobState.CANCELLED, 0, "by the platform: the task was killed").describe("7")
    assert text == "job 7 CANCELLED (cancelled before it ended): by the platform: the task was killed"
