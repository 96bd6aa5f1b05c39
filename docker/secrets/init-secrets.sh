#!/bin/bash
# First start of the compose stack: generate the deployment's secrets into the eo-secrets volume.
# A secret that exists is never replaced (tokens, encrypted connections and the database keep
# working across restarts); nothing here is fixed or shipped with the repository.
#   pg_password      PostgreSQL password of $EO_PG_USER (postgis reads POSTGRES_PASSWORD_FILE)
#   jwt_secret       signs the api-server's JWTs          (AIRFLOW__API_AUTH__JWT_SECRET_CMD)
#   api_secret_key   signs the api-server's sessions      (AIRFLOW__API__SECRET_KEY_CMD)
#   fernet_key       encrypts connection passwords        (AIRFLOW__CORE__FERNET_KEY_CMD)
#   sql_alchemy_conn the metadata database's URL          (AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_CMD)
# Files are readable by the Airflow user (uid 50000, group 0) and PostgreSQL (uid 999), no one else.
set -euo pipefail
dir=${EO_SECRETS_DIR:-/run/eo-secrets}
: "${EO_PG_USER:?}" "${EO_PG_AIRFLOW_DB:?}" "${EO_PG_HOST:=postgis}"
[[ $EO_PG_USER =~ ^[a-z_][a-z0-9_]*$ && $EO_PG_AIRFLOW_DB =~ ^[a-z_][a-z0-9_]*$ ]] \
  || { echo "init-secrets: EO_PG_USER / EO_PG_AIRFLOW_DB must be plain identifiers" >&2; exit 1; }
mkdir -p "$dir"
umask 077

generate() {  # generate NAME PYTHON-EXPRESSION: writes the secret once, atomically
  local name=$1 expr=$2
  [[ -s "$dir/$name" ]] && return 0
  python3 -c "import base64, os, secrets; print($expr)" >"$dir/.$name.tmp"
  mv "$dir/.$name.tmp" "$dir/$name"
  echo "init-secrets: generated $name"
}

generate pg_password 'secrets.token_urlsafe(24)'
generate jwt_secret 'secrets.token_urlsafe(64)'
generate api_secret_key 'secrets.token_urlsafe(32)'
generate fernet_key 'base64.urlsafe_b64encode(os.urandom(32)).decode()'
printf 'postgresql+psycopg2://%s:%s@%s:5432/%s\n' "$EO_PG_USER" "$(<"$dir/pg_password")" "$EO_PG_HOST" \
  "$EO_PG_AIRFLOW_DB" >"$dir/.sql_alchemy_conn.tmp"
mv "$dir/.sql_alchemy_conn.tmp" "$dir/sql_alchemy_conn"

if [[ $(id -u) -eq 0 ]]; then
  if [[ -n ${EO_AUTH_DIR:-} ]]; then  # SimpleAuthManager writes its generated passwords there
    mkdir -p "$EO_AUTH_DIR" && chown "${EO_AIRFLOW_UID:-50000}:0" "$EO_AUTH_DIR" && chmod 0700 "$EO_AUTH_DIR"
  fi
  chown "${EO_AIRFLOW_UID:-50000}:0" "$dir"/*
  chown "${EO_POSTGRES_UID:-999}:0" "$dir/pg_password"
  chmod 0440 "$dir"/*
  chmod 0755 "$dir"  # names are no secret; each file is 0440
fi
