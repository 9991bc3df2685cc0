#!/usr/bin/env bash
# Build the project's image (the bot, and what the container sandbox backend runs) on a machine
# without a registry: on the local base image (scripts/build-base-image.sh), with torch from this
# machine's wheel folder and pip's CA bundle bound in for the build only.
#   scripts/build-image.sh [IMAGE]     (default hub-exporter-bot:latest; ENGINE=podman|docker)
# Skips the build when IMAGE exists and was built from the same sources (its label
# hub-exporter.source, a hash of what the Dockerfile copies) and FORCE is unset. On a normal machine plain
# `docker build -t hub-exporter-bot .` does the same from python:3.11-slim.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGE=${1:-hub-exporter-bot:latest}
ENGINE=${ENGINE:-podman}
BASE=${BASE_IMAGE:-localhost/python:3.11-slim}
WHEELS=${WHEELS:-${PIP_FIND_LINKS:-/opt/wheels}}
CA=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}

source=$(cat Dockerfile pyproject.toml README.md $(find exporter bot -name '*.py' -o -name py.typed | sort) | sha256sum | cut -c1-16)
built=$($ENGINE image inspect --format '{{index .Labels "hub-exporter.source"}}' "$IMAGE" 2>/dev/null || true)
if [ -z "${FORCE:-}" ] && [ "$built" = "$source" ]; then
    echo "$IMAGE is up to date (sources $source): nothing to do (FORCE=1 to rebuild)"
    exit 0
fi
ENGINE=$ENGINE scripts/build-base-image.sh "$BASE"

args=(--network host --label "hub-exporter.source=$source" --build-arg "BASE_IMAGE=$BASE" --build-arg "TORCH_INDEX_URL=https://pypi.org/simple")
if [ -d "$WHEELS" ]; then
    args+=(--volume "$WHEELS:/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels)
fi
if [ -f "$CA" ]; then
    args+=(--volume "$CA:/etc/pip-ca.crt:ro" --build-arg PIP_CERT=/etc/pip-ca.crt)
fi
engine=("$ENGINE")
if [ "$ENGINE" = podman ]; then
    engine+=(--runtime runc --cgroup-manager=cgroupfs)  # crun refuses hybrid cgroup v1 hosts
    args+=(--format docker)  # keeps the HEALTHCHECK (the OCI format has none)
fi
"${engine[@]}" build "${args[@]}" -t "$IMAGE" .
echo "built $IMAGE"
