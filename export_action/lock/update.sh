#!/usr/bin/env bash
# Regenerate the action's lock files (requirements with sha256 hashes), for the runner the action
# supports: Linux x86_64, CPython 3.11 (the version action.yml sets up).
#
#   export_action/lock/update.sh              # same versions where the ranges allow, new hashes
#   export_action/lock/update.sh --upgrade    # newest versions pyproject.toml allows
#
# Three files, installed in this order by action.yml:
#   uv.txt            uv itself, installed with pip --require-hashes (uv installs the rest, fast)
#   torch.txt         torch's CPU wheel, installed alone (--no-deps) from PyTorch's CPU index
#   requirements.txt  everything else (torch's dependencies included), from PyPI only
# torch.txt and requirements.txt never share an index: no package can come from the wrong one.
#
# Needs uv (any recent version) on PATH, or UV=/path/to/uv. The torch wheel is downloaded from
# PyTorch's CPU index; TORCH_WHEELS=DIR uses a folder that already holds it instead (same file, same
# sha256: the index serves torch-<version>+cpu-cp311-cp311-manylinux_2_28_x86_64.whl).
set -euo pipefail
cd "$(dirname "$0")/../.."

TORCH_VERSION=2.13.0
UV_VERSION=0.13.9
TORCH_INDEX=https://download.pytorch.org/whl/cpu
uv=${UV:-uv}
lock=export_action/lock
target=(--python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes --no-config
        --custom-compile-command "$lock/update.sh")
upgrade=()
[ "${1:-}" = "--upgrade" ] && upgrade=(--upgrade)

wheels=${TORCH_WHEELS:-}
if [ -z "$wheels" ]; then
    wheels=$(mktemp -d)
    trap 'rm -rf "$wheels"' EXIT
    python3 -m pip download --quiet --no-deps --only-binary :all: --python-version 3.11 \
        --platform manylinux_2_28_x86_64 --index-url "$TORCH_INDEX" -d "$wheels" "torch==$TORCH_VERSION+cpu"
fi

echo "uv==$UV_VERSION" | "$uv" pip compile - "${target[@]}" --index-url https://pypi.org/simple -o "$lock/uv.txt"
wheel="$wheels/torch-$TORCH_VERSION+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
{
    echo "# torch's CPU wheel for CPython 3.11 on Linux x86_64, from $TORCH_INDEX; regenerate with $lock/update.sh"
    echo "torch==$TORCH_VERSION+cpu \\"
    echo "    --hash=sha256:$(sha256sum "$wheel" | cut -d' ' -f1)"
} > "$lock/torch.txt"
# torch's own metadata (from the CPU wheel) decides its dependencies; torch itself is left out.
echo "torch==$TORCH_VERSION+cpu" > "$lock/.torch-constraint.txt"
trap 'rm -f "$lock/.torch-constraint.txt"; [ -n "${TORCH_WHEELS:-}" ] || rm -rf "$wheels"' EXIT
"$uv" pip compile pyproject.toml --extra action "${target[@]}" "${upgrade[@]}" --index-url https://pypi.org/simple \
    --find-links "$wheels" --constraint "$lock/.torch-constraint.txt" --no-emit-package torch \
    -o "$lock/requirements.txt"
