"""Export Hugging Face checkpoints to ONNX and TorchScript, validated against eager PyTorch.

>>> from exporter import ExportRequest, run_export
>>> report = run_export(ExportRequest(model="path/to/checkpoint", output_dir=Path("out")))
"""

from exporter.errors import ExporterError, ValidationFailedError
from exporter.pipeline import ExportRequest, run_export
from exporter.report import Report
from exporter.specs import InputSpec, ModelSpec, get_spec, register_spec

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
