#!/bin/bash
# One-shot: migrate Airflow's metadata DB, then create the eo_postgis / eo_hpc connections and pools.
set -euo pipefail
airflow db migrate
echo -n "$EO_PG_PASSWORD" > /tmp/pg.password
python /opt/eo/scripts/airflow_objects.py --pg-password-file /tmp/pg.password --ssh-dir /opt/airflow/hpc-keys \
  > /tmp/connections.json
rm -f /tmp/pg.password
airflow connections import --overwrite /tmp/connections.json
rm -f /tmp/connections.json
airflow pools import /opt/eo/scripts/pools.json
