"""Submitting and watching SLURM jobs on an HPC login node over SSH.

The Airflow side of the platform only submits, watches and collects; everything heavy runs
on the cluster. The client talks to the login node through a :class:`RemoteShell`, so the same
code runs over a paramiko connection from an Airflow SSH connection, or any other shell.
Every value that reaches a remote command line is shell-quoted.
"""

from __future__ import annotations

import base64
import enum
import io
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import jinja2

from eo_tasks.core.errors import HPCError, JobFailedError, JobSubmissionError

if TYPE_CHECKING:
    import paramiko

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def render_job_script(
    template: str, values: Mapping[str, object], templates_dir: Path = TEMPLATES_DIR
) -> str:
    """Renders an sbatch template from ``eo_tasks/hpc/templates/``.

    Every substituted value is shell-quoted (Jinja's ``finalize``), so a value from
    configuration such as a partition named ``debug; touch /tmp/x`` stays one word.
    A missing value is an error, never an empty string.

    Args:
        template: File name inside ``templates_dir``, e.g. ``probe.sbatch.j2``.
        values: The template's variables.
        templates_dir: Where the templates live.

    Returns:
        The batch script.
    """
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        finalize=lambda value: shlex.quote(str(value)),
        keep_trailing_newline=True,
        autoescape=False,
    )
    return env.get_template(template).render(**values)


@dataclass(frozen=True)
class CommandResult:
    """What a remote command returned."""

    exit_status: int
    stdout: str
    stderr: str


