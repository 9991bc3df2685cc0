"""Every supported architecture × task exports to both formats and validates on two shapes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from exporter.pipeline import ExportRequest, run_export
from exporter.sample import TINY_CONFIGS
from exporter.support import support_matrix

PAIRS = [(model_type, task) for model_type, tasks in support_matrix().items() for task in tasks]


def test_every_supported_pair_has_a_test() -> None:
    """The registry and the test matrix cannot drift apart: each pair needs a tiny config here."""
    untested = sorted({model_type for model_type, _ in PAIRS} - set(TINY_CONFIGS))
    assert not untested, f"supported but untested architectures: {untested}"
    assert len(PAIRS) >= 100


@pytest.mark.slow
@pytest.mark.parametrize(("model_type", "task"), PAIRS, ids=[f"{m}-{t}" for m, t in PAIRS])
def test_export_and_validate(model_type: str, task: str, checkpoint_factory, tmp_path: Path) -> None:
    checkpoint = checkpoint_factory(model_type, task)
    report = run_export(ExportRequest(model=str(checkpoint), task=task, output_dir=tmp_path))

    assert report.status == "passed", report.failures()
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["status"] == "passed"
    assert data["model_type"] == model_type
    assert data["task"] == task
    assert [f["format"] for f in data["formats"]] == ["onnx", "torchscript"]
    shapes = {json.dumps(s, sort_keys=True) for s in data["shapes"]}
    assert len(shapes) == 2
    for fmt in data["formats"]:
        assert len(fmt["checks"]) == 2
        assert all(check["outputs"] for check in fmt["checks"])
    written = {f["path"] for f in data["files"]}
    assert {"model.onnx", "model.pt"} <= written
