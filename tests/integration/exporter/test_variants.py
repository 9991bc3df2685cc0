"""dtype variants: built with ONNX Runtime's tools, named as transformers.js loads them, judged against eager PyTorch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from exporter.agreement import check_variant
from exporter.components import build_components
from exporter.files import format_of, repo_folder
from exporter.run import ExportRequest, component_context, load, run_export
from exporter.sample import build_sample_checkpoint
from exporter.variants import DTYPES


@pytest.mark.slow
def test_every_dtype_of_a_classifier_is_built_and_passes(tmp_path: Path) -> None:
    checkpoint = build_sample_checkpoint(tmp_path / "checkpoint", "bert", "sequence-classification")
    request = ExportRequest(model=str(checkpoint), output_dir=tmp_path / "out", formats=("onnx",), dtypes=DTYPES)
    report = run_export(request)
    assert report.status == "passed", report.failures()
    files = {entry.path: entry.bytes for entry in report.files}
    assert set(files) == {"model.onnx", "model_fp16.onnx", "model_quantized.onnx", "model_q4.onnx"}
    assert all(format_of(name) == "onnx" and repo_folder(name) == "onnx" for name in files)
    assert files["model_quantized.onnx"] < files["model.onnx"] and files["model_fp16.onnx"] < files["model.onnx"]
    by_dtype = {variant.dtype: variant for variant in report.variants}
    assert set(by_dtype) == {"fp16", "q8", "q4"}
    assert by_dtype["q8"].figures["top1_agreement"] >= 0.9 and by_dtype["q8"].figures["cosine"] >= 0.99
    assert by_dtype["fp16"].figures["max_abs_diff"] < 1e-2
    markdown = (request.output_dir / "report.md").read_text()
    assert "`model_quantized.onnx`" in markdown and "top1_agreement" in markdown


@pytest.mark.slow
def test_a_variant_of_other_weights_fails_its_criterion(tmp_path: Path) -> None:
    """The agreement criterion can fail: the q8 file of another checkpoint of the same architecture."""
    outputs = {}
    for seed in (0, 1):
        checkpoint = build_sample_checkpoint(tmp_path / f"checkpoint{seed}", "gpt2", "causal-lm", seed=seed)
        request = ExportRequest(
            model=str(checkpoint), output_dir=tmp_path / f"out{seed}", formats=("onnx",), dtypes=("fp32", "q8")
        )
        report = run_export(request)
        assert report.status == "passed", report.failures()
        outputs[seed] = request
    mine, other = outputs[0], outputs[1]
    shutil.copy(other.output_dir / "model_quantized.onnx", mine.output_dir / "model_quantized.onnx")
    loaded = load(mine)
    (component,) = build_components(loaded)
    result = check_variant(component, component_context(loaded, component, mine), "q8", mine.validation_shapes)
    assert not result.passed
    assert result.figures["top1_agreement"] < 0.9
