"""A sandbox output folder as the exporter leaves it, built without exporting (files and a real report)."""

from __future__ import annotations

from pathlib import Path

from exporter.report import FileEntry, FormatResult, OutputCheck, Report, ShapeCheck


def write_output(out: Path, *, status: str = "passed", onnx: bytes = b"onnx-bytes", pt: bytes = b"pt-bytes") -> None:
    """A sandbox output as the exporter leaves it: files, and a real report of them."""
    out.mkdir(exist_ok=True)
    (out / "model.onnx").write_bytes(onnx)
    (out / "model.pt").write_bytes(pt)
    passed = status == "passed"
    output = OutputCheck(
        name="logits",
        shape=[3, 2],
        reference_shape=[3, 2],
        max_abs_diff=0.0 if passed else 0.5,
        max_rel_diff=0.0 if passed else 0.25,
        atol=0.0,
        passed=passed,
    )
    check = ShapeCheck(shape={"batch": 3}, outputs=[output], passed=passed)
    Report(
        model="alice/tiny",
        revision="0" * 40,
        model_type="bert",
        architecture="BertForSequenceClassification",
        task="sequence-classification",
        opset=18,
        export_shape={"batch": 3},
        shapes=[{"batch": 3}],
        formats=[
            FormatResult(format="onnx", file="model.onnx", checks=[check]),
            FormatResult(format="torchscript", file="model.pt", checks=[check]),
        ],
        files=[FileEntry.of(out, out / "model.onnx"), FileEntry.of(out, out / "model.pt")],
    ).write(out)
    (out / "report.md").write_text("### report")
