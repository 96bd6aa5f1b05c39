"""Small checks that every configuration's from_dict shares: required keys, unknown keys, mappings, paths."""

from __future__ import annotations

import os
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
