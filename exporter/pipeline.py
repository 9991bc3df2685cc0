"""The export steps: resolve → load → components → export each format → validate each shape → report.

One frozen :class:`ExportRequest` in, one :class:`~exporter.report.Report` out. Each step is a
function of its own; :func:`run_export` only strings them together and times them. The unit that
formats export and validate is a :class:`~exporter.components.Component` (one graph: ``model``, or
the encoder and decoders of a seq2seq model with past).
"""

from __future__ import annotations

import gc
import inspect
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from exporter import inputs as dummy
from exporter.components import Component, build_components
from exporter.errors import UnsupportedTaskError, ValidationFailedError
from exporter.formats import FORMATS, ExportContext
from exporter.formats.onnx import EXTERNAL_DATA_THRESHOLD
from exporter.loading import Checkpoint, load_config, load_model, resolve_checkpoint
from exporter.measure import measure
from exporter.outputs import flatten_outputs, flatten_tensors
from exporter.report import FileEntry, FormatResult, Report, ShapeCheck
from exporter.specs import InputSpec, ModelSpec, get_spec
from exporter.support import supported_tasks
from exporter.tasks import AUTO, get_task, infer_task
from exporter.validate import compare_outputs
from exporter.versions import versions

DEFAULT_OPSET = 18
Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class ExportRequest:
    """Everything one export needs, parsed once from the CLI, the bot or the Action."""

    model: str
    output_dir: Path
    revision: str | None = None
    task: str = AUTO
    opset: int = DEFAULT_OPSET
    atol: float | None = None
    formats: tuple[str, ...] = ("onnx", "torchscript")
    trust_remote_code: bool = False
    token: str | None = field(default=None, repr=False)
    export_shape: Mapping[str, int] = field(default_factory=lambda: dict(dummy.EXPORT_SHAPE))
    validation_shapes: tuple[Mapping[str, int], ...] = dummy.VALIDATION_SHAPES
    #: Weights above this many bytes go to ``model.onnx.data`` (protobuf cannot hold 2 GiB).
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD


@dataclass
class Loaded:
    """A model ready to export, with what the later steps need to know about it."""

    checkpoint: Checkpoint
    spec: ModelSpec
    task: str
    config: Any
    model: Any
    inputs: tuple[InputSpec, ...]
    #: Argument names of ``model.forward``.
    forward_parameters: frozenset[str] = frozenset()


def _quiet(_: str) -> None:
    pass


@contextmanager
def _timed(costs: dict[str, dict[str, float]], step: str, progress: Progress, message: str) -> Iterator[None]:
    progress(message)
    with measure() as cost:
        yield
    costs[step] = {"seconds": round(cost.seconds, 3), "peak_rss_mb": round(cost.peak_rss_bytes / 2**20, 1)}


def run_export(request: ExportRequest, progress: Progress = _quiet) -> Report:
    """Export and validate; write files and reports. Raises ``ValidationFailedError`` (report attached)."""
    timings: dict[str, dict[str, float]] = {}
    request.output_dir.mkdir(parents=True, exist_ok=True)
    clean_output_dir(request.output_dir)  # a previous export's files must not pass for this one's
    with _timed(timings, "load", progress, f"Loading {request.model}"):
        loaded = load(request)
        parts = [(component, component_context(loaded, component, request)) for component in build_components(loaded)]
    written: list[Path] = []
    for name in request.formats:
        with _timed(timings, name, progress, f"Exporting {name}"):
            for component, context in parts:
                written += FORMATS[name].export(component.module, context)
    with _timed(timings, "validate", progress, f"Validating on {len(request.validation_shapes)} shapes"):
        results = validate(loaded, request, parts)
    axes = {axis for _, context in parts for axes in context.dynamic_axes.values() for axis in axes.values()}
    report = Report(
        model=loaded.checkpoint.source,
        revision=loaded.checkpoint.revision,
        model_type=loaded.config.model_type,
        architecture=type(loaded.model).__name__,
        task=loaded.task,
        opset=request.opset if "onnx" in request.formats else None,
        export_shape=dummy.restrict_shape(request.export_shape, axes),
        shapes=[dummy.restrict_shape(shape, axes) for shape in request.validation_shapes],
        formats=results,
        files=[FileEntry.of(request.output_dir, path) for path in written],
        versions=versions(request.opset),
        timings=timings,
    )
    report.write(request.output_dir)
    if report.status != "passed":
        raise ValidationFailedError(report)
    return report


def load(request: ExportRequest) -> Loaded:
    """Resolve the checkpoint, pick the task and the head, build the model with its weights."""
    checkpoint = resolve_checkpoint(request.model, request.revision, request.token, request.trust_remote_code)
    config = load_config(checkpoint.path, request.trust_remote_code)
    spec = get_spec(config.model_type)
    tasks = supported_tasks(spec)
    if request.task == AUTO:
        task = infer_task(spec.model_type, getattr(config, "architectures", None), tasks)
    else:
        task = get_task(request.task).name
    if task not in tasks:
        raise UnsupportedTaskError(f"{spec.model_type} has no {task!r} head; its tasks are: {', '.join(tasks)}")
    configure(config, spec, task)
    model_class = spec.model_class or get_task(task).auto()
    model = load_model(model_class, checkpoint.path, config, request.trust_remote_code)
    parameters = frozenset(inspect.signature(model.forward).parameters)
    return Loaded(checkpoint, spec, task, config, model, dummy.select_inputs(spec, task, parameters), parameters)


