#!/bin/bash
# Starts munge, slurmctld, slurmd and sshd (keys on the shared hpc-keys volume), then follows their logs.
set -euo pipefail
bash /opt/eo/scripts/services.sh up sshd slurm
# The Airflow containers (user airflow, uid 50000) read the client key from the shared volume;
# sshd admits it for this container's user (root): the eo_hpc connection's login (EO_HPC_USER).
chown "${EO_AIRFLOW_UID:-50000}" "$EO_RUN_DIR/ssh/id_ed25519"
chmod 0600 "$EO_RUN_DIR/ssh/id_ed25519"
exec tail -F "$EO_RUN_DIR"/slurm/*.log "$EO_RUN_DIR"/ssh/sshd.log
