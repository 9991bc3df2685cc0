"""ONNX Runtime's transformer optimizer recognises the exported encoder: attention and layer norms fuse.

Users speed an encoder up with ``onnxruntime.transformers.optimizer`` (and Optimum's ``optimize``,
built on it); its pattern matchers only fire on graphs shaped like the ones they were written for.
Files made through ``torch.export`` fused no ``Attention`` at all; the TorchScript-based export does.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from exporter.run import ExportRequest, run_export
from exporter.sample import build_sample_checkpoint

LAYERS, HEADS, HIDDEN = 2, 4, 32


@pytest.mark.slow
def test_bert_fuses_into_attention_and_skip_layer_norm(tmp_path: Path) -> None:
    from onnxruntime.transformers.optimizer import optimize_model

    checkpoint = build_sample_checkpoint(
        tmp_path / "bert",
        "bert",
        "sequence-classification",
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        hidden_size=HIDDEN,
    )
    report = run_export(
        ExportRequest(
            model=str(checkpoint), output_dir=tmp_path / "out", task="sequence-classification", formats=("onnx",)
        )
    )
    assert report.formats[0].method == "torchscript"

    optimized = optimize_model(
        str(tmp_path / "out" / "model.onnx"), model_type="bert", num_heads=HEADS, hidden_size=HIDDEN, opt_level=0
    )
    fused = optimized.get_fused_operator_statistics()
    assert fused["Attention"] == LAYERS
    assert fused["SkipLayerNormalization"] == 2 * LAYERS
    assert fused["EmbedLayerNormalization"] == 1

    # The fused graph still gives the exported file's answer, padding included.
    fused_path = tmp_path / "fused.onnx"
    optimized.save_model_to_file(str(fused_path))
    rng = np.random.default_rng(0)
    feeds = {
        "input_ids": rng.integers(5, 100, (3, 9), dtype=np.int64),
        "attention_mask": np.array([[1] * 9, [1] * 9, [1] * 5 + [0] * 4], dtype=np.int64),
        "token_type_ids": np.zeros((3, 9), dtype=np.int64),
    }
    plain = ort.InferenceSession(str(tmp_path / "out" / "model.onnx"), providers=["CPUExecutionProvider"])
    faster = ort.InferenceSession(str(fused_path), providers=["CPUExecutionProvider"])
    expected = plain.run(["logits"], {i.name: feeds[i.name] for i in plain.get_inputs()})[0]
    actual = faster.run(["logits"], {i.name: feeds[i.name] for i in faster.get_inputs()})[0]
    np.testing.assert_allclose(actual, expected, atol=1e-4, rtol=1e-4)