def configure(config: Any, spec: ModelSpec, task: str) -> None:
    """Apply the spec's overrides; no cache in the outputs unless the task exports it (``-with-past``)."""
    if hasattr(config, "use_cache"):
        config.use_cache = get_task(task).with_past
    for key, value in spec.config_overrides.get(task, {}).items():
        setattr(config, key, value)


def build_context(loaded: Loaded, request: ExportRequest) -> ExportContext:
    """The export context of the first (for most tasks the only) component."""
    return component_context(loaded, build_components(loaded)[0], request)


def component_context(loaded: Loaded, component: Component, request: ExportRequest) -> ExportContext:
    """Sample inputs at the export shape, their dynamic axes, and the output names of an eager run."""
    sample = component.make_inputs(request.export_shape, 0)
    with torch.no_grad():
        names = tuple(flatten_outputs(component.module(**sample)))
    limit = getattr(loaded.config, "max_position_embeddings", None)
    return ExportContext(
        inputs=sample,
        dynamic_axes=component.dynamic_axes(sample),
        output_names=component.output_names or names,
        axis_bounds=axis_bounds(loaded.spec, limit if isinstance(limit, int) and limit > 0 else None),
        opset=request.opset,
        output_dir=request.output_dir,
        external_data_threshold=request.external_data_threshold,
        component=component.name,
    )


def axis_bounds(spec: ModelSpec, max_sequence: int | None) -> dict[str, tuple[int | None, int | None]]:
    """``(min, max)`` of each dynamic axis: the spec's minimums, and the position table's length."""
    bounds: dict[str, tuple[int | None, int | None]] = {"batch": (spec.axis_min.get("batch"), None)}
    high = max_sequence - spec.sequence_headroom if max_sequence is not None else None
    for axis in ("sequence", "decoder_sequence", "past_sequence"):
        bounds[axis] = (spec.axis_min.get(axis), high)
    return bounds


def validate(
    loaded: Loaded, request: ExportRequest, parts: list[tuple[Component, ExportContext]]
) -> list[FormatResult]:
    """Run eager PyTorch and every exported file on every validation shape; compare output by output.

    One :class:`FormatResult` per format and component, format by format.
    """
    atol = request.atol if request.atol is not None else loaded.spec.atol_for(loaded.task)
    checks = {component.name: validate_component(component, context, request, atol) for component, context in parts}
    results = []
    for name in request.formats:
        fmt = FORMATS[name]
        for component, _ in parts:
            shape_checks = checks[component.name][name]
            passing = [c.shape for c in shape_checks if c.passed]
            failing = [c.shape for c in shape_checks if not c.passed]
            note = fmt.note(passing, failing)
            file = f"{component.name}{fmt.suffix}"
            results.append(FormatResult(name, file, shape_checks, note, component=component.name))
    return results


def validate_component(
    component: Component, context: ExportContext, request: ExportRequest, atol: float
) -> dict[str, list[ShapeCheck]]:
    """Checks of one component's file in each format, one per validation shape.

    Eager references come first; then one runtime at a time is loaded, run on every shape and
    dropped, so peak memory holds the eager model and a single exported copy, not all of them.
    """
    axes = {axis for axes in context.dynamic_axes.values() for axis in axes.values()}
    cases = []
    for index, requested in enumerate(request.validation_shapes):
        sample = component.make_inputs(requested, index + 1)
        with torch.no_grad():
            outputs = flatten_outputs(component.module(**sample))
        reference = {name: outputs[name].numpy() for name in context.output_names if name in outputs}
        feeds = {name: tensor.numpy() for name, tensor in flatten_tensors(sample).items()}
        cases.append((dummy.restrict_shape(requested, axes), feeds, reference))
    checks: dict[str, list[ShapeCheck]] = {}
    for name in request.formats:
        run = FORMATS[name].load(context.path(FORMATS[name].suffix), context)
        checks[name] = [_check(run, feeds, reference, atol, shape) for shape, feeds, reference in cases]
        del run
        gc.collect()
    return checks


def _check(
    run: Any,
    feeds: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    atol: float,
    shape: dict[str, int],
) -> ShapeCheck:
    try:
        actual = run(feeds)
    except Exception as e:  # the runtime refused this shape: a validation failure, reported as such
        message = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        return ShapeCheck(shape=dict(shape), outputs=[], passed=False, error=f"run failed: {message}")
    return compare_outputs(reference, actual, atol, shape)


#: Every component name an export can write (see :mod:`exporter.components`).
COMPONENT_NAMES = ("model", "encoder_model", "decoder_model", "decoder_with_past_model")


def clean_output_dir(path: Path) -> None:
    """Remove what a previous export wrote there (only files this tool writes)."""
    files = [f"{stem}{suffix}" for stem in COMPONENT_NAMES for suffix in (".onnx", ".onnx.data", ".pt")]
    for name in (*files, "report.json", "report.md"):
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)
