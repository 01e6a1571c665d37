#!/usr/bin/env bash
# Build brainscan images with podman (here: no Docker engine needed) or docker (Jenkins agents).
# Usage: build.sh COMPONENT...   components: gateway inference model-sync mlflow training
# Environment:
#   CONTAINER_ENGINE  podman (default) or docker
#   IMAGE_PREFIX  repository prefix (default localhost/brainscan: localhost/brainscan/<component>)
#   IMAGE_TAG     tag (default latest)
#   BASE_IMAGE    base image (podman default: the debootstrap-made local base, built when
#                 missing; docker default: python:3.11-slim-bookworm from Docker Hub)
#   CA_BUNDLE     CA bundle passed as the build secret `ca_bundle` (default: the system bundle)
set -euo pipefail
cd "$(dirname "$0")/../.."

engine="${CONTAINER_ENGINE:-podman}"
prefix="${IMAGE_PREFIX:-localhost/brainscan}"
tag="${IMAGE_TAG:-latest}"
local_base="localhost/brainscan/python-base:3.11-bookworm"
case "$engine" in
    podman) base="${BASE_IMAGE:-$local_base}"
            # docker-format images keep HEALTHCHECK (the OCI format has no field for it).
            engine_flags=(--format docker --layers) ;;
    docker) base="${BASE_IMAGE:-python:3.11-slim-bookworm}"
            export DOCKER_BUILDKIT=1  # RUN --mount (secrets, caches) needs BuildKit
            engine_flags=() ;;
    *) echo "CONTAINER_ENGINE must be podman or docker, not '$engine'" >&2; exit 2 ;;
esac
ca_bundle="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
# runc, ulimits (containers.conf) and chroot isolation: what works on these machines.
export CONTAINERS_CONF="${CONTAINERS_CONF:-$PWD/infra/images/containers.conf}"
export BUILDAH_ISOLATION="${BUILDAH_ISOLATION:-chroot}"

# One Dockerfile builds every component; COMPONENT picks the stage (infra/images/Dockerfile).
dockerfile="infra/images/Dockerfile"
components="gateway inference model-sync mlflow training"

check_component() {
    case " $components " in
        *" $1 "*) ;;
        *) echo "unknown component '$1' ($components)" >&2; return 1 ;;
    esac
}

version_of() {
    # The component's own package version; MLflow's image is versioned by the MLflow it runs.
    local pyproject
    case "$1" in
        gateway | inference | model-sync) pyproject="services/$1/pyproject.toml" ;;
        training) pyproject="training/pyproject.toml" ;;
        mlflow) sed -n "s/^mlflow==\([^ ]*\).*/\1/p" infra/mlflow/requirements.txt; return ;;
    esac
    sed -n 's/^version = "\(.*\)"/\1/p' "$pyproject" | head -n 1
}

[[ $# -gt 0 ]] || { sed -n '2,10p' "$0" >&2; exit 2; }
for component in "$@"; do check_component "$component"; done

if [[ "$engine" == podman && "$base" == "$local_base" ]]; then
    bash infra/images/build-base.sh "$base"
fi

secret=()
[[ -s "$ca_bundle" ]] && secret=(--secret "id=ca_bundle,src=$ca_bundle")
revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
source_url="$(git config --get remote.origin.url 2>/dev/null || echo unknown)"
created="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

for component in "$@"; do
    image="$prefix/$component:$tag"
    echo "== $image ($dockerfile, COMPONENT=$component, base $base)"
    start=$SECONDS
    "$engine" build "${engine_flags[@]}" \
        -f "$dockerfile" \
        "${secret[@]}" \
        --build-arg "COMPONENT=$component" \
        --build-arg "BASE_IMAGE=$base" \
        --build-arg "VERSION=$(version_of "$component")" \
        --build-arg "REVISION=$revision" \
        --build-arg "CREATED=$created" \
        --build-arg "SOURCE_URL=$source_url" \
        -t "$image" .
    size=$("$engine" image inspect --format '{{.Size}}' "$image")
    echo "== $image: $((size / 1000000)) MB, built in $((SECONDS - start)) s"
done
