"""Deferrable SLURM jobs for Airflow: an operator that submits over SSH and a trigger that waits.

A training job runs for hours; holding a worker slot for that is waste. ``SlurmJobOperator``
renders an ``eo_tasks/hpc/templates/`` script (directive values checked, body values quoted),
submits it with ``sbatch`` over the ``eo_hpc`` SSH connection and defers to ``SlurmJobTrigger``.

Exactly once: every submission carries the task's *run key* (DAG, run, task, map index; the same
for every try) in its ``--comment``. A try first looks for a live job with its key and adopts it,
so a retry after an SSH drop right after ``sbatch`` never starts a second job on the same outputs.
A task that fails for good, is killed, or is marked failed (running or deferred) cancels its job,
recording why in the job's comment; the wait has an overall deadline (time limit + margin).

The trigger keeps one SSH connection for the whole wait (reconnecting only when it fails), and
each poll copies what the job printed since the last one into the task log, so epochs and inference
blocks show up while the job runs. A login node that does not answer is reported as such, a SLURM
controller that does not answer as "SLURM controller unreachable"; both are waited out up to
``max_unreachable`` seconds. Jobs that ended for the cluster's reasons (TIMEOUT, PREEMPTED,
NODE_FAIL, or the training's "checkpointed, resubmit me" exit code) are resubmitted up to
``max_resubmits`` times; the training resumes from its last checkpoint.

This module lives in ``plugins/`` because Airflow puts that folder on ``sys.path`` in every
component, the triggerer included, which must import the trigger by its class path; its plugin
registers the "SLURM job" extra link.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from airflow.plugins_manager import AirflowPlugin
from airflow.sdk import BaseOperator, BaseOperatorLink, Connection
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.execution_time.xcom import XCom
from airflow.triggers.base import BaseTrigger, TriggerEvent

from eo_tasks.core.errors import (
    ControllerUnreachableError,
    HPCError,
    JobFailedError,
    LoginNodeUnreachableError,
)
from eo_tasks.hpc.slurm import (
    TEMPLATES_DIR,
    JobState,
    JobStatus,
    ParamikoShell,
    SlurmClient,
    SSHTarget,
    render_job_script,
    run_key,
)

RESUBMIT_EXIT_CODE = 99  # eo_tasks.training.loop: "checkpointed before the time limit, resubmit me"
JOB_ID_XCOM = "slurm_job_id"


def ssh_target(conn: Any) -> SSHTarget:
    """The login node of an Airflow SSH connection (key file and pinned host key in its extras)."""
    extra = conn.extra_dejson
    if not extra.get("host_key"):
        raise HPCError(f"connection {conn.conn_id}: set extra.host_key; host keys are always verified")
    return SSHTarget(
        host=conn.host,
        port=int(conn.port or 22),
        username=conn.login,
        key_file=extra["key_file"],
        host_key=extra["host_key"],
    )


def _cancel(target: SSHTarget, job_id: str, reason: str) -> None:
    client = target.connect()
    try:
        SlurmClient(ParamikoShell(client), work_dir="").cancel(job_id, reason)
    finally:
        client.close()


def _seconds(time_limit: str) -> int:
    """``[D-]HH:MM:SS`` in seconds."""
    days, _, clock = time_limit.rpartition("-")
    hours, minutes, seconds = (int(part) for part in clock.split(":"))
    return int(days or 0) * 86400 + hours * 3600 + minutes * 60 + seconds


class SlurmJobTrigger(BaseTrigger):
    """Waits in the triggerer until a SLURM job ends, streaming its output into the task log.

    Args:
        ssh_conn_id: Airflow SSH connection of the login node.
        job_id: The SLURM job.
        work_dir: The job's folder on the cluster (its exit-status files, for forgotten jobs).
        poll_interval: Seconds between polls.
        max_unreachable: Seconds the login node or the controller may stay unreachable.
        deadline: Unix time after which the job is cancelled and the wait fails (None: none).
        tasks: Tasks of the job (an array's count), for its exit-status files.
    """

    def __init__(
        self,
        ssh_conn_id: str,
        job_id: str,
        work_dir: str = "",
        poll_interval: float = 10.0,
        max_unreachable: float = 900.0,
        deadline: float | None = None,
        tasks: int = 1,
    ):
        super().__init__()
        self.ssh_conn_id = ssh_conn_id
        self.job_id = job_id
        self.work_dir = work_dir
        self.poll_interval = poll_interval
        self.max_unreachable = max_unreachable
        self.deadline = deadline
        self.tasks = tasks
        self.connections = 0  # SSH handshakes this wait made (one unless the connection failed)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and arguments, to rebuild the trigger in the triggerer."""
        return (
            "eo_slurm.SlurmJobTrigger",
            {
                "ssh_conn_id": self.ssh_conn_id,
                "job_id": self.job_id,
                "work_dir": self.work_dir,
                "poll_interval": self.poll_interval,
                "max_unreachable": self.max_unreachable,
                "deadline": self.deadline,
                "tasks": self.tasks,
            },
        )

    async def _target(self) -> SSHTarget:
        return ssh_target(await Connection.async_get(self.ssh_conn_id))

    def _poll(self, client: Any, offsets: dict[str, int], final: bool) -> tuple[JobStatus, str]:
        slurm = SlurmClient(ParamikoShell(client), self.work_dir)
        status = slurm.status(self.job_id, self.tasks)
        chunks = [slurm.read_logs(self.job_id, offsets)]
        while final and chunks[-1] and len(chunks) < 50:  # the job ended: everything it printed
            chunks.append(slurm.read_logs(self.job_id, offsets))
        return status, "".join(chunks)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Polls over one SSH connection until the job ends; survives outages up to max_unreachable."""
        target = await self._target()
        client: Any = None
        offsets: dict[str, int] = {}
        tail = ""
        unreachable_since: float | None = None
        last: JobState | None = None
        try:
            while True:
                try:
                    if client is None:
                        client = await asyncio.to_thread(target.connect)
                        self.connections += 1
                    status, chunk = await asyncio.to_thread(self._poll, client, offsets, False)
                    if status.state.is_terminal:  # the rest of its output, then the event
                        status, rest = await asyncio.to_thread(self._poll, client, offsets, True)
                        chunk += rest
                except (LoginNodeUnreachableError, ControllerUnreachableError) as err:
                    if isinstance(err, LoginNodeUnreachableError) and client is not None:
                        client.close()
                        client = None
                    unreachable_since = unreachable_since or time.monotonic()
                    waited = time.monotonic() - unreachable_since
                    self.log.warning("job %s: %s (for %.0fs; retrying)", self.job_id, err, waited)
                    if waited > self.max_unreachable:
                        yield self._event("UNREACHABLE", error=f"{err} (for {waited:.0f}s)")
                        return
                else:
                    if unreachable_since is not None:
                        self.log.info("job %s: the login node and SLURM answer again", self.job_id)
                    unreachable_since = None
                    if chunk:
                        self.log.info("job %s output:\n%s", self.job_id, chunk.rstrip("\n"))
                        tail = (tail + chunk)[-3000:]
                    if status.state != last:
                        self.log.info("%s", status.describe(self.job_id))
                        last = status.state
                    if status.state.is_terminal:
                        yield self._event(
                            status.state.value, exit_code=status.exit_code, detail=status.detail, tail=tail
                        )
                        return
                    if self.deadline is not None and time.time() > self.deadline:
                        reason = "by the platform: its overall deadline (time limit + margin) passed"
                        await asyncio.to_thread(
                            SlurmClient(ParamikoShell(client), self.work_dir).cancel, self.job_id, reason
                        )
                        yield self._event(
                            "DEADLINE_PASSED",
                            error=f"job {self.job_id} still {status.state} at its deadline: cancelled",
                            tail=tail,
                        )
                        return
                await asyncio.sleep(self.poll_interval)
        finally:
            if client is not None:
                client.close()

    def _event(self, state: str, **fields: Any) -> TriggerEvent:
        return TriggerEvent({"job_id": self.job_id, "state": state, "work_dir": self.work_dir, **fields})

    async def on_kill(self) -> None:
        """The user killed (or marked failed) the deferred task: cancel the job on the cluster."""
        reason = "by the platform: the task was killed or marked failed in Airflow while deferred"
        await asyncio.to_thread(_cancel, await self._target(), self.job_id, reason)
        self.log.info("cancelled SLURM job %s", self.job_id)


class SlurmJobLink(BaseOperatorLink):
    """The task's SLURM job, as ``slurm://<connection>/job/<id>`` (shown as "SLURM job" in the UI)."""

    name = "SLURM job"

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        """The link of the job the task submitted or adopted (empty before it did)."""
        job_id = XCom.get_value(ti_key=ti_key, key=JOB_ID_XCOM)
        return f"slurm://{getattr(operator, 'ssh_conn_id', 'eo_hpc')}/job/{job_id}" if job_id else ""


class SlurmJobOperator(BaseOperator):
    """Runs an ``eo_tasks/hpc/templates/`` job on SLURM over SSH, exactly once, deferring while it runs.

    Args:
        template: Template file name in ``eo_tasks/hpc/templates/``.
        values: The template's variables (may come from XCom).
        job_name: Stem of the script and log names on the cluster.
        ssh_conn_id: Airflow SSH connection of the login node; its extra ``remote_work_dir`` is
            where scripts and logs go (on the cluster's shared filesystem).
        max_resubmits: Resubmissions after TIMEOUT / PREEMPTED / NODE_FAIL / a checkpointed exit.
        poll_interval: Seconds between polls in the triggerer (also the live log's delay).
        deadline_margin: Seconds beyond the job's ``time_limit`` (24 h without one) after which
            a job still not ended is cancelled and the task fails.
        max_unreachable: Seconds the login node or the SLURM controller may stay unreachable.
        templates_dir: Where the template lives (default: the package's ``eo_tasks/hpc/templates/``).
    """

    template_fields = ("values", "job_name")
    operator_extra_links = (SlurmJobLink(),)

    def __init__(
        self,
        *,
        template: str,
        values: Mapping[str, Any],
        job_name: str,
        ssh_conn_id: str = "eo_hpc",
        max_resubmits: int = 3,
        poll_interval: float = 10.0,
        deadline_margin: float = 3600.0,
        max_unreachable: float = 900.0,
        templates_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.template = template
        self.values = values
        self.job_name = job_name
        self.ssh_conn_id = ssh_conn_id
        self.max_resubmits = max_resubmits
        self.poll_interval = poll_interval
        self.deadline_margin = deadline_margin
        self.max_unreachable = max_unreachable
        self.templates_dir = Path(templates_dir) if templates_dir else TEMPLATES_DIR
        self.job_id: str | None = None

    def _slurm(self) -> tuple[Any, SlurmClient]:
        conn = Connection.get(self.ssh_conn_id)
        client = ssh_target(conn).connect()
        work_dir = conn.extra_dejson.get("remote_work_dir", "eo-platform")
        return client, SlurmClient(ParamikoShell(client), f"{work_dir}/{self.job_name}")

    @staticmethod
    def _run_key(context: Any) -> str | None:
        ti = context.get("ti") if context else None
        if ti is None:
            return None
        return run_key(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1))

    def _final_try(self, context: Any) -> bool:
        ti = context.get("ti") if context else None
        return ti is None or int(getattr(ti, "try_number", 1)) > int(self.retries or 0)

    def _submit_or_adopt(self, context: Any, submissions: int) -> None:
        key = self._run_key(context)
        script = render_job_script(self.template, dict(self.values), self.templates_dir)
        client, slurm = self._slurm()
        try:
            live = slurm.find_live(key) if key else None
            if live:
                self.job_id, work_dir = live, slurm.absolute_work_dir()
                self.log.warning("adopting live SLURM job %s of an earlier try (run key %s)", live, key)
            else:
                self.job_id = slurm.submit(script, self.job_name, key)
                work_dir = slurm.work_dir
                self.log.info(
                    "submitted SLURM job %s (%s, submission %d)", self.job_id, self.job_name, submissions + 1
                )
        finally:
            client.close()
        if context and context.get("ti") is not None:
            context["ti"].xcom_push(key=JOB_ID_XCOM, value=self.job_id)
        limit = self.values.get("time_limit") if isinstance(self.values, Mapping) else None
        budget = (_seconds(str(limit)) if limit else 86400) + self.deadline_margin
        array = re.search(r"^#SBATCH --array=(\d+)-(\d+)", script, re.MULTILINE)
        self.defer(
            trigger=SlurmJobTrigger(
                self.ssh_conn_id,
                self.job_id,
                work_dir,
                poll_interval=self.poll_interval,
                max_unreachable=self.max_unreachable,
                deadline=time.time() + budget,
                tasks=int(array.group(2)) - int(array.group(1)) + 1 if array else 1,
            ),
            method_name="execute_complete",
            kwargs={"submissions": submissions + 1},
        )

    def _cancel_if_final(self, context: Any, err: Exception) -> None:
        if self.job_id and self._final_try(context):
            try:
                _cancel(
                    ssh_target(Connection.get(self.ssh_conn_id)),
                    self.job_id,
                    f"by the platform: the task failed: {err}",
                )
                self.log.warning("the task failed for good: cancelled SLURM job %s", self.job_id)
            except HPCError as cancel_err:
                self.log.error("could not cancel SLURM job %s: %s", self.job_id, cancel_err)

    def execute(self, context: Any) -> Any:
        """Submits the job (or adopts this task's live one) and defers."""
        try:
            self._submit_or_adopt(context, submissions=0)
        except Exception as err:
            self._cancel_if_final(context, err)
            raise

    def execute_complete(self, context: Any, event: dict[str, Any], submissions: int = 1) -> dict[str, Any]:
        """Called when the wait ended: succeed, resubmit, or fail with the cause (cancelling the job)."""
        self.job_id = event["job_id"]
        try:
            return self._complete(context, event, submissions)
        except TaskDeferred:
            raise
        except Exception as err:
            if event["state"] == "UNREACHABLE":  # the job may still run: a final try cancels it
                self._cancel_if_final(context, err)
            raise

    def _complete(self, context: Any, event: dict[str, Any], submissions: int) -> dict[str, Any]:
        job_id, state = event["job_id"], event["state"]
        if state == "UNREACHABLE":
            raise HPCError(f"gave up waiting for SLURM job {job_id}: {event.get('error')}")
        if state == "DEADLINE_PASSED":
            raise HPCError(f"{event.get('error')}; its last output:\n{event.get('tail', '')}")
        status = JobStatus(JobState(state), event.get("exit_code"), event.get("detail", ""))
        self.log.info("%s after %d submission(s)", status.describe(job_id), submissions)
        if status.state == JobState.COMPLETED:
            return {"job_id": job_id, "state": state, "submissions": submissions}
        resubmittable = status.state.is_retryable or status.exit_code == RESUBMIT_EXIT_CODE
        if resubmittable and submissions <= self.max_resubmits:
            self.log.warning("job %s ended %s: resubmitting (it resumes from its checkpoint)", job_id, state)
            self._submit_or_adopt(context, submissions)
        detail = status.describe(job_id).partition(f"job {job_id} {state} ")[2]
        raise JobFailedError(
            job_id,
            state,
            f"{detail}; after {submissions} submission(s); last output:\n{event.get('tail', '')}",
        )

    def on_kill(self) -> None:
        """The task was killed while it ran on a worker: cancel the job it submitted."""
        if self.job_id:
            reason = "by the platform: the task was killed or marked failed in Airflow"
            _cancel(ssh_target(Connection.get(self.ssh_conn_id)), self.job_id, reason)
            self.log.info("cancelled SLURM job %s", self.job_id)


class EOSlurmPlugin(AirflowPlugin):
    """Registers the "SLURM job" extra link with the api-server."""

    name = "eo_slurm"
    operator_extra_links: list[Any] = [SlurmJobLink()]  # noqa: RUF012 (AirflowPlugin's own declaration)
