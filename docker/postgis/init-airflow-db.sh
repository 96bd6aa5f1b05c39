#!/bin/bash
# Runs once, on the first start of the PostGIS container: Airflow's metadata database and PostGIS.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE EXTENSION IF NOT EXISTS postgis;
CREATE DATABASE "$EO_PG_AIRFLOW_DB" OWNER "$POSTGRES_USER";
SQL
