"""Deferrable SLURM jobs for Airflow: an operator that submits over SSH and a trigger that waits.

A training job runs for hours; holding a worker slot for that is waste. ``SlurmJobOperator``
renders an ``eo_tasks/hpc/templates/`` script (every value shell-quoted), submits it with ``sbatch`` over
the ``eo_hpc`` SSH connection and defers to ``SlurmJobTrigger``, which polls ``scontrol``/``sacct``
from the triggerer, reconnecting when the login node or its sshd goes away for a while. When the
job ends the operator copies the job's log into the task log, and resubmits jobs that ended for
the cluster's reasons (TIMEOUT, PREEMPTED, NODE_FAIL, or the training's "checkpointed, resubmit
me" exit code) up to ``max_resubmits`` times; the training resumes from its last checkpoint.
Killing the task (mark failed / clear) cancels the SLURM job, whether it is deferred or running.

This module lives in ``plugins/`` because Airflow puts that folder on ``sys.path`` in every
component, the triggerer included, which must import the trigger by its class path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Connection
from airflow.triggers.base import BaseTrigger, TriggerEvent

from eo_tasks.core.errors import HPCError, JobFailedError
from eo_tasks.hpc.slurm import (
    TEMPLATES_DIR,
    JobState,
    ParamikoShell,
    SlurmClient,
    SSHTarget,
    render_job_script,
)

log = logging.getLogger(__name__)
RESUBMIT_EXIT_CODE = 99  # eo_tasks.training.loop: "checkpointed before the time limit, resubmit me"


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


def _poll(target: SSHTarget, job_id: str) -> tuple[str, int | None]:
    client = target.connect()
    try:
        slurm = SlurmClient(ParamikoShell(client), work_dir="")
        state = slurm.state(job_id)
        return state.value, slurm.exit_code(job_id) if state.is_terminal else None
    finally:
        client.close()


def _cancel(target: SSHTarget, job_id: str) -> None:
    client = target.connect()
    try:
        SlurmClient(ParamikoShell(client), work_dir="").cancel(job_id)
    finally:
        client.close()


class SlurmJobTrigger(BaseTrigger):
    """Waits in the triggerer until a SLURM job reaches a terminal state.

    Args:
        ssh_conn_id: Airflow SSH connection of the login node.
        job_id: The SLURM job.
        poll_interval: Seconds between polls.
        max_unreachable: Seconds the login node may stay unreachable before the wait fails.
    """

    def __init__(
        self, ssh_conn_id: str, job_id: str, poll_interval: float = 10.0, max_unreachable: float = 900.0
    ):
        super().__init__()
        self.ssh_conn_id = ssh_conn_id
        self.job_id = job_id
        self.poll_interval = poll_interval
        self.max_unreachable = max_unreachable

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and arguments, to rebuild the trigger in the triggerer."""
        return (
            "eo_slurm.SlurmJobTrigger",
            {
                "ssh_conn_id": self.ssh_conn_id,
                "job_id": self.job_id,
                "poll_interval": self.poll_interval,
                "max_unreachable": self.max_unreachable,
            },
        )

    async def _target(self) -> SSHTarget:
        return ssh_target(await Connection.async_get(self.ssh_conn_id))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Polls until the job ends; survives the login node going away for a while."""
        target = await self._target()
        unreachable_since: float | None = None
        last_state = None
        while True:
            try:
                state, exit_code = await asyncio.to_thread(_poll, target, self.job_id)
            except HPCError as err:
                unreachable_since = unreachable_since or time.monotonic()
                waited = time.monotonic() - unreachable_since
                self.log.warning("job %s: login node unreachable for %.0fs: %s", self.job_id, waited, err)
                if waited > self.max_unreachable:
                    yield TriggerEvent({"job_id": self.job_id, "state": "UNREACHABLE", "error": str(err)})
                    return
            else:
                if unreachable_since is not None:
                    self.log.info("job %s: login node reachable again", self.job_id)
                unreachable_since = None
                if state != last_state:
                    self.log.info("job %s: %s", self.job_id, state)
                    last_state = state
                if JobState(state).is_terminal:
                    yield TriggerEvent({"job_id": self.job_id, "state": state, "exit_code": exit_code})
                    return
            await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """The user killed the deferred task: cancel the job on the cluster."""
        await asyncio.to_thread(_cancel, await self._target(), self.job_id)
        self.log.info("cancelled SLURM job %s", self.job_id)


class SlurmJobOperator(BaseOperator):
    """Runs an ``eo_tasks/hpc/templates/`` job on SLURM over SSH, deferring while it runs.

    Args:
        template: Template file name in ``eo_tasks/hpc/templates/``.
        values: The template's variables (may come from XCom).
        job_name: Stem of the script and log names on the cluster.
        ssh_conn_id: Airflow SSH connection of the login node; its extra ``remote_work_dir`` is
            where scripts and logs go (on the cluster's shared filesystem).
        max_resubmits: Resubmissions after TIMEOUT / PREEMPTED / NODE_FAIL / a checkpointed exit.
        poll_interval: Seconds between state polls in the triggerer.
        templates_dir: Where the template lives (default: the repository's ``eo_tasks/hpc/templates/``).
    """

    template_fields = ("values", "job_name")

    def __init__(
        self,
        *,
        template: str,
        values: Mapping[str, Any],
        job_name: str,
        ssh_conn_id: str = "eo_hpc",
        max_resubmits: int = 3,
        poll_interval: float = 10.0,
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
        self.templates_dir = Path(templates_dir) if templates_dir else TEMPLATES_DIR
        self.job_id: str | None = None

    def _slurm(self) -> tuple[Any, SlurmClient]:
        conn = Connection.get(self.ssh_conn_id)
        client = ssh_target(conn).connect()
        work_dir = conn.extra_dejson.get("remote_work_dir", "eo-platform")
        return client, SlurmClient(ParamikoShell(client), f"{work_dir}/{self.job_name}")

    def _submit_and_defer(self, submissions: int) -> None:
        script = render_job_script(self.template, dict(self.values), self.templates_dir)
        client, slurm = self._slurm()
        try:
            self.job_id = slurm.submit(script, self.job_name)
        finally:
            client.close()
        self.log.info(
            "submitted SLURM job %s (%s, submission %d)", self.job_id, self.job_name, submissions + 1
        )
        self.defer(
            trigger=SlurmJobTrigger(self.ssh_conn_id, self.job_id, poll_interval=self.poll_interval),
            method_name="execute_complete",
            kwargs={"submissions": submissions + 1},
        )

    def execute(self, context: Any) -> Any:
        """Submits the job and defers."""
        self._submit_and_defer(submissions=0)

    def execute_complete(self, context: Any, event: dict[str, Any], submissions: int = 1) -> dict[str, Any]:
        """Called when the job ended: log it, then succeed, resubmit, or fail."""
        job_id, state, exit_code = event["job_id"], event["state"], event.get("exit_code")
        self.job_id = job_id
        if state == "UNREACHABLE":
            raise HPCError(f"lost the login node while waiting for job {job_id}: {event.get('error')}")
        output = self._job_log(job_id)
        self.log.info("SLURM job %s ended %s (exit code %s); its log:\n%s", job_id, state, exit_code, output)
        if state == JobState.COMPLETED.value:
            return {"job_id": job_id, "state": state, "submissions": submissions}
        resubmittable = JobState(state).is_retryable or exit_code == RESUBMIT_EXIT_CODE
        if resubmittable and submissions <= self.max_resubmits:
            self.log.warning("job %s ended %s: resubmitting (it resumes from its checkpoint)", job_id, state)
            self._submit_and_defer(submissions)
        raise JobFailedError(job_id, state, f"exit code {exit_code}; after {submissions} submission(s)")

    def _job_log(self, job_id: str) -> str:
        client, slurm = self._slurm()
        try:
            return slurm.output(job_id)[-20000:]
        except HPCError as err:
            return f"(log unavailable: {err})"
        finally:
            client.close()

    def on_kill(self) -> None:
        """The task was killed while it ran on a worker: cancel the job it submitted."""
        if self.job_id:
            _cancel(ssh_target(Connection.get(self.ssh_conn_id)), self.job_id)
            self.log.info("cancelled SLURM job %s", self.job_id)
