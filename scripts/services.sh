#!/usr/bin/env bash
# Private, loopback-only services for development, tests and the demo:
#   postgres (PostGIS store + Airflow metadata), sshd (the "HPC login node"),
#   munge + slurmctld + slurmd (a single-node SLURM), airflow (DB migration, connections, pools,
#   the api-server with the UI and the change-review plugin); optional: scheduler (Airflow's
#   scheduler, DAG processor and triggerer, for scheduled runs and backfills; `up` starts it only
#   when named, `down` stops it too).
# Usage: services.sh up|down|status [service...]
# State lives under $EO_RUN_DIR. `up` and `down` are idempotent and `down` stops only
# processes whose pid files this script wrote.
set -euo pipefail
. "$(dirname "$0")/env.sh"

[[ $(id -u) -eq 0 ]] || eo_die "the service stack (PostgreSQL as its own OS user, slurmd) needs root; use sudo or docker compose"

ALL_SERVICES=(postgres sshd munge slurm airflow)
PG_DIR="$EO_RUN_DIR/postgres"
SSH_DIR="$EO_RUN_DIR/ssh"
MUNGE_DIR="$EO_RUN_DIR/munge"
SLURM_DIR="$EO_RUN_DIR/slurm"
NODE="$(hostname -s)"

pid_alive() { [[ -s "$1" ]] && kill -0 "$(<"$1")" 2>/dev/null; }

