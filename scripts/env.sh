# shellcheck shell=bash
# Shared settings for the platform's scripts. Source it: `. scripts/env.sh`.
# Every value can be overridden from the environment; nothing here is secret
# (generated passwords live under $EO_RUN_DIR, which git ignores).

EO_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export EO_REPO
export EO_RUN_DIR="${EO_RUN_DIR:-$EO_REPO/.run}"
export EO_PYTHON="${EO_PYTHON:-python3.11}"
export EO_VENV="${EO_VENV:-$EO_REPO/.venv}"
export EO_COMPUTE_VENV="${EO_COMPUTE_VENV:-$EO_REPO/.venv-compute}"
# Scenes, datacubes, models and maps (a shared filesystem in production).
export EO_DATA_DIR="${EO_DATA_DIR:-$EO_RUN_DIR/data}"
# The AOI files the DAGs are made from: configuration, seeded with the examples in aois/ by
# `services.sh up` (existing files are never overwritten). Add an AOI by adding a file here.
export EO_AOI_DIR="${EO_AOI_DIR:-$EO_RUN_DIR/aois}"
# Built wheels (Horovod, GDAL bindings) outlive clones of the repo on one machine.
export EO_WHEEL_CACHE="${EO_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/eo-platform/wheels}"

# Loopback ports of the private services.
export EO_PG_PORT="${EO_PG_PORT:-55432}"
export EO_SSH_PORT="${EO_SSH_PORT:-22222}"
export EO_SLURMCTLD_PORT="${EO_SLURMCTLD_PORT:-16817}"
export EO_SLURMD_PORT="${EO_SLURMD_PORT:-16818}"
export EO_AIRFLOW_PORT="${EO_AIRFLOW_PORT:-18080}"

export EO_PG_USER="${EO_PG_USER:-eo}"
export EO_PG_DB="${EO_PG_DB:-eo}"
export EO_PG_AIRFLOW_DB="${EO_PG_AIRFLOW_DB:-airflow}"
export EO_PG_SUPERUSER="${EO_PG_SUPERUSER:-postgres}"   # OS account that owns the cluster
export EO_PG_BIN="${EO_PG_BIN:-/usr/lib/postgresql/15/bin}"

export SLURM_CONF="$EO_RUN_DIR/slurm/slurm.conf"

# Airflow: its state lives in the run directory, its metadata in the private PostgreSQL.
export AIRFLOW_HOME="${AIRFLOW_HOME:-$EO_RUN_DIR/airflow}"
export AIRFLOW__CORE__DAGS_FOLDER="$EO_REPO/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$EO_REPO/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__EXECUTOR="${AIRFLOW__CORE__EXECUTOR:-LocalExecutor}"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
# A small machine: a few task processes at a time (each is a Python interpreter with Airflow loaded),
# and room for a busy api-server before a task's call to the execution API times out.
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-6}"
export AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="${AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT:-30}"
# The DAG files build one DAG per AOI file: re-parse them often, so a new AOI file shows up soon.
export AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="${AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL:-15}"
export AIRFLOW__API__PORT="$EO_AIRFLOW_PORT"
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
# Where task runners and the triggerer reach the Task Execution API (the api-server's port).
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:-http://127.0.0.1:$EO_AIRFLOW_PORT/execution/}"
# Local auth: Airflow 3's SimpleAuthManager with everyone an admin and no login page, which is
# fine for this loopback-only stack and wrong anywhere else (docker-compose.yml sets real users).
# The review UI then asks each reviewer for their name.
export AIRFLOW__CORE__AUTH_MANAGER="${AIRFLOW__CORE__AUTH_MANAGER:-airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager}"
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS:-True}"
if [[ -r "$EO_RUN_DIR/postgres.password" ]]; then
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="postgresql+psycopg2://$EO_PG_USER:$(<"$EO_RUN_DIR/postgres.password")@127.0.0.1:$EO_PG_PORT/$EO_PG_AIRFLOW_DB"
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
fi
eo_log() { printf '\033[1m[eo %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
eo_die() { eo_log "ERROR: $*"; exit 1; }
