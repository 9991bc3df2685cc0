"""The registry of architecture specs: an explicit dict, filled from the family modules and by users."""

from __future__ import annotations

from exporter.errors import SpecError, UnsupportedModelTypeError
from exporter.specs.base import TEXT_INPUTS, VISION_INPUTS, InputSpec, ModelSpec
from exporter.specs.decoders import SPECS as _DECODER_SPECS
from exporter.specs.encoders import SPECS as _ENCODER_SPECS
from exporter.specs.multimodal import SPECS as _MULTIMODAL_SPECS
from exporter.specs.vision import SPECS as _VISION_SPECS

__all__ = ["SPECS", "TEXT_INPUTS", "VISION_INPUTS", "InputSpec", "ModelSpec", "get_spec", "register_spec"]

SPECS: dict[str, ModelSpec] = {
    spec.model_type: spec for spec in (*_ENCODER_SPECS, *_VISION_SPECS, *_MULTIMODAL_SPECS, *_DECODER_SPECS)
}


def check_spec(spec: ModelSpec) -> None:
    """Refuse a spec whose fields cannot work, with a one-line :class:`SpecError` naming the field."""
    from typing import get_args

    from exporter.specs.base import InputKind
    from exporter.tasks import TASKS

    name = getattr(spec, "model_type", None)
    if not isinstance(name, str) or not name:
        raise SpecError("ModelSpec.model_type must be a non-empty string")
    kinds = get_args(InputKind)
    for field_name, inputs in [
        ("inputs", spec.inputs),
        *((f"task_inputs[{t!r}]", i) for t, i in spec.task_inputs.items()),
    ]:
        for inp in inputs:
            if not isinstance(inp, InputSpec):
                raise SpecError(f"{name}: {field_name} must hold InputSpec(name=..., kind=...), got {inp!r}")
            if inp.kind not in kinds:
                raise SpecError(f"{name}: input {inp.name!r} has kind {inp.kind!r}; kinds: {', '.join(kinds)}")
    unknown = [task for task in (spec.tasks or ()) if task not in TASKS]
    if unknown:
        raise SpecError(f"{name}: unknown task(s) {', '.join(unknown)}; tasks: {', '.join(TASKS)}")
    for label, tolerances in (
        ("atol", [spec.atol, *spec.task_atol.values()]),
        ("rtol", [spec.rtol, *spec.task_rtol.values()]),
    ):
        if not all(isinstance(value, (int, float)) and value >= 0 for value in tolerances):
            raise SpecError(f"{name}: {label} must be a number >= 0")
    if spec.model_class is not None and not isinstance(spec.model_class, type):
        raise SpecError(f"{name}: model_class must be a class, got {spec.model_class!r}")
    if spec.dummy_inputs is not None and not callable(spec.dummy_inputs):
        raise SpecError(f"{name}: dummy_inputs must be callable (config, shape, generator) -> tensors")
    for names in (spec.output_names, *spec.task_output_names.values()):
        if names is not None and not all(isinstance(out, str) for out in names):
            raise SpecError(f"{name}: output_names must be a tuple of strings")


def register_spec(spec: ModelSpec, *, replace: bool = False) -> ModelSpec:
    """Make ``spec.model_type`` exportable. Refuses to shadow a built-in spec unless ``replace``."""
    if not isinstance(spec, ModelSpec):
        raise SpecError(f"expected a ModelSpec, got {type(spec).__name__}")
    check_spec(spec)
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
