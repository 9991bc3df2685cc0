"""The registry of architecture specs: an explicit dict, filled from the family modules and by users."""

from __future__ import annotations

from exporter.errors import SpecError, UnsupportedModelTypeError
from exporter.specs.base import TEXT_INPUTS, VISION_INPUTS, InputSpec, ModelSpec
from exporter.specs.decoders import SPECS as _DECODER_SPECS
from exporter.specs.encoders import SPECS as _ENCODER_SPECS

__all__ = ["SPECS", "TEXT_INPUTS", "VISION_INPUTS", "InputSpec", "ModelSpec", "get_spec", "register_spec"]

SPECS: dict[str, ModelSpec] = {spec.model_type: spec for spec in (*_ENCODER_SPECS, *_DECODER_SPECS)}


def register_spec(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Make ``spec.model_type`` exportable. Refuses to shadow a built-in spec unless ``replace``."""
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"expected a ModelSpec, got {type(spec).__name__}")
    if spec.model_type in SPECS and not replace:
        raise SpecError(f"a spec for {spec.model_type!r} exists; pass replace=True to override it")
    SPECS[spec.model_type] = spec
    return spec


def get_spec(model_type: str) -> ModelSpec:
    """The spec for ``model_type``, or a one-line error naming how to add one."""
    try:
        return SPECS[model_type]
    except KeyError:
        raise UnsupportedModelTypeError(
            f"model type {model_type!r} is not supported; run `exporter features` for the list, "
            "or describe it with --spec path.py:Name"
        ) from None
