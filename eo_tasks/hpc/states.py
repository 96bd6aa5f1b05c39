"""SLURM job states: which are active, which are final, which a resubmission cures, what each means."""

from __future__ import annotations

import enum
from collections.abc import Sequence

from eo_tasks.core.errors import HPCError


class JobState(enum.StrEnum):
    """Every SLURM job state (``squeue``/``scontrol``/``sacct`` names)."""

    PENDING = "PENDING"
    CONFIGURING = "CONFIGURING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    SUSPENDED = "SUSPENDED"
    STOPPED = "STOPPED"
    REQUEUED = "REQUEUED"
    REQUEUE_HOLD = "REQUEUE_HOLD"
    REQUEUE_FED = "REQUEUE_FED"
    RESIZING = "RESIZING"
    SIGNALING = "SIGNALING"
    STAGE_OUT = "STAGE_OUT"
    RESV_DEL_HOLD = "RESV_DEL_HOLD"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    SPECIAL_EXIT = "SPECIAL_EXIT"
    REVOKED = "REVOKED"

    @property
    def is_terminal(self) -> bool:
        """Whether the job will not change state any more (on its own)."""
        return self not in _ACTIVE

    @property
    def is_retryable(self) -> bool:
        """Whether a resubmission can be expected to succeed (the job was not at fault)."""
        return self in _RETRYABLE

    @property
    def meaning(self) -> str:
        """What the state means, for messages."""
        return MEANINGS[self]

    @classmethod
    def parse(cls, text: str) -> JobState:
        """Parses scontrol/sacct output such as ``CANCELLED by 0`` or ``OUT_OF_ME+``."""
        word = text.strip().split(" ")[0]
        if word in cls.__members__:
            return cls(word)
        prefix = word.rstrip("+")
        matches = [state for state in cls if prefix and word.endswith("+") and state.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        raise HPCError(f"unknown SLURM job state {text!r}")


_ACTIVE = {
    JobState.PENDING,
    JobState.CONFIGURING,
    JobState.RUNNING,
    JobState.COMPLETING,
    JobState.SUSPENDED,
    JobState.STOPPED,
    JobState.REQUEUED,
    JobState.REQUEUE_HOLD,
    JobState.REQUEUE_FED,
    JobState.RESIZING,
    JobState.SIGNALING,
    JobState.STAGE_OUT,
    JobState.RESV_DEL_HOLD,
}
_RETRYABLE = {JobState.TIMEOUT, JobState.PREEMPTED, JobState.NODE_FAIL, JobState.BOOT_FAIL}

MEANINGS: dict[JobState, str] = {
    JobState.PENDING: "waiting for resources or priority",
    JobState.CONFIGURING: "its nodes are booting",
    JobState.RUNNING: "running on its nodes",
    JobState.COMPLETING: "finishing: processes are being cleaned up",
    JobState.SUSPENDED: "suspended by the scheduler or an administrator",
    JobState.STOPPED: "stopped (SIGSTOP): it keeps its nodes but does not run",
    JobState.REQUEUED: "requeued: it will run again",
    JobState.REQUEUE_HOLD: "requeued and held: an administrator must release it",
    JobState.REQUEUE_FED: "requeued by the federation",
    JobState.RESIZING: "changing size",
    JobState.SIGNALING: "being signalled",
    JobState.STAGE_OUT: "staging out files",
    JobState.RESV_DEL_HOLD: "held: its reservation was deleted",
    JobState.COMPLETED: "finished successfully",
    JobState.FAILED: "the job script failed (non-zero exit code)",
    JobState.TIMEOUT: "killed at its time limit",
    JobState.CANCELLED: "cancelled before it ended",
    JobState.NODE_FAIL: "a node it ran on failed (slurmd lost)",
    JobState.PREEMPTED: "preempted by a job of higher priority",
    JobState.OUT_OF_MEMORY: "killed for using more memory than it asked for",
    JobState.BOOT_FAIL: "its nodes failed to boot",
    JobState.DEADLINE: "its deadline passed before it could end",
    JobState.SPECIAL_EXIT: "ended with the special exit code and is held: an administrator must release it",
    JobState.REVOKED: "revoked: a sibling cluster of the federation runs it",
}


def array_state(states: Sequence[JobState]) -> JobState:
    """One state for a job array from its tasks' states.

    Active while any task is (the most advanced active state); COMPLETED when all completed;
    otherwise the first failure, preferring one a resubmission would not cure (FAILED over TIMEOUT),
    so the array is only resubmitted when every failed task can be expected to succeed then.
    """
    if not states:
        raise HPCError("a job with no tasks")
    active = [s for s in states if not s.is_terminal]
    if active:
        order = [
            JobState.RUNNING,
            JobState.COMPLETING,
            JobState.SIGNALING,
            JobState.STAGE_OUT,
            JobState.RESIZING,
            JobState.CONFIGURING,
            JobState.REQUEUED,
            JobState.REQUEUE_FED,
            JobState.SUSPENDED,
            JobState.STOPPED,
            JobState.REQUEUE_HOLD,
            JobState.RESV_DEL_HOLD,
            JobState.PENDING,
        ]
        return min(active, key=order.index)
    failed = [s for s in states if s != JobState.COMPLETED]
    if not failed:
        return JobState.COMPLETED
    return next((s for s in failed if not s.is_retryable), failed[0])
