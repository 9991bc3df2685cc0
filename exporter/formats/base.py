"""The export-format interface: write a file from a model, then load it back as a runner."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

Runner = Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]


@dataclass(frozen=True, kw_only=True)
class ExportContext:
    """What every format needs besides the model: sample inputs, their dynamic axes, the output names."""

    inputs: Mapping[str, torch.Tensor]
    dynamic_axes: Mapping[str, Mapping[int, str]]
    output_names: tuple[str, ...]
    axis_bounds: Mapping[str, tuple[int | None, int | None]]
    opset: int
    output_dir: Path
    external_data_threshold: int


class ExportFormat(Protocol):
    """One way to ship a model: ONNX, TorchScript, …"""

    name: str
    filename: str

    def export(self, model: Any, context: ExportContext) -> list[Path]:
        """Write the model under ``context.output_dir``; return every file written."""
        ...

    def load(self, path: Path, context: ExportContext) -> Runner:
        """Load the written file and return a function from numpy inputs to named numpy outputs."""
        ...

    def note(self, passing: list[dict[str, int]], failing: list[dict[str, int]]) -> str:
        """A plain-words note for the report, given the shapes that passed and failed."""
        ...
