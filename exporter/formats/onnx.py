"""ONNX, made by one of two methods and checked, then run in ONNX Runtime for validation.

Methods, fastest first (``OnnxFormat.methods``); the report says which one made each file:

* ``torchscript``: ``torch.onnx.export(dynamo=False)`` of the module traced with its weights as
  graph inputs, with the graph's input and output names and dynamic axes given directly; the axes
  are named, transposed weights folded, the graph checked, and the weights written in from the
  module's own tensors (:mod:`exporter.weights`). A trace freezes shape-dependent Python branches,
  so this file only counts once it validates on every shape; :mod:`exporter.run` falls back otherwise.
* ``transformers``: transformers' own ``OnnxExporter`` (``torch.export`` then ``torch.onnx``).

Either writes weights above the external-data threshold to ``<component>.onnx_data``.
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


class OnnxFormat:
    """``model.onnx`` (+ ``model.onnx_data`` for large models), validated with onnxruntime on CPU."""

    name = "onnx"
    suffix = ".onnx"
    methods = METHODS

    def export(self, model: Any, context: ExportContext) -> list[Path]:
        """The first method that exports; validation is the caller's."""
        return self.export_from(model, context, 0)[0]

    def export_from(self, model: Any, context: ExportContext, start: int) -> tuple[list[Path], str]:
        """Try the methods from ``methods[start]`` on; the files and the method that wrote them.

        Raises the last method's failure.
        """
        error: ExportFailedError | None = None
        for method in self.methods[start:]:
            try:
                return self.export_with(method, model, context), method
            except ExportFailedError as e:
                error = e
        raise error or ExportFailedError("ONNX export failed: no export method left to try")

    def export_with(self, method: str, model: Any, context: ExportContext) -> list[Path]:
        """Write the component's file by one method, with its axes named (:mod:`exporter.axes`) and
        the graph checked by ``onnx.checker``."""
        import onnx

        from exporter.axes import name_axes

        path = context.path(self.suffix)
        if method == "torchscript":
            # No stack traces or doc strings to strip: this exporter writes none (verbose=False).
            return _export_torchscript(model, context, path)  # checked before its weights are written
        files = _export_transformers(model, context, path)
        strip_onnx(path)
        name_axes(path, context.dynamic_axes, context.fixed_output_dims)
        try:
            onnx.checker.check_model(str(path))  # by path: works past 2 GiB
        except onnx.checker.ValidationError as e:
            raise ExportFailedError(f"onnx.checker rejected {path.name}: {first_line(e)}") from e
        return files

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


def _export_torchscript(model: Any, context: ExportContext, path: Path) -> list[Path]:
    """``torch.onnx.export(dynamo=False)`` of the module traced with its weights as graph inputs; then
    axes named and the weights attached and streamed in (:mod:`exporter.weights`)."""
    import onnx
    import torch

    from exporter import weights
    from exporter.axes import name_model_axes
    from exporter.tensors import flatten_tensors

    module = weights.WeightsAsInputs(model, context.input_names, context.output_names)
    example = (*flatten_tensors(context.inputs).values(), *module.weights.values())
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarning, deprecation of the TorchScript exporter
            torch.onnx.export(
                module,
                example,
                str(path),  # the graph only: small
                dynamo=False,
                input_names=[*context.input_names, *module.weights],
                output_names=list(context.output_names),
                dynamic_axes={
                    name: dict(axes) for name, axes in {**context.dynamic_axes, **context.output_axes}.items()
                },
                opset_version=context.opset,
                export_params=False,  # its weights are inputs
                keep_initializers_as_inputs=True,  # no search for equal parameters: none is used
            )
    except Exception as e:
        path.unlink(missing_ok=True)
        raise ExportFailedError(f"ONNX export (TorchScript-based) failed: {first_line(e)}") from e
    try:
        graph = onnx.load(str(path))
        name_model_axes(graph, context.dynamic_axes, context.fixed_output_dims)
        attached = weights.attach(graph, module.weights, set(context.input_names))
        return weights.save(graph, attached, path, context.external_data_threshold)
    except Exception:
        path.unlink(missing_ok=True)  # a graph without its weights must not pass for a file
        raise


def _export_transformers(model: Any, context: ExportContext, path: Path) -> list[Path]:
    """transformers' ``OnnxExporter`` with the project's named dynamic shapes."""
    import onnx_ir
    from transformers.exporters import OnnxConfig, OnnxExporter

    data = path.with_name(path.name + "_data")
    data.unlink(missing_ok=True)
    config = OnnxConfig(dynamic=True, dynamic_shapes=_dynamic_shapes(context), opset_version=context.opset)
    try:
        program, _metadata = OnnxExporter().export_program(model, dict(context.inputs), config)
    except Exception as e:
        raise ExportFailedError(f"ONNX export failed: {first_line(e)}") from e
    if initializer_bytes(program) > context.external_data_threshold:
        onnx_ir.save(program, str(path), external_data=data.name)
        return [path, data]
    onnx_ir.save(program, str(path))
    return [path]
