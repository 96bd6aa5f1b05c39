"""A shell on the HPC login node: the two operations the SLURM client needs, over paramiko.

The client talks to the login node through a :class:`RemoteShell`, so the same code runs over a
paramiko connection from an Airflow SSH connection, or any other shell. Host keys are pinned.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from eo_tasks.core.errors import HPCError, LoginNodeUnreachableError

if TYPE_CHECKING:
    import paramiko


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
        """Opens an SSH connection, verifying the host key.

        Raises:
            LoginNodeUnreachableError: The login node refused or dropped the connection.
        """
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
            raise LoginNodeUnreachableError(
                f"login node unreachable: cannot connect to {self.host}:{self.port}: {err}"
            ) from err
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
        except (OSError, EOFError, paramiko.SSHException) as err:  # timeouts, resets, closed sessions
            raise LoginNodeUnreachableError(
                f"login node unreachable: `{command.split()[0]}` failed to run: {err!r}"
            ) from err
        return CommandResult(status, out, errors)

    def put_text(self, text: str, remote_path: str) -> None:
        """Uploads ``text`` over SFTP to a temporary name, then renames it into place."""
        import paramiko

        tmp = f"{remote_path}.part"
        try:
            with self._client.open_sftp() as sftp:
                sftp.putfo(io.BytesIO(text.encode()), tmp)
                sftp.posix_rename(tmp, remote_path)
        except (EOFError, paramiko.SSHException) as err:
            raise LoginNodeUnreachableError(
                f"login node unreachable: upload of {remote_path}: {err}"
            ) from err
        except OSError as err:  # SFTP's own errors: permissions, a missing folder
            raise HPCError(f"could not upload {remote_path}: {err}") from err
