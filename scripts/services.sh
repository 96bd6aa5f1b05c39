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
  "$EO_VENV/bin/airflow" connections get eo_hpc -o plain >/dev/null 2>&1 \
    || { echo "airflow: no eo_hpc connection (or the metadata database is unreachable)"; return 1; }
  if [[ -s "$AIRFLOW_API_PID" ]] && ! pid_alive "$AIRFLOW_API_PID"; then
    echo "airflow: the api-server (pid $(<"$AIRFLOW_API_PID")) is not running (\`services.sh up airflow\` restarts it)"
    return 1
  fi
  local health
  health=$(curl -fsS --max-time 5 "http://127.0.0.1:$EO_AIRFLOW_PORT/api/v2/monitor/health" 2>/dev/null) \
    || { echo "airflow: api-server not answering on 127.0.0.1:$EO_AIRFLOW_PORT"; return 1; }
  [[ $health == *'"metadatabase":{"status":"healthy"'* ]] \
    || { echo "airflow: the api-server reports its metadata database unhealthy: $health"; return 1; }
  echo "airflow: ok, connections eo_postgis + eo_hpc, UI on http://127.0.0.1:$EO_AIRFLOW_PORT (review: /eo-review/)"
}

airflow_down() { stop_pidfile airflow-api-server "$AIRFLOW_API_PID"; }  # the metadata DB lives in postgres

# --- Airflow's scheduler, DAG processor and triggerer: scheduled runs and backfills (optional) --
# `up scheduler` starts the three and a supervisor that restarts any of them that dies (a database
# outage kills them), with backoff; `status` says ok only when each one's process is alive AND its
# heartbeat is healthy; `down` stops the supervisor first, then the three.
SCHEDULER_PARTS=(dag-processor triggerer scheduler)
SUPERVISOR_PID="$EO_RUN_DIR/airflow-supervisor.pid"
SUPERVISOR_LOG="$AIRFLOW_HOME/supervisor.log"
EO_AIRFLOW_BIN="${EO_AIRFLOW_BIN:-$EO_VENV/bin/airflow}"   # tests supervise a stand-in
EO_SUPERVISE_INTERVAL="${EO_SUPERVISE_INTERVAL:-5}"          # seconds between checks
EO_SUPERVISE_BACKOFF="${EO_SUPERVISE_BACKOFF:-5}"            # first restart delay, doubled per failure
EO_SUPERVISE_MAX_BACKOFF="${EO_SUPERVISE_MAX_BACKOFF:-300}"
EO_SUPERVISE_STABLE="${EO_SUPERVISE_STABLE:-300}"            # up this long: the backoff starts over

part_pidfile() { echo "$EO_RUN_DIR/airflow-$1.pid"; }

start_part() {  # start_part PART: starts one of SCHEDULER_PARTS in its own session, logging to AIRFLOW_HOME
  local part=$1
  mkdir -p "$AIRFLOW_HOME"
  setsid "$EO_AIRFLOW_BIN" "$part" </dev/null >>"$AIRFLOW_HOME/$part.log" 2>&1 &
  echo $! >"$(part_pidfile "$part")"
}

scheduler_parts_up() {  # starts every part whose process is not running
  local part
  for part in "${SCHEDULER_PARTS[@]}"; do
    pid_alive "$(part_pidfile "$part")" && continue
    eo_log "airflow $part: starting (log $AIRFLOW_HOME/$part.log)"
    start_part "$part"
  done
}

supervise() {  # the supervisor's loop (runs until `down` stops it)
  declare -A failures=() next_try=() started=()
  local part now delay
  trap 'echo "$(date -Is) supervisor: stopping" >>"$SUPERVISOR_LOG"; exit 0' TERM INT
  mkdir -p "$AIRFLOW_HOME"
  echo "$(date -Is) supervisor: watching ${SCHEDULER_PARTS[*]} every ${EO_SUPERVISE_INTERVAL}s (pid $$)" >>"$SUPERVISOR_LOG"
  while :; do
    now=$(date +%s)
    for part in "${SCHEDULER_PARTS[@]}"; do
      if pid_alive "$(part_pidfile "$part")"; then
        if ((now - ${started[$part]:-0} >= EO_SUPERVISE_STABLE)); then failures[$part]=0; fi
        continue
      fi
      ((now >= ${next_try[$part]:-0})) || continue
      failures[$part]=$((${failures[$part]:-0} + 1))
      delay=$((EO_SUPERVISE_BACKOFF << (failures[$part] - 1 > 6 ? 6 : failures[$part] - 1)))
      ((delay > EO_SUPERVISE_MAX_BACKOFF)) && delay=$EO_SUPERVISE_MAX_BACKOFF
      start_part "$part"
      started[$part]=$now
      next_try[$part]=$((now + delay))
      echo "$(date -Is) supervisor: airflow $part was not running: restarted (pid $(<"$(part_pidfile "$part")"), restart ${failures[$part]} in a row; next one no sooner than ${delay}s)" >>"$SUPERVISOR_LOG"
    done
    sleep "$EO_SUPERVISE_INTERVAL" &
    wait $! || true
  done
}

