"""ONNX, made by one of three methods and checked, then run in ONNX Runtime for validation.

Methods, fastest first (``OnnxFormat.methods``); the report says which one made each file:

* ``torchscript``: ``torch.onnx.export(dynamo=False)`` of a ``torch.jit.trace`` (the same trace the
  TorchScript file is saved from when both formats are exported), with the graph's input and output
  names and dynamic axes given directly. A trace freezes shape-dependent Python branches, so this
  file only counts once it validates on every shape; :mod:`exporter.run` falls back otherwise.
* ``transformers``: transformers' own ``OnnxExporter`` (``torch.export`` then ``torch.onnx``), which
  also writes weights above the external-data threshold to ``<component>.onnx_data``: models whose
  weights exceed that threshold start here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from exporter.errors import ExportFailedError, first_line
from exporter.formats.base import ExportContext, Runner
from exporter.reproducible import strip_onnx

#: Protobuf cannot hold more than 2 GiB; stay clear of it and put weights in ``model.onnx_data`` above this.
EXTERNAL_DATA_THRESHOLD = 1_800_000_000
#: How a file can be made, fastest first.
METHODS = ("torchscript", "transformers")


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


def weight_bytes(model: Any) -> int:
    """Bytes of a module's parameters and buffers (what becomes initializers)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())


class OnnxFormat:
    """``model.onnx`` (+ ``model.onnx_data`` for large models), validated with onnxruntime on CPU."""

    name = "onnx"
    suffix = ".onnx"
    methods = METHODS

    def export(self, model: Any, context: ExportContext) -> list[Path]:
        """The first method that exports (see :meth:`first_method`); validation is the caller's."""
        return self.export_from(model, context, self.methods.index(self.first_method(model, context)))[0]

    def first_method(self, model: Any, context: ExportContext) -> str:
        """``transformers`` when the weights go to external data, else the fastest method."""
        return "transformers" if weight_bytes(model) > context.external_data_threshold else self.methods[0]

    def export_from(self, model: Any, context: ExportContext, start: int, trace: Any = None) -> tuple[list[Path], str]:
        """Try the methods from ``methods[start]`` on; the files and the method that wrote them.

        ``trace``, the component's ``torch.jit.trace`` when the TorchScript file has one, saves
        tracing again in the ``torchscript`` method. Raises the last method's failure.
        """
        error: ExportFailedError | None = None
        for method in self.methods[start:]:
            try:
                return self.export_with(method, model, context, trace), method
            except ExportFailedError as e:
                error = e
        raise error or ExportFailedError("ONNX export failed: no export method left to try")

    def export_with(self, method: str, model: Any, context: ExportContext, trace: Any = None) -> list[Path]:
        """Write the component's file by one method, then strip and check it."""
        import onnx

        path = context.path(self.suffix)
        data = path.with_name(path.name + "_data")
        data.unlink(missing_ok=True)
        if method == "torchscript":
            # No stack traces or doc strings to strip: this exporter writes none (verbose=False).
            _export_torchscript(trace if trace is not None else model, context, path)
        else:
            _export_transformers(model, context, path, data)
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


def _export_torchscript(model: Any, context: ExportContext, path: Path) -> None:
    """``torch.onnx.export(dynamo=False)`` of a trace (or of the module, traced on the way)."""
    import torch

    from exporter.formats.torchscript import tuple_outputs
    from exporter.tensors import flatten_tensors

    module = model if isinstance(model, torch.jit.ScriptModule) else tuple_outputs(model, context)
    example = tuple(flatten_tensors(context.inputs).values())
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarning, deprecation of the TorchScript exporter
            torch.onnx.export(
                module,
                example,
                str(path),
                dynamo=False,
                input_names=list(context.input_names),
                output_names=list(context.output_names),
                dynamic_axes={
                    name: dict(axes) for name, axes in {**context.dynamic_axes, **context.output_axes}.items()
                },
                opset_version=context.opset,
                do_constant_folding=True,
            )
    except Exception as e:
        path.unlink(missing_ok=True)
        raise ExportFailedError(f"ONNX export (TorchScript-based) failed: {first_line(e)}") from e


def _export_transformers(model: Any, context: ExportContext, path: Path, data: Path) -> None:
    """transformers' ``OnnxExporter`` with the project's named dynamic shapes."""
    import onnx_ir
    from transformers.exporters import OnnxConfig, OnnxExporter

    config = OnnxConfig(dynamic=True, dynamic_shapes=_dynamic_shapes(context), opset_version=context.opset)
    try:
        program, _metadata = OnnxExporter().export_program(model, dict(context.inputs), config)
    except Exception as e:
        raise ExportFailedError(f"ONNX export failed: {first_line(e)}") from e
    if initializer_bytes(program) > context.external_data_threshold:
        onnx_ir.save(program, str(path), external_data=data.name)
    else:
        onnx_ir.save(program, str(path))
