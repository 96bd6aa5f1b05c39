"""Training jobs on the real SLURM: a job cancelled halfway resumes at the next epoch when resubmitted,
and SLURM's warning signal before the time limit makes the job checkpoint and ask to be resubmitted."""

from __future__ import annotations

import json
import time
from pathlib import Path

from eo_tasks.hpc.slurm import JobState, SlurmClient, render_job_script
from tests.compute.synthetic import write_trainset
from tests.conftest import REPO

EPOCHS = 6


def _script(tmp_path: Path, backend: str) -> tuple[str, Path]:
    trainset = write_trainset(tmp_path / "trainset.h5", samples=3000, time_steps=12)
    out = tmp_path / "model"
    values = {
        "job_name": "train-resume",
        "nodes": 1,
        "tasks_per_node": 2,
        "time_limit": "00:10:00",
        "signal_seconds": 60,
        "partition": None,
        "account": None,
        "gpus_per_node": 0,
        "modules": [],
        "venv": str(REPO / ".venv-compute"),
        "trainset": str(trainset),
        "out_dir": str(out),
        "backend": backend,
        "architecture": "lstm",
        "epochs": EPOCHS,
        "batch_size": 16,
        "master_port": 29561,
        "extra_args": ["--layers", "1", "--hidden", "32"],
    }
    return render_job_script("train.sbatch.j2", values), out


def _wait_for_checkpoint(out: Path, slurm: SlurmClient, job_id: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not list((out / "checkpoints").glob("epoch-*/state.json")):
        assert slurm.state(job_id) in (JobState.PENDING, JobState.RUNNING), slurm.output(job_id)
        assert time.monotonic() < deadline, "no checkpoint in time"
        time.sleep(0.5)


def test_a_job_cancelled_halfway_resumes_at_the_next_epoch(slurm: SlurmClient, tmp_path: Path) -> None:
    script, out = _script(tmp_path, "pytorch")
    first = slurm.submit(script, "train-resume")
    _wait_for_checkpoint(out, slurm, first)
    slurm.cancel(first)
    assert slurm.wait(first, timeout=60, poll_interval=0.5) == JobState.CANCELLED
    assert not (out / "model_card.json").exists()

    second = slurm.submit(script, "train-resume")  # what the operator does on a resubmittable end
    assert slurm.wait(second, timeout=600, poll_interval=1) == JobState.COMPLETED, slurm.output(second)
    log = slurm.output(second)
    assert "resuming at epoch" in log and "resuming at epoch 1 " not in log
    card = json.loads((out / "model_card.json").read_text())
    assert card["training"]["epochs"] == EPOCHS and card["training"]["workers"] == 2


def test_the_time_limit_warning_checkpoints_and_asks_for_resubmission(
    slurm: SlurmClient, tmp_path: Path
) -> None:
    script, out = _script(tmp_path, "tensorflow")
    job_id = slurm.submit(script, "train-signal")
    _wait_for_checkpoint(out, slurm, job_id)
    # What SLURM does `signal_seconds` before the limit (sbatch --signal=B:USR1@…): signal the batch
    # shell alone (here, on a one-node cluster, by its script path in slurmd's spool).
    result = slurm.shell.run(f"pkill -USR1 -f 'job0*{job_id}/slurm_script'")
    assert result.exit_status == 0, "the batch shell was not found"
    assert slurm.wait(job_id, timeout=180, poll_interval=0.5) == JobState.FAILED
    assert slurm.exit_code(job_id) == 99  # "checkpointed: resubmit me", which SlurmJobOperator resubmits
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "interrupted" and status["exit_code"] == 99
    assert not (out / "model_card.json").exists()
