"""Report contents: status, per-output figures, files with hashes, versions; JSON and markdown."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.errors import ReportError
from exporter.report import FileEntry, FormatResult, Report
from exporter.validation import compare_outputs


def _report(tmp_path: Path, atol: float) -> Report:
    reference = {"logits": np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)}
    perturbed = {"logits": reference["logits"] + np.float32(1e-3)}
    shape = {"batch_size": 2, "sequence_length": 8}
    check = compare_outputs(reference, perturbed, atol, shape)
    (tmp_path / "model.onnx").write_bytes(b"onnx bytes")
    return Report(
        model="ckpt",
        revision="abc123",
        model_type="bert",
        architecture="BertForSequenceClassification",
        task="sequence-classification",
        opset=18,
        export_shape=shape,
        shapes=[shape],
        formats=[FormatResult(format="onnx", file="model.onnx", checks=[check], note="note")],
        files=[FileEntry.of(tmp_path, tmp_path / "model.onnx")],
        versions={"torch": "x", "opset": 18},
    )


def test_differences_are_measured(tmp_path: Path) -> None:
    report = _report(tmp_path, atol=1e-2)
    output = report.formats[0].checks[0].outputs[0]
    assert output.passed
    assert abs(output.max_abs_diff - 1e-3) < 1e-6
    assert abs(output.max_rel_diff - 1e-3 / 2.0) < 1e-6
    assert report.status == "passed"


def test_outside_tolerance_fails(tmp_path: Path) -> None:
    report = _report(tmp_path, atol=1e-4)
    assert report.status == "failed"
    assert report.failures() == ["onnx batch_size=2,sequence_length=8 logits: max_abs_diff 0.001 > atol 0.0001"]


def test_shape_and_name_mismatch_fail() -> None:
    reference = {"logits": np.zeros((2, 3)), "pooler_output": np.zeros((2, 4))}
    check = compare_outputs(reference, {"logits": np.zeros((2, 2))}, 1.0, {"batch_size": 2})
    assert not check.passed
    assert check.error and "missing ['pooler_output']" in check.error
    assert check.outputs[0].shape == [2, 2] and check.outputs[0].reference_shape == [2, 3]


def test_nan_in_export_fails() -> None:
    check = compare_outputs({"x": np.ones(3)}, {"x": np.array([1.0, np.nan, 1.0])}, 1.0, {"batch_size": 1})
    assert not check.passed


def test_json_and_markdown(tmp_path: Path) -> None:
    report = _report(tmp_path, atol=1e-2)
    report.write(tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["status"] == "passed"
    assert data["formats"][0]["checks"][0]["outputs"][0]["name"] == "logits"
    assert set(data["formats"][0]["checks"][0]["outputs"][0]) >= {
        "name", "max_abs_diff", "max_rel_diff", "atol", "passed"
    }  # fmt: skip
    assert data["files"] == [{"path": "model.onnx", "bytes": 10, "sha256": hashlib.sha256(b"onnx bytes").hexdigest()}]
    markdown = (tmp_path / "report.md").read_text()
    assert "| onnx | batch_size=2,sequence_length=8 | `logits` |" in markdown
    assert hashlib.sha256(b"onnx bytes").hexdigest() in markdown


def test_components_are_entries_of_their_own(tmp_path: Path) -> None:
    """A seq2seq export with past: one entry per format × component, labelled in failures and markdown."""
    report = _report(tmp_path, atol=1e-2)
    check = report.formats[0].checks[0]
    failing = compare_outputs({"logits": np.zeros(2)}, {"logits": np.ones(2)}, 1e-4, check.shape)
    report = report.model_copy(
        update={
            "formats": [
                FormatResult(
                    format="onnx", file="encoder_model.onnx", checks=[check], note="ok", component="encoder_model"
                ),
                FormatResult(
                    format="onnx", file="decoder_model.onnx", checks=[failing], note="bad", component="decoder_model"
                ),
            ]
        }
    )
    data = report.to_dict()
    assert [(f["format"], f["component"], f["file"], f["passed"]) for f in data["formats"]] == [
        ("onnx", "encoder_model", "encoder_model.onnx", True),
        ("onnx", "decoder_model", "decoder_model.onnx", False),
    ]
    assert data["status"] == "failed"
    assert report.failures() == [
        "onnx decoder_model batch_size=2,sequence_length=8 logits: max_abs_diff 1 > atol 0.0001"
    ]
    assert "| onnx decoder_model |" in report.to_markdown()
    assert FormatResult(format="onnx", file="model.onnx", checks=[check]).label == "onnx"


def test_report_reads_back_exactly(tmp_path: Path) -> None:
    report = _report(tmp_path, atol=1e-2)
    report.write(tmp_path)
    assert Report.read(tmp_path) == report
    assert Report.from_json(report.to_json()).to_json() == report.to_json()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(schema_version=2), "schema version"),
        (lambda d: d.update(status="passed"), "disagrees"),
        (lambda d: d["formats"][0].update(passed=True), "disagrees"),
        (lambda d: d["formats"][0]["checks"][0]["outputs"][0].update(atol="0.1"), "formats.0.checks.0.outputs.0.atol"),
        (lambda d: d["files"].append({"path": "x"}), "files.1"),
        (lambda d: d.update(surprise=1), "surprise"),
    ],
)
def test_report_reader_is_strict(tmp_path: Path, edit: Callable[[dict[str, Any]], None], message: str) -> None:
    data = _report(tmp_path, atol=1e-4).to_dict()  # a failing report: status "failed"
    edit(data)
    with pytest.raises(ReportError, match=message):
        Report.from_json(json.dumps(data))


def test_report_reader_refuses_non_json() -> None:
    with pytest.raises(ReportError, match="not JSON"):
        Report.from_json(b"\xff{")
    with pytest.raises(ReportError, match="not a JSON object"):
        Report.from_json("[]")


def test_rtol_scales_with_each_reference_element() -> None:
    reference = {"logits": np.array([300.0, 0.5], dtype=np.float32)}
    shape = {"batch": 1}
    large_off = {"logits": np.array([300.001, 0.5], dtype=np.float32)}  # 3e-6 of 300: rounding
    small_off = {"logits": np.array([300.0, 0.501], dtype=np.float32)}  # 2e-3 of 0.5: an error
    assert not compare_outputs(reference, large_off, 1e-4, shape).passed
    assert compare_outputs(reference, large_off, 1e-4, shape, rtol=1e-5).passed
    failing = compare_outputs(reference, small_off, 1e-4, shape, rtol=1e-5)
    assert not failing.passed
    assert (failing.outputs[0].atol, failing.outputs[0].rtol) == (1e-4, 1e-5)


def test_a_failing_variant_fails_the_report(tmp_path: Path) -> None:
    from exporter.report import VariantResult

    report = _report(tmp_path, atol=1e-2)
    variant = VariantResult(
        dtype="q8",
        component="model",
        file="model_quantized.onnx",
        criterion="top-1 agreement ≥ 95% (logits) and cosine similarity ≥ 0.99",
        figures={"cosine": 0.5, "top1_agreement": 0.5},
        passed=False,
    )
    failing = report.model_copy(update={"variants": [variant]})
    assert report.status == "passed" and failing.status == "failed"
    assert failing.failures() == [
        "q8 model_quantized.onnx: cosine 0.5, top1_agreement 0.5; "
        "needs top-1 agreement ≥ 95% (logits) and cosine similarity ≥ 0.99"
    ]
    assert Report.from_json(failing.to_json()) == failing
    assert "| q8 | `model_quantized.onnx` |" in failing.to_markdown()
