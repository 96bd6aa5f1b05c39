"""Print the Airflow connections for the private services as `airflow connections import` JSON.

Secrets (the database password, the SSH key path) are read from the run directory and go
straight into Airflow's metadata database; they never touch the repository.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
from pathlib import Path


def connections(pg_password: str, ssh_dir: Path) -> dict[str, dict[str, object]]:
    """Builds the eo_postgis and eo_hpc connections from the running services' settings."""
    host_key = (ssh_dir / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    return {
        "eo_postgis": {
            "conn_type": "postgres",
            "description": "PostGIS store of the land-cover platform",
            "host": os.environ.get("EO_PG_HOST", "127.0.0.1"),
            "port": int(os.environ["EO_PG_PORT"]),
            "login": os.environ["EO_PG_USER"],
            "password": pg_password,
            "schema": os.environ["EO_PG_DB"],
        },
        "eo_hpc": {
            "conn_type": "ssh",
            "description": "HPC login node (SLURM) reached over SSH",
            "host": os.environ.get("EO_HPC_HOST", "127.0.0.1"),
            "port": int(os.environ["EO_SSH_PORT"]),
            "login": getpass.getuser(),
            "extra": json.dumps(
                {
                    "key_file": str(ssh_dir / "id_ed25519"),
                    "host_key": " ".join(host_key),
                    "no_host_key_check": False,
                    "allow_host_key_change": False,
                    "conn_timeout": 10,
                    "remote_work_dir": os.environ["EO_RUN_DIR"] + "/hpc",
                    "compute_venv": os.environ["EO_COMPUTE_VENV"],
                }
            ),
        },
    }


def main() -> None:
    """Prints the connections JSON to stdout."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg-password-file", type=Path, required=True)
    parser.add_argument("--ssh-dir", type=Path, required=True)
    args = parser.parse_args()
    pg_password = args.pg_password_file.read_text().strip()
    print(json.dumps(connections(pg_password, args.ssh_dir), indent=2))


if __name__ == "__main__":
    main()
