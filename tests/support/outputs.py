"""A sandbox output folder as the exporter leaves it, built without exporting (files and a real report)."""

from __future__ import annotations

from pathlib import Path

from tests.support.reports import write_report


def write_output(out: Path, *, status: str = "passed", onnx: bytes = b"onnx-bytes", pt: bytes = b"pt-bytes") -> None:
    """A sandbox output as the exporter leaves it: files, and a real report of them."""
    write_report(
        out, status=status, files={"model.onnx": onnx, "model.pt": pt}, revision="0" * 40, markdown="### report"
    )
