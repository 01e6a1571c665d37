#!/usr/bin/env bash
# Make the local base image (Debian bookworm + its Python 3.11) from Debian's packages alone.
#
# Where no container registry can be reached, `FROM python:3.11-slim-bookworm` cannot be pulled;
# debootstrap fetches the same distribution from Debian's archive instead, and `podman import`
# turns the tree into an image. infra/images/Dockerfile takes it through its BASE_IMAGE build
# argument.
# Usage: build-base.sh [IMAGE]   (default localhost/brainscan/python-base:3.11-bookworm)
set -euo pipefail

image="${1:-${BASE_IMAGE:-localhost/brainscan/python-base:3.11-bookworm}}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# The Python the Dockerfile expects (python3.11 on PATH, venv support) and TLS roots.
packages="python3,python3-venv,ca-certificates"

if podman image exists "$image" && [[ "${REBUILD_BASE:-0}" != 1 ]]; then
    echo "base image $image exists (REBUILD_BASE=1 makes it again)"
    exit 0
fi
for tool in debootstrap podman; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y $tool" >&2; exit 1; }
done

root="$(mktemp -d /var/tmp/brainscan-base.XXXXXX)"
trap 'rm -rf "$root"' EXIT

echo "debootstrap bookworm ($packages) into $root"
debootstrap --variant=minbase --include="$packages" bookworm "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"

# What an image never needs: package lists, caches, docs, man pages, locales but English.
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/var/log/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name 'en*' -exec rm -rf {} + 2>/dev/null || true
# The same name the python images give the interpreter, so `python` works in both bases.
ln -sf python3 "$root/usr/bin/python"

tar -C "$root" --numeric-owner -c . | podman import \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' \
    --message "debootstrap --variant=minbase bookworm + $packages" \
    - "$image" >/dev/null
echo "made $image ($(podman image inspect --format '{{.Size}}' "$image") bytes)"