stop_pidfile() {  # stop_pidfile NAME PIDFILE
  local name=$1 pidfile=$2 pid i
  if pid_alive "$pidfile"; then
    pid="$(<"$pidfile")"
    eo_log "$name: stopping (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local limit=$1 what=$2 i; shift 2
  for ((i = 0; i < limit * 5; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  eo_die "$what did not become healthy within ${limit}s"
}

check_socket_path() {  # unix socket paths are limited to 107 bytes
  ((${#1} < 100)) || eo_die "socket path too long ($1): set EO_RUN_DIR to a shorter directory"
}

# --- PostgreSQL + PostGIS ---------------------------------------------------------------
pg_ctl_() { runuser -u "$EO_PG_SUPERUSER" -- "$EO_PG_BIN/pg_ctl" -D "$PG_DIR/data" "$@"; }
pg_psql() { PGOPTIONS="-c client_min_messages=warning" runuser -u "$EO_PG_SUPERUSER" -- psql -X -q -v ON_ERROR_STOP=1 -h "$PG_DIR" -p "$EO_PG_PORT" "$@"; }

postgres_up() {
  check_socket_path "$PG_DIR/.s.PGSQL.$EO_PG_PORT"
  mkdir -p "$PG_DIR"
  chown "$EO_PG_SUPERUSER:" "$PG_DIR"
  chmod 700 "$PG_DIR"
  runuser -u "$EO_PG_SUPERUSER" -- test -w "$PG_DIR" \
    || eo_die "user $EO_PG_SUPERUSER cannot reach $PG_DIR (a parent directory is private): set EO_RUN_DIR elsewhere"
  if [[ ! -f "$PG_DIR/data/PG_VERSION" ]]; then
    eo_log "postgres: initdb $PG_DIR/data"
    runuser -u "$EO_PG_SUPERUSER" -- "$EO_PG_BIN/initdb" -D "$PG_DIR/data" -U "$EO_PG_SUPERUSER" \
      -E UTF8 --locale=C --auth-local=peer --auth-host=scram-sha-256 >"$PG_DIR/initdb.log"
  fi
  if ! pg_ctl_ status >/dev/null 2>&1; then
    eo_log "postgres: starting on 127.0.0.1:$EO_PG_PORT"
    pg_ctl_ -w -t 60 -l "$PG_DIR/postgres.log" \
      -o "-p $EO_PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1" start >/dev/null
  fi
  local pw_file="$EO_RUN_DIR/postgres.password"
  if [[ ! -s "$pw_file" ]]; then
    (umask 077; head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$pw_file")
  fi
  # Role, databases and extension, created only where missing.
  pg_psql -d postgres -v pw="$(<"$pw_file")" -v role="$EO_PG_USER" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role')\gexec
ALTER ROLE :"role" PASSWORD :'pw';
SQL
  local db
  for db in "$EO_PG_DB" "$EO_PG_AIRFLOW_DB"; do
    pg_psql -d postgres -v db="$db" -v role="$EO_PG_USER" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db')\gexec
SQL
  done
  pg_psql -d "$EO_PG_DB" -c "CREATE EXTENSION IF NOT EXISTS postgis"
  postgres_status
}

postgres_status() {
  pg_psql -d "$EO_PG_DB" -At -c "SELECT 'postgres: ok, ' || split_part(postgis_full_version(), ' ', 1) || ' ' || split_part(postgis_full_version(), ' ', 2)"
}

postgres_down() {
  if [[ -f "$PG_DIR/data/PG_VERSION" ]] && pg_ctl_ status >/dev/null 2>&1; then
    eo_log "postgres: stopping"
    pg_ctl_ -w -m fast stop >/dev/null
  fi
}

# --- sshd: the HPC login node -----------------------------------------------------------
sshd_up() {
  mkdir -p "$SSH_DIR" /run/sshd
  chmod 700 "$SSH_DIR"
  [[ -f "$SSH_DIR/ssh_host_ed25519_key" ]] || ssh-keygen -q -t ed25519 -N '' -C eo-hpc-host -f "$SSH_DIR/ssh_host_ed25519_key"
  [[ -f "$SSH_DIR/id_ed25519" ]] || ssh-keygen -q -t ed25519 -N '' -C eo-platform -f "$SSH_DIR/id_ed25519"
  cp "$SSH_DIR/id_ed25519.pub" "$SSH_DIR/authorized_keys"
  echo "[127.0.0.1]:$EO_SSH_PORT $(cut -d' ' -f1,2 "$SSH_DIR/ssh_host_ed25519_key.pub")" >"$SSH_DIR/known_hosts"
  cat >"$SSH_DIR/sshd_config" <<EOF
Port $EO_SSH_PORT
ListenAddress ${EO_SSH_LISTEN:-127.0.0.1}
HostKey $SSH_DIR/ssh_host_ed25519_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
AllowUsers $(id -un)
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
X11Forwarding no
# Login shells on the "cluster" find the private SLURM and the compute environment.
SetEnv SLURM_CONF=$SLURM_CONF EO_COMPUTE_VENV=$EO_COMPUTE_VENV
Subsystem sftp internal-sftp
EOF
  if ! pid_alive "$SSH_DIR/sshd.pid"; then
    eo_log "sshd: starting on 127.0.0.1:$EO_SSH_PORT"
    /usr/sbin/sshd -f "$SSH_DIR/sshd_config" -E "$SSH_DIR/sshd.log"
  fi
  wait_for 10 sshd sshd_status
  sshd_status
}

ssh_cmd() {
  ssh -i "$SSH_DIR/id_ed25519" -p "$EO_SSH_PORT" -o BatchMode=yes -o ConnectTimeout=5 \
    -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$SSH_DIR/known_hosts" "$(id -un)@127.0.0.1" "$@"
}

sshd_status() { ssh_cmd 'echo "sshd: ok, logged in as $(id -un) on $(hostname)"'; }
sshd_down() { stop_pidfile sshd "$SSH_DIR/sshd.pid"; }

# --- munge ------------------------------------------------------------------------------
munge_up() {
  check_socket_path "$MUNGE_DIR/munge.socket"
  mkdir -p "$MUNGE_DIR"
  chmod 700 "$MUNGE_DIR"
  if [[ ! -s "$MUNGE_DIR/munge.key" ]]; then
    (umask 077; head -c 1024 /dev/urandom >"$MUNGE_DIR/munge.key")
    chmod 400 "$MUNGE_DIR/munge.key"
  fi
  if ! pid_alive "$MUNGE_DIR/munged.pid"; then
    eo_log "munge: starting"
    munged --force --socket="$MUNGE_DIR/munge.socket" --key-file="$MUNGE_DIR/munge.key" \
      --pid-file="$MUNGE_DIR/munged.pid" --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
  fi
  wait_for 10 munge munge_status
  munge_status
}

munge_status() {
  munge -S "$MUNGE_DIR/munge.socket" -n | unmunge -S "$MUNGE_DIR/munge.socket" >/dev/null && echo "munge: ok"
}

munge_down() { stop_pidfile munged "$MUNGE_DIR/munged.pid"; }

# --- SLURM (single node, no systemd, no accounting) --------------------------------------
write_slurm_conf() {
  local mem_mb; mem_mb=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024))
  cat >"$SLURM_CONF" <<EOF
# Generated by scripts/services.sh: a single-node cluster on loopback.
ClusterName=eo-local
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=$EO_SLURMCTLD_PORT
SlurmdPort=$EO_SLURMD_PORT
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_DIR/munge.socket
CredType=cred/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/slurmctld.log
SlurmdLogFile=$SLURM_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
# Keep finished jobs visible to scontrol for an hour (there is no accounting database).
MinJobAge=3600
KillWait=10
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

slurm_up() {
  munge_up >/dev/null
  mkdir -p "$SLURM_DIR"/{state,spool}
  write_slurm_conf
  if ! pid_alive "$SLURM_DIR/slurmctld.pid"; then
    eo_log "slurmctld: starting on 127.0.0.1:$EO_SLURMCTLD_PORT"
    slurmctld
  fi
  if ! pid_alive "$SLURM_DIR/slurmd.pid"; then
    eo_log "slurmd: starting node $NODE"
    slurmd
  fi
  wait_for 30 "slurm node $NODE" node_idle
  slurm_status
}

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null; }
node_idle() {
  case "$(node_state)" in
    idle | mixed | allocated) return 0 ;;
    down* | drain*) scontrol update nodename="$NODE" state=resume >/dev/null 2>&1; return 1 ;;
    *) return 1 ;;
  esac
}
slurm_status() { echo "slurm: ok, node $NODE $(node_state), $(sinfo -V)"; }

slurm_down() {
  stop_pidfile slurmd "$SLURM_DIR/slurmd.pid"
  stop_pidfile slurmctld "$SLURM_DIR/slurmctld.pid"
  munge_down
}

# --- Airflow: metadata DB, connections, pools, api-server (UI + review plugin) ---------------
AIRFLOW_API_PID="$EO_RUN_DIR/airflow-api-server.pid"

airflow_up() {
  [[ -x "$EO_VENV/bin/airflow" ]] || eo_die "no Airflow in $EO_VENV: run 'make setup' first"
  postgres_up >/dev/null
  sshd_up >/dev/null
  . "$EO_REPO/scripts/env.sh"   # picks up the database password
  mkdir -p "$AIRFLOW_HOME" "$EO_AOI_DIR"
  cp -n "$EO_REPO"/aois/*.yaml "$EO_AOI_DIR/"  # the example AOIs, unless the folder has its own copy
  eo_log "airflow: migrating the metadata database"
  "$EO_VENV/bin/airflow" db migrate >"$AIRFLOW_HOME/db-migrate.log" 2>&1 \
    || { tail -n 30 "$AIRFLOW_HOME/db-migrate.log"; eo_die "airflow db migrate failed"; }
  "$EO_VENV/bin/python" "$EO_REPO/scripts/airflow_objects.py" \
    --pg-password-file "$EO_RUN_DIR/postgres.password" --ssh-dir "$SSH_DIR" >"$AIRFLOW_HOME/objects.json"
  "$EO_VENV/bin/airflow" connections import --overwrite "$AIRFLOW_HOME/objects.json" >/dev/null
  "$EO_VENV/bin/airflow" pools import "$EO_REPO/scripts/pools.json" >/dev/null
  rm -f "$AIRFLOW_HOME/objects.json"
  if ! pid_alive "$AIRFLOW_API_PID"; then
    eo_log "airflow: starting the api-server on http://127.0.0.1:$EO_AIRFLOW_PORT (log $AIRFLOW_HOME/api-server.log)"
    # setsid: its own session, so a Ctrl-C in the calling terminal does not reach it.
    setsid "$EO_VENV/bin/airflow" api-server --host 127.0.0.1 --port "$EO_AIRFLOW_PORT" --workers 1 \
      </dev/null >>"$AIRFLOW_HOME/api-server.log" 2>&1 &
    echo $! >"$AIRFLOW_API_PID"
  fi
  wait_for 120 "airflow api-server (log: $AIRFLOW_HOME/api-server.log)" api_server_healthy
  airflow_status
}

api_server_healthy() {
  curl -fsS --max-time 5 "http://127.0.0.1:$EO_AIRFLOW_PORT/api/v2/monitor/health" >/dev/null
}

airflow_status() {
  "$EO_VENV/bin/airflow" connections get eo_hpc -o plain >/dev/null 2>&1 || return 1
  api_server_healthy || { echo "airflow: api-server not answering on 127.0.0.1:$EO_AIRFLOW_PORT"; return 1; }
  echo "airflow: ok, connections eo_postgis + eo_hpc, UI on http://127.0.0.1:$EO_AIRFLOW_PORT (review: /eo-review/)"
}

airflow_down() { stop_pidfile airflow-api-server "$AIRFLOW_API_PID"; }  # the metadata DB lives in postgres

# --- Airflow's scheduler, DAG processor and triggerer: scheduled runs and backfills (optional) --
SCHEDULER_PARTS=(dag-processor triggerer scheduler)

scheduler_up() {
  airflow_up >/dev/null
  local part pidfile
  for part in "${SCHEDULER_PARTS[@]}"; do
    pidfile="$EO_RUN_DIR/airflow-$part.pid"
    pid_alive "$pidfile" && continue
    eo_log "airflow $part: starting (log $AIRFLOW_HOME/$part.log)"
    setsid "$EO_VENV/bin/airflow" "$part" </dev/null >>"$AIRFLOW_HOME/$part.log" 2>&1 &
    echo $! >"$pidfile"
  done
  sleep 5
  scheduler_status
}

scheduler_status() {
  local part
  for part in "${SCHEDULER_PARTS[@]}"; do
    pid_alive "$EO_RUN_DIR/airflow-$part.pid" || { echo "scheduler: airflow $part is not running"; return 1; }
  done
  echo "scheduler: ok, ${SCHEDULER_PARTS[*]} running (DAGs start paused: unpause them in the UI)"
}

scheduler_down() {
  local i
  for ((i = ${#SCHEDULER_PARTS[@]} - 1; i >= 0; i--)); do
    stop_pidfile "airflow ${SCHEDULER_PARTS[i]}" "$EO_RUN_DIR/airflow-${SCHEDULER_PARTS[i]}.pid"
  done
}

# ----------------------------------------------------------------------------------------
main() {
  local action=${1:-}; shift || true
  local services=("$@")
  ((${#services[@]})) || services=("${ALL_SERVICES[@]}")
  mkdir -p "$EO_RUN_DIR"
  case "$action" in
    up)
      for s in "${services[@]}"; do "${s}_up"; done ;;
    down)
      (($#)) || services+=(scheduler)  # stopped first, if it runs
      for ((i = ${#services[@]} - 1; i >= 0; i--)); do "${services[i]}_down"; done ;;
    status)
      local rc=0
      for s in "${services[@]}"; do "${s}_status" || { echo "$s: DOWN"; rc=1; }; done
      return $rc ;;
    *) eo_die "usage: services.sh up|down|status [${ALL_SERVICES[*]} scheduler]" ;;
  esac
}

main "$@"
