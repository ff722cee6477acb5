#!/usr/bin/env bash
# The team's MLflow tracking server: PostgreSQL backend store, artifacts on S3 proxied by the server
# (clients upload and download through it, so they need no S3 credentials). See mlflow/README.md.
#
# Settings (environment):
#   MLFLOW_BACKEND_STORE_URI      postgresql://USER:PASSWORD@HOST:5432/DB   (required; mlflow/postgres.sh prints one)
#   MLFLOW_ARTIFACTS_DESTINATION  s3://BUCKET/PREFIX                        (required)
#   MLFLOW_HOST                   interface to bind (default 127.0.0.1: this machine only)
#   MLFLOW_PORT                   default 5000
#   MLFLOW_WORKERS                server worker processes (default 2)
#   MLFLOW_ALLOWED_HOSTS          Host headers accepted when bound beyond loopback, e.g. mlflow.internal:5000
#   AWS_* / an instance profile   the server's own S3 credentials; MLFLOW_S3_ENDPOINT_URL for a non-AWS endpoint
set -euo pipefail

: "${MLFLOW_BACKEND_STORE_URI:?set MLFLOW_BACKEND_STORE_URI=postgresql://USER:PASSWORD@HOST:5432/DB (mlflow/postgres.sh start prints one)}"
: "${MLFLOW_ARTIFACTS_DESTINATION:?set MLFLOW_ARTIFACTS_DESTINATION=s3://BUCKET/PREFIX}"
HOST=${MLFLOW_HOST:-127.0.0.1}
PORT=${MLFLOW_PORT:-5000}
MLFLOW=${MLFLOW_BIN:-$(command -v mlflow || echo "$(dirname "$0")/../.venv/bin/mlflow")}

# The store URI carries the database password: mlflow reads it from MLFLOW_BACKEND_STORE_URI in its environment,
# so it never appears on a command line (`ps` shows every process's arguments to every user of the machine).
export MLFLOW_BACKEND_STORE_URI MLFLOW_ARTIFACTS_DESTINATION
args=(server
  --serve-artifacts
  --host "$HOST" --port "$PORT"
  --workers "${MLFLOW_WORKERS:-2}")
if [ -n "${MLFLOW_ALLOWED_HOSTS:-}" ]; then
  args+=(--allowed-hosts "$MLFLOW_ALLOWED_HOSTS")
fi
# never echo the store URI: it carries the database password
echo "mlflow server: http://$HOST:$PORT, artifacts proxied to $MLFLOW_ARTIFACTS_DESTINATION" >&2
exec "$MLFLOW" "${args[@]}"
