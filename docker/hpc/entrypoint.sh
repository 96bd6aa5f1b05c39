#!/bin/bash
# Starts munge, slurmctld, slurmd and sshd (keys on the shared hpc-keys volume), then follows their logs.
set -euo pipefail
bash /opt/eo/scripts/services.sh up sshd slurm
exec tail -F "$EO_RUN_DIR"/slurm/*.log "$EO_RUN_DIR"/ssh/sshd.log
