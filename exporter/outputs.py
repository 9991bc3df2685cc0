"""Named outputs of a model call: what gets exported, traced and compared."""

from __future__ import annotations

from typing import Any

import torch


def flatten_outputs(outputs: Any) -> dict[str, torch.Tensor]:
    """The tensors of a ``ModelOutput`` (or tuple) by name, ``None`` fields dropped, in order."""
    if isinstance(outputs, torch.Tensor):
        return {"output": outputs}
    if hasattr(outputs, "items"):
        items = list(outputs.items())
    else:
        items = [(f"output_{i}", value) for i, value in enumerate(outputs)]
    return {name: value for name, value in items if isinstance(value, torch.Tensor)}