class RemoteShell(Protocol):
    """The two things the SLURM client needs from a login node."""

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Runs ``command`` in the remote login shell."""
        ...

    def put_text(self, text: str, remote_path: str) -> None:
        """Writes ``text`` to ``remote_path`` atomically."""
        ...


@dataclass(frozen=True)
class SSHTarget:
    """How to reach the login node (built from the Airflow connection by the orchestrator).

    Attributes:
        host: Login node.
        port: SSH port.
        username: Account on the cluster.
        key_file: Private key.
        host_key: The login node's public key, ``"<type> <base64>"``; the connection is refused
            when the server presents another one (no trust on first use).
    """

    host: str
    port: int
    username: str
    key_file: str
    host_key: str

    def connect(self, timeout: float = 15.0) -> paramiko.SSHClient:
        """Opens an SSH connection, verifying the host key."""
        import paramiko

        client = paramiko.SSHClient()
        key_type, key_data = self.host_key.split()[:2]
        key = paramiko.PKey.from_type_string(key_type, base64.b64decode(key_data))
        name = self.host if self.port == 22 else f"[{self.host}]:{self.port}"
        client.get_host_keys().add(name, key_type, key)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            client.connect(
                self.host,
                port=self.port,
                username=self.username,
                key_filename=self.key_file,
                timeout=timeout,
                banner_timeout=timeout,
                auth_timeout=timeout,
                look_for_keys=False,
                allow_agent=False,
            )
        except (OSError, paramiko.SSHException) as err:
            client.close()
            raise HPCError(f"cannot reach the login node {self.host}:{self.port}: {err}") from err
        return client


class ParamikoShell:
    """A :class:`RemoteShell` over an open ``paramiko.SSHClient`` (e.g. ``SSHHook.get_conn()``)."""

    def __init__(self, client: paramiko.SSHClient) -> None:
        self._client = client

    def run(self, command: str, timeout: float = 60.0) -> CommandResult:
        """Runs ``command`` and waits for it, failing after ``timeout`` seconds of silence."""
        import paramiko

        try:
            _, stdout, stderr = self._client.exec_command(command, timeout=timeout)
            out = stdout.read().decode(errors="replace")
            errors = stderr.read().decode(errors="replace")
            status = stdout.channel.recv_exit_status()
        except (OSError, paramiko.SSHException) as err:  # timeouts, resets, closed sessions
            raise HPCError(f"remote command failed to run: {command.split()[0]}: {err}") from err
        return CommandResult(status, out, errors)

    def put_text(self, text: str, remote_path: str) -> None:
        """Uploads ``text`` over SFTP to a temporary name, then renames it into place."""
        import paramiko

        tmp = f"{remote_path}.part"
        try:
            with self._client.open_sftp() as sftp:
                sftp.putfo(io.BytesIO(text.encode()), tmp)
                sftp.posix_rename(tmp, remote_path)
        except (OSError, paramiko.SSHException) as err:
            raise HPCError(f"could not upload {remote_path}: {err}") from err


class JobState(enum.StrEnum):
    """SLURM job states the platform distinguishes."""

    PENDING = "PENDING"
    CONFIGURING = "CONFIGURING"
    RUNNING = "RUNNING"
    COMPLETING = "COMPLETING"
    SUSPENDED = "SUSPENDED"
    REQUEUED = "REQUEUED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    TIMEOUT = "TIMEOUT"
    CANCELLED = "CANCELLED"
    NODE_FAIL = "NODE_FAIL"
    PREEMPTED = "PREEMPTED"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"

    @property
    def is_terminal(self) -> bool:
        """Whether the job will not change state any more."""
        return self not in _ACTIVE

    @property
    def is_retryable(self) -> bool:
        """Whether a resubmission can be expected to succeed (the job was not at fault)."""
        return self in _RETRYABLE

    @classmethod
    def parse(cls, text: str) -> JobState:
        """Parses scontrol/sacct output such as ``CANCELLED by 0`` or ``OUT_OF_ME+``."""
        word = text.strip().split(" ")[0].rstrip("+")
        for state in cls:
            if state.value.startswith(word) and word:
                return state
        raise HPCError(f"unknown SLURM job state {text!r}")


_ACTIVE = {
    JobState.PENDING,
    JobState.CONFIGURING,
    JobState.RUNNING,
    JobState.COMPLETING,
    JobState.SUSPENDED,
    JobState.REQUEUED,
}
_RETRYABLE = {JobState.TIMEOUT, JobState.PREEMPTED, JobState.NODE_FAIL, JobState.BOOT_FAIL}


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
            JobState.CONFIGURING,
            JobState.REQUEUED,
            JobState.SUSPENDED,
            JobState.PENDING,
        ]
        return min(active, key=order.index)
    failed = [s for s in states if s != JobState.COMPLETED]
    if not failed:
        return JobState.COMPLETED
    return next((s for s in failed if not s.is_retryable), failed[0])


class SlurmClient:
    """Submits batch scripts to SLURM and follows them until they end.

    Args:
        shell: A shell on the login node.
        work_dir: A directory on the cluster's shared filesystem for scripts and job logs.
    """

    def __init__(self, shell: RemoteShell, work_dir: str) -> None:
        self.shell = shell
        self.work_dir = work_dir.rstrip("/")

    def _run(self, command: str, timeout: float = 60.0) -> CommandResult:
        result = self.shell.run(command, timeout=timeout)
        if result.exit_status != 0:
            raise HPCError(f"`{command}` exited {result.exit_status}: {result.stderr.strip()}")
        return result

    def submit(self, script: str, name: str) -> str:
        """Uploads ``script`` as ``<work_dir>/<name>.sbatch`` and submits it.

        Args:
            script: The batch script, ``#SBATCH`` lines included.
            name: File name stem for the script; the job log defaults to ``<name>-<jobid>.out``.

        Returns:
            The SLURM job id.
        """
        self._run(f"mkdir -p {shlex.quote(self.work_dir)}")
        path = f"{self.work_dir}/{name}.sbatch"
        self.shell.put_text(script, path)
        log = f"{self.work_dir}/{name}-%j.out"
        result = self.shell.run(
            f"sbatch --parsable --chdir={shlex.quote(self.work_dir)} --output={shlex.quote(log)} "
            f"--job-name={shlex.quote(name)} {shlex.quote(path)}"
        )
        job_id = result.stdout.strip().split(";")[0]
        if result.exit_status != 0 or not job_id.isdigit():
            raise JobSubmissionError(
                f"sbatch refused {path}: {result.stderr.strip() or result.stdout.strip()}"
            )
        return job_id

    def job_records(self, job_id: str) -> list[dict[str, str]]:
        """``scontrol show job``, one dict per record (a job's, or each array task's; none once forgotten)."""
        result = self.shell.run(f"scontrol show job -o {shlex.quote(job_id)}")
        if result.exit_status != 0:
            return []
        return [
            dict(field.split("=", 1) for field in line.split() if "=" in field)
            for line in result.stdout.splitlines()
            if line.strip()
        ]

    def exit_code(self, job_id: str) -> int | None:
        """The batch script's exit code once the job ended (an array's highest; None while unknown)."""
        codes = [r.get("ExitCode", "") for r in self.job_records(job_id)]
        known = [int(code.split(":")[0]) for code in codes if code[:1].isdigit()]
        return max(known) if known and len(known) == len(codes) else None

    def state(self, job_id: str) -> JobState:
        """The job's (or array's, :func:`array_state`) state, from scontrol, or sacct once it is forgotten."""
        records = self.job_records(job_id)
        if records and all("JobState" in r for r in records):
            return array_state([JobState.parse(r["JobState"]) for r in records])
        result = self._run(f"sacct -n -X -P -o State -j {shlex.quote(job_id)}")
        if not result.stdout.strip():
            raise HPCError(f"job {job_id} is unknown to scontrol and sacct")
        return array_state([JobState.parse(line) for line in result.stdout.splitlines() if line.strip()])

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

    def output(self, job_id: str) -> str:
        """The job's standard output (an array's tasks one after another), read from SLURM's files."""
        paths = [r["StdOut"] for r in self.job_records(job_id) if r.get("StdOut")]
        if not paths:
            raise HPCError(f"job {job_id}: no StdOut path known")
        return self._run("cat " + " ".join(shlex.quote(p) for p in dict.fromkeys(paths))).stdout

    def cancel(self, job_id: str) -> None:
        """Cancels the job (a no-op for jobs that already ended)."""
        self._run(f"scancel {shlex.quote(job_id)}")

    def run_to_completion(self, script: str, name: str, timeout: float) -> str:
        """Submits, waits, and returns the output; raises :class:`JobFailedError` unless COMPLETED."""
        job_id = self.submit(script, name)
        state = self.wait(job_id, timeout=timeout)
        if state != JobState.COMPLETED:
            raise JobFailedError(job_id, state.value, self.output(job_id)[-2000:])
        return self.output(job_id)