supervisor_up() {
  pid_alive "$SUPERVISOR_PID" && return 0
  mkdir -p "$AIRFLOW_HOME"
  eo_log "airflow supervisor: starting (log $SUPERVISOR_LOG)"
  setsid bash "$EO_REPO/scripts/services.sh" supervise </dev/null >>"$SUPERVISOR_LOG" 2>&1 &
  echo $! >"$SUPERVISOR_PID"
}

scheduler_up() {
  airflow_up >/dev/null
  scheduler_parts_up
  supervisor_up
  local i
  for ((i = 0; i < 24; i++)); do scheduler_status >/dev/null 2>&1 && break; sleep 5; done
  scheduler_status
}

# The health of each part from its heartbeat: the api-server's health endpoint when it answers,
# else `airflow jobs check` on this host. Prints "part=healthy|unhealthy" lines.
scheduler_health() {
  local health
  if health=$(curl -fsS --max-time 5 "http://127.0.0.1:$EO_AIRFLOW_PORT/api/v2/monitor/health" 2>/dev/null); then
    "$EO_VENV/bin/python" - "$health" <<'PY'
import json, sys
health = json.loads(sys.argv[1])
for part, key in (("dag-processor", "dag_processor"), ("triggerer", "triggerer"), ("scheduler", "scheduler")):
    print(f"{part}={'healthy' if (health.get(key) or {}).get('status') == 'healthy' else 'unhealthy'}")
PY
    return
  fi
  local part job
  declare -A jobs=([dag-processor]=DagProcessorJob [triggerer]=TriggererJob [scheduler]=SchedulerJob)
  for part in "${SCHEDULER_PARTS[@]}"; do
    job=${jobs[$part]}
    ( "$EO_AIRFLOW_BIN" jobs check --job-type "$job" --local >/dev/null 2>&1 \
        && echo "$part=healthy" || echo "$part=unhealthy" ) &
  done
  wait
}

scheduler_status() {
  local part rc=0 health
  health=$(scheduler_health)
  for part in "${SCHEDULER_PARTS[@]}"; do
    if ! pid_alive "$(part_pidfile "$part")"; then
      echo "scheduler: airflow $part is not running (\`services.sh up scheduler\` restarts it)"; rc=1
    elif ! grep -qx "$part=healthy" <<<"$health"; then
      echo "scheduler: airflow $part runs (pid $(<"$(part_pidfile "$part")")) but its heartbeat is not healthy"; rc=1
    fi
  done
  if ! pid_alive "$SUPERVISOR_PID"; then
    echo "scheduler: the supervisor is not running (\`services.sh up scheduler\` starts it)"; rc=1
  fi
  ((rc == 0)) && echo "scheduler: ok, ${SCHEDULER_PARTS[*]} running with healthy heartbeats, supervised (log $SUPERVISOR_LOG)"
  return $rc
}

scheduler_down() {
  local i
  stop_pidfile "airflow supervisor" "$SUPERVISOR_PID"  # first: it would restart what we stop
  for ((i = ${#SCHEDULER_PARTS[@]} - 1; i >= 0; i--)); do
    stop_pidfile "airflow ${SCHEDULER_PARTS[i]}" "$(part_pidfile "${SCHEDULER_PARTS[i]}")"
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
    supervise) supervise ;;  # internal: the loop `up scheduler` starts in the background
    status)
      local rc=0
      # A scheduler that `up scheduler` started is part of the stack: report it too.
      if (($# == 0)) && compgen -G "$EO_RUN_DIR/airflow-*.pid" | grep -qv api-server; then services+=(scheduler); fi
      for s in "${services[@]}"; do "${s}_status" || { echo "$s: DOWN"; rc=1; }; done
      return $rc ;;
    *) eo_die "usage: services.sh up|down|status [${ALL_SERVICES[*]} scheduler]" ;;
  esac
}

main "$@"
