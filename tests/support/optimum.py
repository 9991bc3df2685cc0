"""The one virtualenv with Optimum, shared by the client-parity tests and the benchmarks.

Optimum (``optimum-onnx``) pins transformers < 4.58 while this project runs transformers 5, so it
lives in its own venv: ``$HUB_EXPORTER_OPTIMUM_VENV``, by default ``.venv-optimum/`` in the repository
root (ignored by git). It is built on first use and rebuilt when ``OPTIMUM_PACKAGES`` change (the
list is stamped into the venv once the install succeeded). ``.ci/run`` builds it before pytest:

    .venv/bin/python -m tests.support.optimum
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_VAR = "HUB_EXPORTER_OPTIMUM_VENV"
#: What the venv holds: the CPU torch the project pins, and Optimum's ONNX Runtime integration.
OPTIMUM_PACKAGES = ("torch==2.13.0", "optimum-onnx[onnxruntime]==0.1.0")
_STAMP = "hub-exporter-packages.txt"


class OptimumVenvError(RuntimeError):
    """The Optimum venv could not be created or installed."""


def optimum_venv() -> Path:
    """Where the Optimum venv lives (``$HUB_EXPORTER_OPTIMUM_VENV`` or ``.venv-optimum/``)."""
    return Path(os.environ.get(ENV_VAR) or ROOT / ".venv-optimum").resolve()


def is_ready(venv: Path | None = None) -> bool:
    """True when the venv holds exactly ``OPTIMUM_PACKAGES`` (a finished install)."""
    stamp = (venv or optimum_venv()) / _STAMP
    return stamp.is_file() and stamp.read_text() == "\n".join(OPTIMUM_PACKAGES)


def ensure_optimum_venv(venv: Path | None = None) -> Path:
    """The venv's Python, creating or updating the venv first if needed (one builder at a time)."""
    venv = venv or optimum_venv()
    try:
        venv.parent.mkdir(parents=True, exist_ok=True)
        with open(venv.with_name(f"{venv.name}.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist workers may ask at once
            if not is_ready(venv):
                _build(venv)
    except OSError as e:
        raise OptimumVenvError(f"cannot create {venv}: {e}") from e
    return venv / "bin" / "python"


def _build(venv: Path) -> None:
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *OPTIMUM_PACKAGES],
    ]
    for command in steps:
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise OptimumVenvError(f"{' '.join(command[:4])} … failed ({done.returncode}): {' | '.join(tail)}")
    (venv / _STAMP).write_text("\n".join(OPTIMUM_PACKAGES))


if __name__ == "__main__":
    print(ensure_optimum_venv())
