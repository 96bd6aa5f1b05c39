"""The AOI's ``preprocess`` section: which Dask cluster builds the cubes, validated before any job."""

from __future__ import annotations

import pytest

from eo_tasks.core.errors import ConfigError
from eo_tasks.core.preprocess_spec import PreprocessSpec


def test_the_default_is_the_local_cluster_and_slurm_is_chosen_by_the_section() -> None:
    assert PreprocessSpec.from_dict({}).cluster == "local"
    spec = PreprocessSpec.from_dict(
        {"cluster": "slurm", "jobs": 4, "cores": 8, "memory": "32GB", "partition": "cpu"}
    )
    assert (spec.jobs, spec.cores, spec.memory, spec.partition) == (4, 8, "32GB", "cpu")


@pytest.mark.parametrize(
    "bad",
    [
        {"cluster": "pbs"},
        {"cluster": "slurm", "partition": "debug; rm -rf /"},
        {"account": "a\n#SBATCH --uid=0"},
        {"memory": "lots"},
        {"walltime": "2h"},
        {"jobs": 0},
        {"cores": "many"},
        {"nodes": 3},
    ],
)
def test_a_bad_preprocess_section_is_a_config_error(bad: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="preprocess"):
        PreprocessSpec.from_dict(bad)
