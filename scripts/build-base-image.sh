#!/usr/bin/env bash
# Build a Python 3.11 base image without any registry: a Debian bookworm rootfs from Debian's own
# packages (debootstrap), imported as localhost/python:3.11-slim. It stands in for the Docker Hub
# image the Dockerfile starts from (python on PATH, pip usable, no PEP 668 marker).
#   scripts/build-base-image.sh [IMAGE]     (root; needs debootstrap and podman, or ENGINE=docker)
set -euo pipefail
IMAGE=${1:-localhost/python:3.11-slim}
ENGINE=${ENGINE:-podman}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if $ENGINE image exists "$IMAGE" 2>/dev/null || $ENGINE image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "$IMAGE exists: nothing to do (remove it to rebuild)"
    exit 0
fi
command -v debootstrap >/dev/null || { echo "error: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }

work=$(mktemp -d /var/tmp/base-image.XXXXXX)
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs
debootstrap --variant=minbase --include=python3,python3-pip,python3-venv,ca-certificates \
    bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; echo "error: debootstrap failed" >&2; exit 1; }

# What python:3.11-slim offers: `python` and `pip` on PATH, pip allowed to install system-wide.
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
ln -sf /usr/bin/pip3 "$rootfs/usr/local/bin/pip"
rm -f "$rootfs"/usr/lib/python3*/EXTERNALLY-MANAGED
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*

tar -C "$rootfs" -c . | $ENGINE import \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
echo "built $IMAGE"
