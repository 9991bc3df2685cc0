"""Export formats: a Protocol and an explicit registry."""

from __future__ import annotations

from exporter.errors import UsageError
from exporter.formats.base import ExportContext, ExportFormat, Runner
from exporter.formats.onnx import OnnxFormat
from exporter.formats.torchscript import TorchScriptFormat

__all__ = ["FORMATS", "ExportContext", "ExportFormat", "Runner", "parse_formats"]

FORMATS: dict[str, ExportFormat] = {"onnx": OnnxFormat(), "torchscript": TorchScriptFormat()}


def parse_formats(text: str) -> tuple[str, ...]:
    """``"onnx,torchscript"`` → ``("onnx", "torchscript")``, rejecting unknown or empty lists."""
    names = tuple(dict.fromkeys(part.strip().lower() for part in text.split(",") if part.strip()))
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise UsageError(f"unknown format(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(FORMATS)}")
    return names
