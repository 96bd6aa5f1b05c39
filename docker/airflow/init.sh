#!/bin/bash
# One-shot: migrate Airflow's metadata DB, then create the eo_postgis / eo_hpc connections and pools.
# The database password comes from the generated secrets (docker/secrets/init-secrets.sh); the HPC
# connection logs in as EO_HPC_USER, the user the cluster's sshd admits (not this container's user).
set -euo pipefail
: "${EO_HPC_USER:?set EO_HPC_USER to the login node's user}"
[[ $EO_HPC_USER =~ ^[a-z_][a-z0-9_-]*$ ]] || { echo "init: EO_HPC_USER $EO_HPC_USER is no user name" >&2; exit 1; }
airflow db migrate
umask 077
python /opt/eo/scripts/airflow_objects.py --pg-password-file /run/eo-secrets/pg_password \
  --ssh-dir /opt/airflow/hpc-keys \
  | python -c 'import json, os, sys; c = json.load(sys.stdin); c["eo_hpc"]["login"] = os.environ["EO_HPC_USER"]; json.dump(c, sys.stdout)' \
  > /tmp/connections.json
airflow connections import --overwrite /tmp/connections.json
rm -f /tmp/connections.json
airflow pools import /opt/eo/scripts/pools.json
