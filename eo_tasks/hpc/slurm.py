"""Submitting and watching SLURM jobs on an HPC login node over SSH, exactly once.

The Airflow side of the platform only submits, watches and collects; everything heavy runs on the
cluster. Every value that reaches a remote command line is shell-quoted; job scripts come from
:mod:`.script`. A submission may carry a *run key* (:func:`run_key`) in its ``--comment``: a retry
first looks for a live job with that key (:meth:`SlurmClient.find_live`) and adopts it instead of
submitting a second job that would write to the same outputs. A job's state comes from
``scontrol``, then ``sacct``, then (a cluster without accounting, after ``MinJobAge``) the
exit-status file its script wrote (:func:`.script.with_exit_status`).
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass

from eo_tasks.core.errors import ControllerUnreachableError, HPCError, JobFailedError, JobSubmissionError
from eo_tasks.hpc.script import TEMPLATES_DIR, exit_status_path, render_job_script, with_exit_status
from eo_tasks.hpc.shell import CommandResult, ParamikoShell, RemoteShell, SSHTarget
from eo_tasks.hpc.states import JobState, array_state

__all__ = [
    "TEMPLATES_DIR",
    "CommandResult",
    "JobState",
    "JobStatus",
    "ParamikoShell",
    "RemoteShell",
    "SSHTarget",
    "SlurmClient",
    "array_state",
    "render_job_script",
    "run_key",
]

KEY_PREFIX = "eokey:"
# What slurm's client commands print when slurmctld does not answer (vs. "Invalid job id specified").
_CONTROLLER_DOWN = re.compile(
    r"(?i)unable to contact slurm controller|socket timed out|connection refused|zero bytes"
)


def run_key(dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """The deterministic key of one task's job: the same for every try of that task in that run."""
    text = "\x1f".join([dag_id, run_id, task_id, str(map_index)])
    return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class JobStatus:
    """What SLURM (or the job's own exit-status file) says about a job.

    Attributes:
        state: The job's (an array's combined) state.
        exit_code: The script's exit code once known (an array's highest).
        detail: Why: the scheduler's reason, who cancelled it, or where the answer came from.
    """

    state: JobState
    exit_code: int | None = None
    detail: str = ""

    def describe(self, job_id: str) -> str:
        """One line for logs and errors, e.g. ``job 42 CANCELLED (cancelled): by the platform: ...``."""
        known = self.exit_code is not None and self.state != JobState.CANCELLED
        code = f", exit code {self.exit_code}" if known else ""
        detail = f": {self.detail}" if self.detail else ""
        return f"job {job_id} {self.state.value} ({self.state.meaning}{code}){detail}"


def _field(records: list[dict[str, str]], name: str) -> str:
    values = [r.get(name, "") for r in records if r.get(name, "") not in ("", "None", "(null)")]
    return values[0] if values else ""


