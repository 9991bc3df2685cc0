"""TorchScript by ``torch.jit.trace``: tuple outputs, saved, reloaded with ``torch.jit.load`` and validated.

A trace records the operations one input ran; shape-dependent Python branches are frozen. Validating on
a second shape is what tells whether the trace generalises, and the report says which shapes work.
The ONNX export traces the same calling convention with the weights as inputs as well
(:class:`exporter.weights.WeightsAsInputs`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exporter.errors import ExportFailedError, first_line
from exporter.formats.base import ExportContext, Runner
from exporter.reproducible import strip_torchscript
from exporter.tensors import flatten_outputs, flatten_tensors, nest


class TupleOutputs(torch.nn.Module):
    """Positional tensors in, a tuple of the named outputs out: the calling convention of a trace.

    Inputs come in the order of the flat input names (``past_key_values.0.key`` …) and are nested
    back into the module's keyword arguments.
    """

    def __init__(self, model: torch.nn.Module, input_names: tuple[str, ...], output_names: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.input_names = input_names
        self.output_names = output_names

    def forward(self, *args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = flatten_outputs(self.model(**nest(dict(zip(self.input_names, args, strict=True)))))
        return tuple(outputs[name] for name in self.output_names)


def tuple_outputs(model: torch.nn.Module, context: ExportContext) -> torch.nn.Module:
    """The module with the trace's calling convention: flat positional inputs, a tuple of outputs."""
    return TupleOutputs(model, context.input_names, context.output_names).eval()


def trace(model: torch.nn.Module, context: ExportContext) -> torch.jit.ScriptModule:
    """``torch.jit.trace`` of the module at the export shape. Raises :class:`ExportFailedError`."""
    example = tuple(flatten_tensors(context.inputs).values())
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            traced: torch.jit.ScriptModule = torch.jit.trace(
                tuple_outputs(model, context), example, check_trace=False, strict=False
            )
    except Exception as e:
        raise ExportFailedError(f"TorchScript trace failed: {first_line(e)}") from e
    return traced


class TorchScriptFormat:
    """``model.pt``: a traced module taking inputs positionally, in the order of the flat input names."""

    name = "torchscript"
    suffix = ".pt"

    def export(self, model: Any, context: ExportContext) -> list[Path]:
        """Save ``model``'s trace (``model`` may already be one: :func:`trace`)."""
        traced = model if isinstance(model, torch.jit.ScriptModule) else trace(model, context)
        path = context.path(self.suffix)
        try:
            torch.jit.save(traced, str(path))
            strip_torchscript(path)
        except Exception as e:
            raise ExportFailedError(f"TorchScript save failed: {first_line(e)}") from e
        return [path]

    def load(self, path: Path, context: ExportContext) -> Runner:
        module = torch.jit.load(str(path), map_location="cpu").eval()
        input_names = context.input_names

        def run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            # The profiling executor re-optimises the graph on its first runs: seconds per shape for
            # a validation that runs each shape once, and no change to the results.
            with torch.no_grad(), torch.jit.optimized_execution(False):
                results = module(*(torch.from_numpy(inputs[name]) for name in input_names))
            return {name: r.numpy() for name, r in zip(context.output_names, results, strict=True)}

        return run

    def note(self, passing: list[dict[str, int]], failing: list[dict[str, int]]) -> str:
        if failing:
            works = "; ".join(",".join(f"{k}={v}" for k, v in s.items()) for s in passing) or "none"
            return (
                "the trace is specialised to the shape it was traced at and does not generalise: "
                f"it matches PyTorch only for {works}"
            )
        return "traced at the export shape; also matches PyTorch on every other tested shape"
