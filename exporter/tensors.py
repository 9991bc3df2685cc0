"""Named tensors in and out of a model call: what gets exported, traced, fed and compared.

Graph inputs and outputs are flat and named by their path: a nested ``{"past_key_values": {"0":
{"key": t}}}`` is the input ``past_key_values.0.key`` (the same leaf paths transformers' ONNX
exporter names graph inputs and outputs by). Model arguments never contain a dot, so the names
nest back unambiguously.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch


def flatten_outputs(outputs: Any) -> dict[str, torch.Tensor]:
    """The tensors of a ``ModelOutput`` (or tuple) by name, ``None`` fields dropped, in order.

    Plain dicts (what the exporter's own wrappers return) are walked into: ``present.0.key``. A
    ``ModelOutput``'s non-tensor fields (caches, tuples of hidden states) are left out.
    """
    if isinstance(outputs, torch.Tensor):
        return {"output": outputs}
    if type(outputs) is dict:
        return flatten_tensors(outputs)
    if hasattr(outputs, "items"):
        items = list(outputs.items())
    else:
        items = [(f"output_{i}", value) for i, value in enumerate(outputs)]
    return {name: value for name, value in items if isinstance(value, torch.Tensor)}


def flatten_tensors(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaves of nested plain dicts by dotted path, in insertion order; ``None`` leaves dropped."""
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_tensors(value, path))
        elif value is not None:
            flat[path] = value
    return flat


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`flatten_tensors`: ``{"a.0.key": t}`` → ``{"a": {"0": {"key": t}}}``."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree
