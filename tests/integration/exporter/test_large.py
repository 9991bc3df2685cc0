"""Large checkpoints: weights in ``model.onnx_data``, checked by path, loaded by ONNX Runtime, listed in the report.

A real 2 GB model is the benchmark's job (``benchmarks/bench_large.py``); here the threshold is lowered
so a tiny model takes the same path.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from exporter import ExportRequest, run_export


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_external_data_above_threshold(checkpoint_factory, tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort

    checkpoint = checkpoint_factory("bert", "sequence-classification")
    out = tmp_path / "out"
    request = ExportRequest(
        model=str(checkpoint),
        output_dir=out,
        task="sequence-classification",
        formats=("onnx",),
        external_data_threshold=0,
    )
    report = run_export(request)

    assert report.status == "passed"
    graph, data = out / "model.onnx", out / "model.onnx_data"
    assert data.stat().st_size > 0
    listed = {entry["path"]: entry for entry in json.loads((out / "report.json").read_text())["files"]}
    assert set(listed) == {"model.onnx", "model.onnx_data"}
    for name, entry in listed.items():
        assert entry["sha256"] == _sha256(out / name)
        assert entry["bytes"] == (out / name).stat().st_size
    assert "model.onnx_data" in (out / "report.md").read_text()

    onnx.checker.check_model(str(graph))  # by path, as for a model past 2 GiB
    header = onnx.load(str(graph), load_external_data=False)
    external = [t for t in header.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    inline = [t for t in header.graph.initializer if t.data_location != onnx.TensorProto.EXTERNAL]
    assert external and all(len(t.raw_data) <= 256 for t in inline)  # only scalars and biases stay inline
    locations = {entry.value for t in external for entry in t.external_data if entry.key == "location"}
    assert locations == {"model.onnx_data"}  # relative: the folder can move
    session = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
    assert [output.name for output in session.get_outputs()] == ["logits"]
