#!/usr/bin/env bash
# A PostgreSQL cluster for the MLflow server, in a folder of its own, listening on loopback only
# (Debian's postgresql package; no system service needed). Password auth over TCP.
#
#   mlflow/postgres.sh start DATA_DIR [PORT]   create on first use, start, print the backend-store URI
#   mlflow/postgres.sh stop DATA_DIR
#
# The password is MLFLOW_DB_PASSWORD if set, else generated once and kept in DATA_DIR/../<name>.uri (mode 600).
set -euo pipefail
usage="usage: $0 start DATA_DIR [PORT] | stop DATA_DIR"
cmd=${1:?$usage}
data=$(realpath -m "${2:?$usage}")
port=${3:-5432}
uri_file="$(dirname "$data")/$(basename "$data").uri"

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
  command -v initdb >/dev/null || { echo "postgres.sh: PostgreSQL server not found; install it: apt-get install -y postgresql" >&2; exit 1; }
  bin=$(dirname "$(command -v initdb)")
fi
# PostgreSQL refuses to run as root: run it as the postgres user then
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case $cmd in
  start)
    if [ ! -f "$data/PG_VERSION" ]; then
      mkdir -p "$data"
      [ "$(id -u)" = 0 ] && chown postgres: "$data"
      password=${MLFLOW_DB_PASSWORD:-$(head -c 18 /dev/urandom | base64 | tr -d '/+=')}
      pwfile=$(mktemp)
      printf '%s\n' "$password" > "$pwfile"
      [ "$(id -u)" = 0 ] && chown postgres: "$pwfile"
      as_pg "$bin/initdb" -D "$data" -U mlflow --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
      rm -f "$pwfile"
      (umask 077; echo "postgresql://mlflow:$password@127.0.0.1:$port/mlflow" > "$uri_file")
    fi
    as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $data" start >/dev/null
    as_pg "$bin/psql" -h "$data" -p "$port" -U mlflow -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='mlflow'" | grep -q 1 \
      || as_pg "$bin/createdb" -h "$data" -p "$port" -U mlflow mlflow
    cat "$uri_file"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
    ;;
  *)
    echo "$usage" >&2; exit 2 ;;
esac
