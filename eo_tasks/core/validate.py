"""Checks every configuration's from_dict shares: required and unknown keys, mappings, paths, SLURM values."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from eo_tasks.core.errors import ConfigError


def require_key(data: Mapping[str, Any], key: str, where: str) -> Any:
    """The value of a required key; ``where`` names the section in the error."""
    if key not in data or data[key] is None:
        raise ConfigError(f"{where}.{key}: missing")
    return data[key]


def check_known_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    """Refuses keys a section does not know (a typo must not be silently ignored)."""
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {unknown}; allowed: {sorted(allowed)}")


def as_mapping(value: Any, where: str) -> Mapping[str, Any]:
    """The value as a mapping, or a ConfigError that names the section."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    return value


def expand_path(path: str) -> str:
    """A path with ``$VARS`` and ``~`` expanded; an unset variable is a ConfigError."""
    expanded = os.path.expandvars(path)
    if "$" in expanded:
        raise ConfigError(f"path {path!r} uses an undefined environment variable")
    return expanded


# What may reach a job script's ``#SBATCH`` lines. A value there is outside the shell's quoting: a
# newline ends the directive and the next line runs as a command, so these are checked by pattern,
# at AOI load (HPCSpec) and again when a script is rendered (eo_tasks.hpc.script).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLURM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}")
SLURM_PATTERNS: dict[str, re.Pattern[str]] = {
    "name": _SLURM_NAME,  # partition, account, job name, connection id
    "module": re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+/-]{0,127}"),
    "time": re.compile(r"(\d{1,3}-)?\d{1,2}:\d{2}:\d{2}"),
}


def check_no_control_chars(value: str, where: str) -> str:
    """Refuses a string with a control character (newline, carriage return, NUL, escape...)."""
    if _CONTROL.search(value):
        raise ConfigError(f"{where}: control characters (e.g. a newline) are not allowed, got {value!r}")
    return value


def check_slurm_value(kind: str, value: Any, where: str) -> Any:
    """A value for an ``#SBATCH`` line, checked against its kind's strict pattern.

    Args:
        kind: ``name`` (partition, account, job name), ``module``, ``time`` ([D-]HH:MM:SS) or
            ``int`` (a non-negative integer, e.g. GPUs per node).
        value: The value.
        where: The field, named in the error.

    Raises:
        ConfigError: The value does not fit; the message names the field.
    """
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{where}: expected a non-negative integer, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string, got {type(value).__name__}")
    check_no_control_chars(value, where)
    if not SLURM_PATTERNS[kind].fullmatch(value):
        shape = {"time": "[D-]HH:MM:SS", "name": "letters, digits, _ . + -"}.get(kind, "a module name")
        raise ConfigError(f"{where}: expected a SLURM {kind} ({shape}), got {value!r}")
    return value


# The AOI file's ``hpc`` fields that reach #SBATCH lines, and their kinds.
HPC_SLURM_FIELDS = {
    "conn_id": "name",
    "partition": "name",
    "account": "name",
    "time_limit": "time",
    "nodes": "int",
    "tasks_per_node": "int",
    "gpus_per_node": "int",
    "modules": "module",
}


def check_slurm_values(
    values: Mapping[str, Any], where: str, kinds: Mapping[str, str] = HPC_SLURM_FIELDS
) -> None:
    """Checks each of ``values`` named in ``kinds`` with :func:`check_slurm_value` (None: unset).

    A ``module`` kind takes a list (each ``module load`` name checked).

    Raises:
        ConfigError: Naming the field, e.g. ``hpc.account`` or ``hpc.modules[1]``.
    """
    for name, kind in kinds.items():
        value = values.get(name)
        if value is None or value == "":
            continue
        if kind != "module":
            check_slurm_value(kind, value, f"{where}.{name}")
        elif isinstance(value, str) or not isinstance(value, list | tuple):
            raise ConfigError(f"{where}.{name}: expected a list of module names, got {value!r}")
        else:
            for i, module in enumerate(value):
                check_slurm_value("module", module, f"{where}.{name}[{i}]")
