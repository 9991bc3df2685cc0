"""``python -m exporter.onnx``: the old ``python -m transformers.onnx`` command line (see :mod:`exporter.legacy_cli`)."""

from exporter.legacy_cli import main

__all__ = ["main"]
