"""Load a user's spec from ``path.py:Name`` and register it, for architectures the exporter does not know."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from exporter.errors import SpecError
from exporter.specs import ModelSpec, register_spec


def load_spec(reference: str) -> ModelSpec:
    """Import ``path.py`` and register its ``Name`` (a :class:`ModelSpec`), replacing a built-in one."""
    path_text, _, name = reference.rpartition(":")
    if not path_text or not name:
        raise SpecError(f"--spec takes path.py:Name, got {reference!r}")
    path = Path(path_text)
    if not path.is_file():
        raise SpecError(f"spec file {path} not found")
    module_name = f"exporter_user_spec_{path.stem}"
    loader_spec = importlib.util.spec_from_file_location(module_name, path)
    if loader_spec is None or loader_spec.loader is None:
        raise SpecError(f"cannot import {path}")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module
    try:
        loader_spec.loader.exec_module(module)
    except Exception as e:
        raise SpecError(f"importing {path} failed: {type(e).__name__}: {e}") from e
    spec = getattr(module, name, None)
    if spec is None:
        raise SpecError(f"{path} defines no {name!r}")
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"{path}:{name} is a {type(spec).__name__}, expected exporter.ModelSpec")
    return register_spec(spec, replace=True)
