"""The export-format interface: write a file from a model, then load it back as a runner.

A format exports one *component* at a time: ``model`` for most tasks, ``encoder_model`` /
``decoder_model`` / ``decoder_with_past_model`` for a seq2seq model with past. The file of a
component is its name plus the format's suffix (``decoder_model.onnx``, ``decoder_model.pt``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from exporter.tensors import flatten_tensors

Runner = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True, kw_only=True)
class ExportContext:
    """What every format needs besides the model: sample inputs, their dynamic axes, the output names.

    ``inputs`` are the keyword arguments of the module, possibly nested (``past_key_values`` is a
    dict of dicts of tensors); ``dynamic_axes`` are keyed by the flat input names.
    """

    inputs: Mapping[str, Any]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    output_names: tuple[str, ...]
    axis_bounds: Mapping[str, tuple[int | None, int | None]]
    opset: int
    output_dir: Path
    external_data_threshold: int
    component: str = "model"
    #: Names of the outputs' dynamic dimensions where eager runs tell them (:func:`exporter.axes.output_axes_of_runs`).
    output_axes: Mapping[str, Mapping[int, str]] = field(default_factory=dict)
    #: Output dimensions of one size in every eager run (:func:`exporter.axes.fixed_output_dims`).
    fixed_output_dims: Mapping[str, Mapping[int, int]] = field(default_factory=dict)

    @property
    def input_names(self) -> tuple[str, ...]:
        """Flat input names, in the order the graph takes them (``past_key_values.0.key`` …)."""
        return tuple(flatten_tensors(self.inputs))

    def path(self, suffix: str) -> Path:
        """Where this component goes in this format: ``output_dir / (component + suffix)``."""
        return self.output_dir / f"{self.component}{suffix}"


class ExportFormat(Protocol):
    """One way to ship a model: ONNX, TorchScript, …"""

    name: str
    #: ``.onnx``, ``.pt``: the file of a component is ``<component><suffix>``.
    suffix: str

    def export(self, model: Any, context: ExportContext) -> list[Path]:
        """Write the model under ``context.output_dir``; return every file written."""
        ...

    def load(self, path: Path, context: ExportContext) -> Runner:
        """Load the written file and return a function from numpy inputs to named numpy outputs."""
        ...

    def note(self, passing: list[dict[str, int]], failing: list[dict[str, int]]) -> str:
        """A plain-words note for the report, given the shapes that passed and failed."""
        ...