class SlurmClient:
    """Submits batch scripts to SLURM and follows them until they end.

    Args:
        shell: A shell on the login node.
        work_dir: A directory on the cluster's shared filesystem for scripts, job logs and exit
            statuses (relative paths are under the login account's home).
    """

    def __init__(self, shell: RemoteShell, work_dir: str) -> None:
        self.shell = shell
        self.work_dir = work_dir.rstrip("/")

    def _run(self, command: str, timeout: float = 60.0) -> CommandResult:
        result = self.shell.run(command, timeout=timeout)
        if result.exit_status != 0:
            if _CONTROLLER_DOWN.search(result.stderr):
                raise ControllerUnreachableError(f"SLURM controller unreachable: {result.stderr.strip()}")
            raise HPCError(f"`{command}` exited {result.exit_status}: {result.stderr.strip()}")
        return result

    def absolute_work_dir(self) -> str:
        """Creates the work directory and returns its absolute path on the cluster."""
        result = self._run(
            f"mkdir -p {shlex.quote(self.work_dir)} && cd {shlex.quote(self.work_dir)} && pwd -P"
        )
        self.work_dir = result.stdout.strip()
        return self.work_dir

    def submit(self, script: str, name: str, key: str | None = None) -> str:
        """Uploads ``script`` as ``<work_dir>/<name>.sbatch`` and submits it.

        Args:
            script: The batch script, ``#SBATCH`` lines included; an EXIT trap recording its exit
                status is added (:func:`.script.with_exit_status`).
            name: File name stem for the script; the job log is ``<name>-<jobid>.out``.
            key: The run key (:func:`run_key`), stored as ``--comment=eokey:<key>``.

        Returns:
            The SLURM job id.
        """
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}", name) or (key and not key.isalnum()):
            raise JobSubmissionError(f"refusing job name {name!r} / key {key!r}: plain characters only")
        work_dir = self.absolute_work_dir()
        path = f"{work_dir}/{name}.sbatch"
        self.shell.put_text(with_exit_status(script, work_dir), path)
        log = f"{work_dir}/{name}-%j.out"
        comment = f" --comment={KEY_PREFIX}{key}" if key else ""
        result = self.shell.run(
            f"sbatch --parsable --chdir={shlex.quote(work_dir)} --output={shlex.quote(log)} "
            f"--job-name={shlex.quote(name)}{comment} {shlex.quote(path)}"
        )
        job_id = result.stdout.strip().split(";")[0]
        if result.exit_status != 0 or not job_id.isdigit():
            if _CONTROLLER_DOWN.search(result.stderr):
                raise ControllerUnreachableError(f"SLURM controller unreachable: {result.stderr.strip()}")
            raise JobSubmissionError(
                f"sbatch refused {path}: {result.stderr.strip() or result.stdout.strip()}"
            )
        return job_id

    def find_live(self, key: str) -> str | None:
        """The id of a live (pending, running, ...) job submitted with run key ``key``, if any."""
        result = self._run("squeue --noheader --all --format='%F|%k'")
        for line in result.stdout.splitlines():
            job_id, _, comment = line.strip().partition("|")
            if comment.split(";")[0] == f"{KEY_PREFIX}{key}":
                return job_id
        return None

    def job_records(self, job_id: str) -> list[dict[str, str]]:
        """``scontrol show job``, one dict per record (a job's, or each array task's; none once forgotten).

        Raises:
            ControllerUnreachableError: slurmctld does not answer.
        """
        result = self.shell.run(f"scontrol show job -o {shlex.quote(job_id)}")
        if result.exit_status != 0:
            if _CONTROLLER_DOWN.search(result.stderr):
                raise ControllerUnreachableError(f"SLURM controller unreachable: {result.stderr.strip()}")
            return []
        return [
            dict(field.split("=", 1) for field in line.split() if "=" in field)
            for line in result.stdout.splitlines()
            if line.strip()
        ]

    def exit_code(self, job_id: str) -> int | None:
        """The batch script's exit code once the job ended (an array's highest; None while unknown)."""
        return self.status(job_id).exit_code

    def status(self, job_id: str, tasks: int = 1) -> JobStatus:
        """The job's state, exit code and reason: scontrol, else sacct, else its exit-status files.

        Args:
            job_id: The job (an array's job id).
            tasks: How many exit-status files a finished job leaves (an array's task count).
        """
        records = self.job_records(job_id)
        if records and all("JobState" in r for r in records):
            state = array_state([JobState.parse(r["JobState"]) for r in records])
            codes = [r.get("ExitCode", "") for r in records]
            known = [int(c.split(":")[0]) for c in codes if c[:1].isdigit()]
            exit_code = max(known) if state.is_terminal and known and len(known) == len(codes) else None
            return JobStatus(state, exit_code, self._detail(state, records))
        result = self.shell.run(f"sacct -n -X -P -o State,ExitCode -j {shlex.quote(job_id)}")
        rows = [line.split("|") for line in result.stdout.splitlines() if line.strip()]
        if result.exit_status == 0 and rows:
            state = array_state([JobState.parse(row[0]) for row in rows])
            detail = rows[0][0].partition(" ")[2] if state == JobState.CANCELLED else "from sacct"
            done = [int(row[1].split(":")[0]) for row in rows if len(row) > 1 and row[1][:1].isdigit()]
            return JobStatus(state, max(done) if done and state.is_terminal else None, detail)
        return self.status_from_files(job_id, tasks)

    def status_from_files(self, job_id: str, tasks: int = 1) -> JobStatus:
        """A forgotten job's outcome from the exit-status files its script wrote (no accounting)."""
        if not job_id.isdigit():
            raise HPCError(f"not a SLURM job id: {job_id!r}")
        pattern = exit_status_path(shlex.quote(self.work_dir), job_id, "*")
        result = self._run(f'for f in {pattern}; do [ -f "$f" ] && echo "$f $(cat "$f")"; done; true')
        codes = [int(line.split()[-1]) for line in result.stdout.splitlines() if line.split()[-1].isdigit()]
        where = f"SLURM has forgotten job {job_id} (MinJobAge passed, no accounting)"
        if len(codes) < tasks:
            return JobStatus(
                JobState.FAILED, None, f"{where} and {tasks - len(codes)} task(s) left no exit status: killed"
            )
        state = JobState.COMPLETED if max(codes) == 0 else JobState.FAILED
        return JobStatus(state, max(codes), f"{where}; decided from its exit-status file(s)")

    def _detail(self, state: JobState, records: list[dict[str, str]]) -> str:
        comment = _field(records, "Comment")
        reason = _field(records, "Reason")
        if state == JobState.CANCELLED:
            ours = re.search(r"(?:^|;)cancelled_(.*)", comment)  # scontrol -o splits on spaces
            if ours:
                return ours.group(1).replace("_", " ")
            signal = _field(records, "ExitCode").partition(":")[2]
            why = f"; reason {reason}" if reason else ""
            return f"by scancel outside the platform (user or administrator; signal {signal}){why}"
        return f"reason {reason}" if reason else ""

    def state(self, job_id: str) -> JobState:
        """The job's (or array's, :func:`array_state`) state."""
        return self.status(job_id).state

    def wait(
        self,
        job_id: str,
        timeout: float,
        poll_interval: float = 2.0,
        on_state: Callable[[JobState], None] | None = None,
    ) -> JobState:
        """Polls until the job reaches a terminal state.

        Args:
            job_id: The job to watch.
            timeout: Seconds to wait before giving up (the job keeps running).
            poll_interval: Seconds between polls.
            on_state: Called with every state change, e.g. to log it.

        Returns:
            The terminal state.
        """
        deadline = time.monotonic() + timeout
        last: JobState | None = None
        while True:
            state = self.state(job_id)
            if state != last and on_state is not None:
                on_state(state)
            last = state
            if state.is_terminal:
                return state
            if time.monotonic() > deadline:
                raise HPCError(f"job {job_id} still {state} after {timeout:.0f}s")
            time.sleep(poll_interval)

    def read_logs(self, job_id: str, offsets: dict[str, int], limit: int = 65536) -> str:
        """What the job printed since ``offsets`` (path -> bytes read; updated in place).

        Reads the ``StdOut`` of the job (each array task's), at most ``limit`` bytes a call.
        """
        paths = [r["StdOut"] for r in self.job_records(job_id) if r.get("StdOut")]
        chunks = []
        for path in dict.fromkeys(paths):
            start = offsets.get(path, 0)
            result = self.shell.run(
                f"tail -c +{start + 1} {shlex.quote(path)} 2>/dev/null | head -c {int(limit)}"
            )
            text = result.stdout
            if not text:
                continue
            # Only whole lines, unless a line alone fills the limit.
            cut = text.rfind("\n") + 1 if "\n" in text and len(text.encode()) < limit else len(text)
            chunks.append(text[:cut])
            offsets[path] = start + len(text[:cut].encode())
        return "".join(chunks)

    def output(self, job_id: str) -> str:
        """The job's standard output (an array's tasks one after another), read from SLURM's files."""
        paths = [r["StdOut"] for r in self.job_records(job_id) if r.get("StdOut")]
        if not paths:
            raise HPCError(f"job {job_id}: no StdOut path known")
        return self._run("cat " + " ".join(shlex.quote(p) for p in dict.fromkeys(paths))).stdout

    def cancel(self, job_id: str, reason: str = "") -> None:
        """Cancels the job (a no-op for jobs that already ended), recording ``reason`` in its comment.

        Args:
            job_id: The job.
            reason: Why, e.g. ``by the platform: the task was killed in Airflow``; kept in the
                job's comment so the CANCELLED message can say who and why.
        """
        if reason:
            records = self.job_records(job_id)
            key = _field(records, "Comment").split(";")[0]
            text = re.sub(r"[^A-Za-z0-9.:,()/-]", "_", reason)[:200]
            comment = f"{key};cancelled_{text}" if key.startswith(KEY_PREFIX) else f"cancelled_{text}"
            self.shell.run(f"scontrol update JobId={shlex.quote(job_id)} Comment={shlex.quote(comment)}")
        self._run(f"scancel {shlex.quote(job_id)}")

    def run_to_completion(self, script: str, name: str, timeout: float) -> str:
        """Submits, waits, and returns the output; raises :class:`JobFailedError` unless COMPLETED."""
        job_id = self.submit(script, name)
        state = self.wait(job_id, timeout=timeout)
        if state != JobState.COMPLETED:
            raise JobFailedError(job_id, state.value, self.output(job_id)[-2000:])
        return self.output(job_id)
