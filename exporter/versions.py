"""Versions of everything that shaped an export, for the report."""

from __future__ import annotations

from importlib import metadata


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions(opset: int | None) -> dict[str, object]:
    packages = ("hub-exporter", "torch", "transformers", "onnx", "onnxruntime", "onnxscript")
    found: dict[str, object] = {name: _version(name) for name in packages}
    found["exporter"] = found.pop("hub-exporter")
    found["opset"] = opset
    return found
