"""Export Hugging Face checkpoints to ONNX and TorchScript, validated against eager PyTorch.

>>> from exporter import ExportRequest, run_export
>>> report = run_export(ExportRequest(model="path/to/checkpoint", output_dir=Path("out")))

Names are imported on first use (PEP 562): ``import exporter`` or ``from exporter.report import
Report`` does not import torch, so the bot and the Action read reports without it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exporter.errors import ExporterError, ValidationFailedError
    from exporter.report import Report
    from exporter.run import ExportRequest, run_export
    from exporter.specs import InputSpec, ModelSpec, get_spec, register_spec

_EXPORTS = {
    "ExportRequest": "exporter.run",
    "ExporterError": "exporter.errors",
    "InputSpec": "exporter.specs",
    "ModelSpec": "exporter.specs",
    "Report": "exporter.report",
    "ValidationFailedError": "exporter.errors",
    "get_spec": "exporter.specs",
    "register_spec": "exporter.specs",
    "run_export": "exporter.run",
}
__all__ = [
    "ExportRequest",
    "ExporterError",
    "InputSpec",
    "ModelSpec",
    "Report",
    "ValidationFailedError",
    "get_spec",
    "register_spec",
    "run_export",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'exporter' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
