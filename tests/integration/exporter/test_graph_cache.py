"""Weights-only re-export: a second commit with new weights reuses the first export's graph, validated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from transformers import BertForSequenceClassification

from exporter.graph_cache import MANIFEST, GraphCache
from exporter.run import ExportRequest, run_export
from exporter.sample import build_sample_checkpoint, reweight_checkpoint

pytestmark = pytest.mark.slow


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    path = build_sample_checkpoint(tmp_path / "checkpoint", "bert", "sequence-classification")
    return reweight_checkpoint(path, seed=1)


def export(checkpoint: Path, output: Path, cache: Path):
    return run_export(ExportRequest(model=str(checkpoint), output_dir=output, cache_dir=cache))


def logits(checkpoint: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    model = BertForSequenceClassification.from_pretrained(checkpoint).eval()
    with torch.no_grad():
        return model(**{name: torch.from_numpy(value) for name, value in feeds.items()}).logits.numpy()


def test_new_weights_reuse_the_stored_graph(checkpoint: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = export(checkpoint, tmp_path / "first", cache)
    assert first.graph_cache is not None and first.graph_cache.reused_from is None
    assert "stored" in first.graph_cache.note
    assert GraphCache(cache).lookup(first.graph_cache.key or "") is not None

    rng = np.random.default_rng(0)
    feeds = {
        "input_ids": rng.integers(0, 128, (3, 9), dtype=np.int64),
        "attention_mask": np.ones((3, 9), dtype=np.int64),
        "token_type_ids": np.zeros((3, 9), dtype=np.int64),
    }
    old = logits(checkpoint, feeds)
    reweight_checkpoint(checkpoint, seed=2)
    second = export(checkpoint, tmp_path / "second", cache)

    assert second.status == "passed"
    assert second.graph_cache is not None and second.graph_cache.key == first.graph_cache.key
    assert second.graph_cache.reused_from == str(checkpoint)
    assert {(f.format, f.method) for f in second.formats} == {("onnx", "torchscript"), ("torchscript", "trace")}
    assert "onnx" not in second.timings and "reuse" in second.timings
    saved = json.loads((tmp_path / "second" / "report.json").read_text())
    assert saved["graph_cache"]["reused_from"] == str(checkpoint)
    assert "Graph reused from" in (tmp_path / "second" / "report.md").read_text()

    new = logits(checkpoint, feeds)
    session = ort.InferenceSession(str(tmp_path / "second" / "model.onnx"), providers=["CPUExecutionProvider"])
    (exported,) = session.run(["logits"], feeds)
    np.testing.assert_allclose(exported, new, atol=1e-5)
    assert np.abs(exported - old).max() > 1e-2  # the old weights are gone
    traced = torch.jit.load(str(tmp_path / "second" / "model.pt"))
    with torch.no_grad():
        (traced_logits,) = traced(*(torch.from_numpy(feeds[n]) for n in feeds))
    np.testing.assert_allclose(traced_logits.numpy(), new, atol=1e-5)


def test_a_wrong_mapping_fails_validation_and_falls_back_to_a_full_export(checkpoint: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = export(checkpoint, tmp_path / "first", cache)
    assert first.graph_cache is not None and first.graph_cache.key is not None
    entry = GraphCache(cache).entry(first.graph_cache.key)
    manifest = json.loads((entry / MANIFEST).read_text())
    mapping = manifest["components"]["model"]["initializers"]
    ends = ("attention.self.value.weight", "attention.output.dense.weight")
    value, dense = (name for name, how in mapping.items() if how["parameter"].endswith(ends))
    mapping[value], mapping[dense] = mapping[dense], mapping[value]  # same shape, the wrong weights
    (entry / MANIFEST).write_text(json.dumps(manifest))

    reweight_checkpoint(checkpoint, seed=2)
    second = export(checkpoint, tmp_path / "second", cache)
    assert second.status == "passed"
    assert second.graph_cache is not None and second.graph_cache.reused_from is None
    assert "did not validate" in second.graph_cache.note and "exported in full" in second.graph_cache.note
    assert "onnx" in second.timings  # exported again


def test_equal_weights_are_not_stored(tmp_path: Path) -> None:
    """A fresh init has equal weights (every LayerNorm scale is ones) the exporter may merge: not reusable."""
    fresh = build_sample_checkpoint(tmp_path / "fresh", "bert", "sequence-classification")
    report = export(fresh, tmp_path / "out", tmp_path / "cache")
    assert report.status == "passed" and report.graph_cache is not None
    assert "not stored" in report.graph_cache.note and "several parameters" in report.graph_cache.note
    shutil.rmtree(tmp_path / "out")
    assert GraphCache(tmp_path / "cache").lookup(report.graph_cache.key or "") is None
