"""Exported bytes do not depend on where torch, transformers and the exporter are installed.

Two "installs" are the same site-packages reached through two symlinked prefixes of different
lengths (put first on ``sys.path``), so every module's ``__file__`` differs as it would between two
venvs, without copying a gigabyte of torch. Each export runs in its own interpreter.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

_EXPORT = """
import hashlib, json, sys
from pathlib import Path
import torch, transformers
from exporter import ExportRequest, run_export
prefix = sys.argv[1]
assert torch.__file__.startswith(prefix) and transformers.__file__.startswith(prefix), (torch.__file__, prefix)
out = Path(sys.argv[3])
shape = {"batch_size": 2, "sequence_length": 16}
request = ExportRequest(model=sys.argv[2], output_dir=out, task="sequence-classification", validation_shapes=(shape,))
report = run_export(request)
assert report.status == "passed", report.failures()
print(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.glob("model.*"))}))
"""


def _start_export(site: Path, checkpoint: Path, out: Path) -> subprocess.Popen[str]:
    """Export in an interpreter that imports everything through ``site`` (a symlink to site-packages)."""
    site.parent.mkdir(parents=True)
    site.symlink_to(sysconfig.get_paths()["purelib"], target_is_directory=True)
    return subprocess.Popen(
        [sys.executable, "-c", _EXPORT, str(site), str(checkpoint), str(out)],
        env={**os.environ, "PYTHONPATH": str(site)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _hashes(process: subprocess.Popen[str], site: Path, out: Path) -> dict[str, str]:
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]
    for path in out.glob("model.*"):
        data = path.read_bytes()
        assert str(site).encode() not in data and b"site-packages" not in data, f"{path.name} holds an install path"
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_install_paths_give_identical_files(checkpoint_factory, tmp_path: Path) -> None:
    checkpoint = checkpoint_factory("bert", "sequence-classification")
    sites = [tmp_path / "a" / "site-packages", tmp_path / "install-b" / "deeper" / "site-packages"]
    outs = [tmp_path / "out-a", tmp_path / "out-b"]
    processes = [_start_export(site, checkpoint, out) for site, out in zip(sites, outs, strict=True)]  # in parallel
    first, second = (_hashes(p, site, out) for p, site, out in zip(processes, sites, outs, strict=True))
    assert sorted(first) == ["model.onnx", "model.pt"]
    assert first == second
    assert hashlib.sha256(b"").hexdigest() not in first.values()
