"""How ONNX files are made: the TorchScript-based export by default, transformers' exporter when a
trace does not generalise, and the report says which made each file."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

import pytest
import torch

from exporter.components import Component
from exporter.formats import ExportContext
from exporter.run import export_format, retry_onnx
from exporter.validation import validate

SHAPES = ({"batch": 2, "sequence": 16}, {"batch": 3, "sequence": 11})


class _ScaleByLength(torch.nn.Module):
    """Scales by the square root of the sequence length, read as a Python number while tracing.

    That is what model code a trace freezes looks like (``math.sqrt`` of a size); torch.export
    keeps the same scale symbolic, so the transformers method generalises where the trace does not.
    """

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 4)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        length = features.shape[1]
        scale = math.sqrt(length) if torch.jit.is_tracing() else length**0.5
        return {"scaled": self.linear(features) * scale}


def _component(module: torch.nn.Module) -> Component:
    def make_inputs(shape: Mapping[str, int], seed: int) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(seed)
        return {"features": torch.randn(shape["batch"], shape["sequence"], 4, generator=generator)}

    return Component(
        name="model", module=module.eval(), make_inputs=make_inputs, axes=lambda _: {0: "batch", 1: "sequence"}
    )


def _context(component: Component, tmp_path: Path) -> ExportContext:
    sample = component.make_inputs(SHAPES[0], 0)
    return ExportContext(
        inputs=sample,
        dynamic_axes=component.dynamic_axes(sample),
        output_names=("scaled",),
        axis_bounds={"batch": (None, None), "sequence": (2, 64)},
        opset=18,
        output_dir=tmp_path,
        external_data_threshold=1 << 30,
    )


@pytest.mark.slow
def test_a_trace_that_does_not_generalise_falls_back_to_torch_export(tmp_path: Path) -> None:
    component = _component(_ScaleByLength())
    context = _context(component, tmp_path)
    files, method = export_format("onnx", component, context)
    assert method == "torchscript"
    [first] = [
        r.model_copy(update={"method": method}) for r in validate([(component, context)], ("onnx",), SHAPES, 1e-4)
    ]
    assert [check.passed for check in first.checks] == [True, False]  # the trace froze sequence=16

    written = {("onnx", "model"): files}
    [result] = retry_onnx([(component, context)], [first], written, SHAPES, 1e-4, 0.0, {})

    assert result.method == "transformers"
    assert result.passed and len(result.checks) == 2
    assert written["onnx", "model"] == [tmp_path / "model.onnx"]


@pytest.mark.slow
def test_a_trace_that_generalises_is_kept(tmp_path: Path) -> None:
    component = _component(torch.nn.Sequential(torch.nn.Linear(4, 4)))
    component = Component(
        name="model",
        module=_Named(component.module),
        make_inputs=component.make_inputs,
        axes=component.axes,
    )
    context = _context(component, tmp_path)
    _, onnx_method = export_format("onnx", component, context)
    _, torchscript_method = export_format("torchscript", component, context)
    results = validate([(component, context)], ("onnx", "torchscript"), SHAPES, 1e-5)

    assert (onnx_method, torchscript_method) == ("torchscript", "trace")
    assert all(result.passed for result in results)
    [unchanged] = retry_onnx([(component, context)], results[:1], {}, SHAPES, 1e-5, 0.0, {})
    assert unchanged is results[0]


class _Named(torch.nn.Module):
    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"scaled": self.inner(features)}
