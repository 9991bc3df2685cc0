"""ONNX through transformers' own exporter (``torch.export`` then ``torch.onnx``), checked and run in ORT."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from exporter.errors import ExportFailedError, first_line
from exporter.formats.base import ExportContext, Runner
from exporter.reproducible import strip_onnx

#: Protobuf cannot hold more than 2 GiB; stay clear of it and put weights in ``model.onnx_data`` above this.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000


def _dynamic_shapes(context: ExportContext) -> dict[str, Any]:
    """``torch.export`` dynamic shapes mirroring the (nested) inputs: one named ``Dim`` per axis name.

    An axis whose size follows from others (past + new tokens) is left for
    ``torch.export`` to relate (``Dim.DYNAMIC``): a named ``Dim`` cannot be a sum of two others. So is
    a cache length (``past_sequence_length``), whose range the model's code may narrow (past + new tokens within the
    position table): a named ``Dim`` would make that an error instead of a refinement.
    """
    from torch.export import Dim

    from exporter.dummy_inputs import DERIVED_AXES, PAST_AXES
    from exporter.tensors import nest

    dims: dict[str, Any] = {}
    for axis_name in {name for axes in context.dynamic_axes.values() for name in axes.values()}:
        low, high = context.axis_bounds.get(axis_name, (None, None))
        related = axis_name in DERIVED_AXES or axis_name in PAST_AXES
        dims[axis_name] = Dim.DYNAMIC if related else Dim(axis_name, min=low, max=high)
    flat = {
        name: {position: dims[axis_name] for position, axis_name in context.dynamic_axes.get(name, {}).items()}
        for name in context.input_names
    }
    return nest(flat)


def initializer_bytes(model: Any) -> int:
    return sum(value.const_value.nbytes for value in model.graph.initializers.values() if value.const_value)


class OnnxFormat:
    """``model.onnx`` (+ ``model.onnx_data`` for large models), validated with onnxruntime on CPU."""

    name = "onnx"
    suffix = ".onnx"

    def export(self, model: Any, context: ExportContext) -> list[Path]:
        import onnx
        import onnx_ir
        from transformers.exporters import OnnxConfig, OnnxExporter

        config = OnnxConfig(dynamic=True, dynamic_shapes=_dynamic_shapes(context), opset_version=context.opset)
        try:
            program, _metadata = OnnxExporter().export_program(model, dict(context.inputs), config)
        except Exception as e:
            raise ExportFailedError(f"ONNX export failed: {first_line(e)}") from e
        path = context.path(self.suffix)
        data = path.with_name(path.name + "_data")
        data.unlink(missing_ok=True)
        if initializer_bytes(program) > context.external_data_threshold:
            onnx_ir.save(program, str(path), external_data=data.name)
        else:
            onnx_ir.save(program, str(path))
        strip_onnx(path)
        try:
            onnx.checker.check_model(str(path))  # by path: works past 2 GiB
        except onnx.checker.ValidationError as e:
            raise ExportFailedError(f"onnx.checker rejected {path.name}: {first_line(e)}") from e
        return [p for p in (path, data) if p.exists()]

    def load(self, path: Path, context: ExportContext) -> Runner:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Prepacking copies every weight matrix into a GEMM-friendly layout: faster serving, but
        # twice the memory for a one-off validation run (and it defeats mmap of model.onnx_data).
        options.add_session_config_entry("session.disable_prepacking", "1")
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        names = [output.name for output in session.get_outputs()]
        feeds = [inp.name for inp in session.get_inputs()]

        def run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            results = session.run(names, {name: inputs[name] for name in feeds})
            return dict(zip(names, (np.asarray(r) for r in results), strict=True))

        return run

    def note(self, passing: list[dict[str, int]], failing: list[dict[str, int]]) -> str:
        if failing:
            return f"does not match PyTorch on {len(failing)} of {len(passing) + len(failing)} shapes"
        return "dynamic axes: matches PyTorch on every tested shape"
