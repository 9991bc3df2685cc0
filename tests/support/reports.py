"""Real ``report.json`` files for tests of the readers (bot, Action), built with the exporter's own model."""

from __future__ import annotations

from pathlib import Path

from exporter.report import FileEntry, FormatResult, OutputCheck, Report, ShapeCheck


def write_report(
    folder: Path,
    *,
    status: str = "passed",
    files: dict[str, bytes] | None = None,
    revision: str | None = None,
    markdown: str | None = None,
) -> Report:
    """Write ``files`` (default: a ``model.onnx`` and a ``model.pt``) and a report of them into ``folder``.

    A ``failed`` report has one output of the ONNX file off by 0.5 at atol 0, on shape ``batch_size=3``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    files = {"model.onnx": b"onnx-bytes", "model.pt": b"pt-bytes"} if files is None else files
    for name, data in files.items():
        (folder / name).write_bytes(data)
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
    check = ShapeCheck(shape={"batch_size": 3}, outputs=[output], passed=passed)
    graphs = [name for name in files if name.endswith((".onnx", ".pt"))]
    report = Report(
        model="alice/tiny",
        revision=revision,
        model_type="bert",
        architecture="BertForSequenceClassification",
        task="sequence-classification",
        opset=18,
        export_shape={"batch_size": 3},
        shapes=[{"batch_size": 3}],
        formats=[
            FormatResult(format="onnx" if name.endswith(".onnx") else "torchscript", file=name, checks=[check])
            for name in graphs
        ],
        files=[FileEntry.of(folder, folder / name) for name in files],
    )
    report.write(folder)
    if markdown is not None:
        (folder / "report.md").write_text(markdown, encoding="utf-8")
    return report
