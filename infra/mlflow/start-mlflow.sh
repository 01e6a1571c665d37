#!/bin/sh
# Start the MLflow tracking + registry server inside its container (see docs/containers.md).
# Every choice is an environment variable so compose, Kubernetes or a plain `docker run` can
# point it at sqlite + a local directory (default) or PostgreSQL + S3 (production).
set -eu

: "${MLFLOW_BACKEND_STORE_URI:=sqlite:////var/lib/mlflow/mlflow.db}"
: "${MLFLOW_ARTIFACTS_DESTINATION:=/var/lib/mlflow/artifacts}"
: "${MLFLOW_HOST:=0.0.0.0}"
: "${MLFLOW_PORT:=5000}"
# One worker: several cost ~0.5 GB each and stall requests on reused connections.
: "${MLFLOW_WORKERS:=1}"
# Host headers MLflow answers to (DNS-rebinding protection): the compose/Kubernetes service name
# and loopback. Add the public name when exposing it.
: "${MLFLOW_SERVER_ALLOWED_HOSTS:=mlflow,mlflow:*,localhost,localhost:*,127.0.0.1,127.0.0.1:*}"
# The registry needs no background job runner.
: "${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:=false}"
export MLFLOW_SERVER_ALLOWED_HOSTS MLFLOW_SERVER_ENABLE_JOB_EXECUTION

case "$MLFLOW_ARTIFACTS_DESTINATION" in
    /*) mkdir -p "$MLFLOW_ARTIFACTS_DESTINATION" ;;
esac

# Artifacts are proxied (--serve-artifacts, the default): clients upload and download through
# this server, so they need no access to the artifact store itself.
exec mlflow server \
    --backend-store-uri "$MLFLOW_BACKEND_STORE_URI" \
    --artifacts-destination "$MLFLOW_ARTIFACTS_DESTINATION" \
    --host "$MLFLOW_HOST" \
    --port "$MLFLOW_PORT" \
    --workers "$MLFLOW_WORKERS" \
    "$@"
