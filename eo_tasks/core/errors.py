"""The platform's error hierarchy.

One root, :class:`EOError`, so callers can catch everything the platform raises; each
subclass also inherits the matching built-in exception (as rasterio's errors do), so code
that only knows ``ValueError`` or ``ConnectionError`` still handles it. Raise with
``raise ... from err`` to keep the cause.
"""

from __future__ import annotations


class EOError(Exception):
    """Root of every error the platform raises on purpose."""


class ConfigError(EOError, ValueError):
    """A configuration file or value is invalid; the message names the file and the field."""


class ServiceUnavailableError(EOError, ConnectionError):
    """A service the platform depends on (PostGIS, the HPC login node, a hub) cannot be reached."""


class HPCError(EOError, RuntimeError):
    """Talking to the HPC cluster failed (SSH, sbatch, squeue/scontrol)."""


class JobSubmissionError(HPCError):
    """The scheduler refused a job (``sbatch`` returned an error)."""


class JobFailedError(HPCError):
    """A job reached a terminal state other than COMPLETED.

    Attributes:
        job_id: The scheduler's job id.
        state: The terminal state (FAILED, TIMEOUT, CANCELLED, NODE_FAIL, PREEMPTED, OUT_OF_MEMORY...).
    """

    def __init__(self, job_id: str, state: str, detail: str = "") -> None:
        self.job_id = job_id
        self.state = state
        super().__init__(f"job {job_id} ended {state}" + (f": {detail}" if detail else ""))


class CatalogError(EOError, LookupError):
    """The scene catalog has no such scene, or a row is in an impossible state."""


class ConcurrentRunError(EOError, RuntimeError):
    """Another run holds the lock of the same output (e.g. the map of one AOI-year) for too long."""


class ProviderError(EOError, ConnectionError):
    """A scene provider (hub, STAC API, archive) failed to answer a search or a download."""


class DownloadError(EOError, OSError):
    """A transfer failed after its retries (network, truncated file, missing asset)."""


class ChecksumError(DownloadError, ValueError):
    """A downloaded file does not match the checksum its provider published; it was quarantined."""


class IncompleteOutputError(EOError, FileNotFoundError):
    """A job's outputs are missing or partial (e.g. a block of an inference array); nothing was stored."""


class LoginNodeUnreachableError(HPCError):
    """The HPC login node cannot be reached over SSH (connection refused, dropped, timed out)."""


class ControllerUnreachableError(HPCError):
    """The login node answers but the SLURM controller does not (slurmctld down or unreachable)."""
