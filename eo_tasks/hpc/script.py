"""Job scripts: rendering the Jinja2 templates safely, and the exit-status record every job leaves.

A value on an ``#SBATCH`` line is outside the shell's quoting (the line is a comment to bash): a
newline in it ends the directive and the next line runs as a command on the cluster. So the values
that reach directive lines are checked against strict patterns (the same checks as the AOI file's
``hpc`` section), every string value is refused if it holds a control character, and the rendered
header is checked once more; values in the script body are shell-quoted as before.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.validate import check_no_control_chars, check_slurm_values

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

# Template variables that the templates put on #SBATCH lines, and the pattern each must fit.
DIRECTIVE_VALUES = {
    "job_name": "name",
    "partition": "name",
    "account": "name",
    "time_limit": "time",
    "gpus_per_node": "int",
    "nodes": "int",
    "tasks_per_node": "int",
    "ntasks": "int",
    "signal_seconds": "int",
    "array_tasks": "int",
    "modules": "module",
}
_DIRECTIVE_LINE = re.compile(r"#SBATCH --[a-z][a-z-]*(=[A-Za-z0-9_.:@+/,-]+)?")


def check_job_values(values: Mapping[str, Any], where: str = "job") -> None:
    """Refuses values that could break out of a directive line (see the module's docstring).

    Raises:
        ConfigError: Naming the value.
    """
    check_slurm_values(values, where, DIRECTIVE_VALUES)
    for name, value in values.items():
        _check_strings(value, f"{where}.{name}")


def _check_strings(value: Any, where: str) -> None:
    if isinstance(value, str):
        check_no_control_chars(value, where)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_strings(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_strings(item, f"{where}[{i}]")


def check_directives(script: str) -> None:
    """Every ``#SBATCH`` line is one option with one plain value, and all of them open the script.

    Raises:
        ConfigError: A directive line is malformed or sits below the first command.
    """
    in_header = True
    for number, line in enumerate(script.splitlines(), 1):
        if line.startswith("#SBATCH"):
            if not in_header or not _DIRECTIVE_LINE.fullmatch(line):
                raise ConfigError(f"job script line {number}: refusing a malformed #SBATCH line {line!r}")
        elif line.strip() and not line.startswith("#"):
            in_header = False


def render_job_script(
    template: str, values: Mapping[str, object], templates_dir: Path = TEMPLATES_DIR
) -> str:
    """Renders an sbatch template from ``eo_tasks/hpc/templates/``.

    Directive values are checked by pattern and no string value may hold a control character
    (:func:`check_job_values`); every substituted value is then shell-quoted (Jinja's
    ``finalize``), so a body value such as ``x; touch /tmp/x`` stays one word; the rendered
    ``#SBATCH`` lines are checked once more (:func:`check_directives`). A missing value is an
    error, never an empty string.

    Args:
        template: File name inside ``templates_dir``, e.g. ``probe.sbatch.j2``.
        values: The template's variables.
        templates_dir: Where the templates live.

    Returns:
        The batch script.

    Raises:
        ConfigError: A value could change the script's directives; the message names it.
    """
    check_job_values(values, where=template)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir),
        undefined=jinja2.StrictUndefined,
        finalize=lambda value: shlex.quote(str(value)),
        keep_trailing_newline=True,
        autoescape=False,
    )
    script = env.get_template(template).render(**values)
    check_directives(script)
    return script


def exit_status_path(status_dir: str, job_id: str, task: int | str = 0) -> str:
    """Where a job (an array's task) records its script's exit status: ``<dir>/<job>.<task>.exit``."""
    return f"{status_dir.rstrip('/')}/{job_id}.{task}.exit"


def with_exit_status(script: str, status_dir: str) -> str:
    """The script with an EXIT trap that records its exit status in ``status_dir``.

    SLURM forgets a job ``MinJobAge`` seconds after it ended and, without accounting, ``sacct``
    knows nothing: the file lets the orchestrator still tell success from failure. The trap goes
    right after the ``#SBATCH`` header (directives below the first command are ignored by sbatch).
    A job killed with SIGKILL (time limit, scancel after KillWait) leaves no file.
    """
    if not re.fullmatch(r"/[A-Za-z0-9_./+-]*", status_dir):
        raise ConfigError(f"job status folder {status_dir!r}: expected an absolute path of plain characters")
    lines = script.splitlines(keepends=True)
    at = 0
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            break
        at = i + 1
    target = exit_status_path(status_dir, "${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}", "${SLURM_ARRAY_TASK_ID:-0}")
    trap = (
        f'__eo_status="{target}"\n'
        'trap \'rc=$?; echo "$rc" > "$__eo_status.part" && mv -f "$__eo_status.part" "$__eo_status"\' EXIT\n'
    )
    if at and not lines[at - 1].endswith("\n"):
        lines[at - 1] += "\n"
    return "".join([*lines[:at], trap, *lines[at:]])
