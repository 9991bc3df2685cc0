"""The export steps: resolve → load → components → export each format → validate each shape → report.

One frozen :class:`ExportRequest` in, one :class:`~exporter.report.Report` out. Each step is a
function of its own; :func:`run_export` only strings them together and times them. The unit that
formats export and validate is a :class:`~exporter.components.Component` (one graph: ``model``, or
the encoder and decoders of a seq2seq model with past).
"""

from __future__ import annotations

import inspect
import shutil
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from exporter import dummy_inputs
from exporter.components import Component, build_components
from exporter.errors import ForwardFailedError, UnsupportedTaskError, ValidationFailedError, first_line
from exporter.files import COMPONENTS, REPORT_FILES, export_file_names
from exporter.formats import FORMATS, ExportContext
from exporter.formats.onnx import EXTERNAL_DATA_THRESHOLD
from exporter.loading import Loaded, load_config, load_model, resolve_checkpoint
from exporter.measure import measure
from exporter.report import FileEntry, Report
from exporter.specs import ModelSpec, get_spec
from exporter.support import check_exportable, supported_tasks
from exporter.tasks import AUTO, get_task, infer_task
from exporter.tensors import flatten_outputs
from exporter.validation import validate
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
    export_shape: Mapping[str, int] = field(default_factory=lambda: dict(dummy_inputs.EXPORT_SHAPE))
    validation_shapes: tuple[Mapping[str, int], ...] = dummy_inputs.VALIDATION_SHAPES
    #: Weights above this many bytes go to ``model.onnx.data`` (protobuf cannot hold 2 GiB).
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD


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
    atol = request.atol if request.atol is not None else loaded.spec.atol_for(loaded.task)
    with _timed(timings, "validate", progress, f"Validating on {len(request.validation_shapes)} shapes"):
        results = validate(parts, request.formats, request.validation_shapes, atol)
    axes = {axis for _, context in parts for axes in context.dynamic_axes.values() for axis in axes.values()}
    report = Report(
        model=loaded.checkpoint.source,
        revision=loaded.checkpoint.revision,
        model_type=loaded.config.model_type,
        architecture=type(loaded.model).__name__,
        task=loaded.task,
        opset=request.opset if "onnx" in request.formats else None,
        export_shape=dummy_inputs.restrict_shape(request.export_shape, axes),
        shapes=[dummy_inputs.restrict_shape(shape, axes) for shape in request.validation_shapes],
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
    check_exportable(spec, request.task)
    if request.task == AUTO:
        task = infer_task(spec.model_type, getattr(config, "architectures", None), tasks)
    else:
        task = get_task(request.task).name
    if task not in tasks:
        raise UnsupportedTaskError(f"{spec.model_type} has no {task!r} head; its tasks are: {', '.join(tasks)}")
    configure(config, spec, task)
    model_class = spec.model_class or get_task(task).auto()
    model = load_model(model_class, checkpoint.path, config, request.trust_remote_code)
    if spec.prepare_model is not None:
        spec.prepare_model(model)
    parameters = frozenset(inspect.signature(model.forward).parameters)
    return Loaded(checkpoint, spec, task, config, model, dummy_inputs.select_inputs(spec, task, parameters), parameters)


def configure(config: Any, spec: ModelSpec, task: str) -> None:
    """Apply the spec's overrides; no cache in the outputs unless the task exports it (``-with-past``)."""
    if hasattr(config, "use_cache"):
        config.use_cache = get_task(task).with_past
    for key, value in spec.config_overrides.get(task, {}).items():
        setattr(config, key, value)


def component_context(loaded: Loaded, component: Component, request: ExportRequest) -> ExportContext:
    """Sample inputs at the export shape, their dynamic axes, and the output names of an eager run."""
    try:
        sample = component.make_inputs(request.export_shape, 0)
        with torch.no_grad():
            names = tuple(flatten_outputs(component.module(**sample)))
    except Exception as e:  # the checkpoint's own code fails before any export happens
        raise ForwardFailedError(
            f"the model's own forward fails on sample inputs ({type(e).__name__}: {first_line(e)}); "
            "check the checkpoint's config"
        ) from e
    limit = max_sequence(loaded.config)
    return ExportContext(
        inputs=sample,
        dynamic_axes=component.dynamic_axes(sample),
        output_names=component.output_names or names,
        axis_bounds=axis_bounds(loaded.spec, limit),
        opset=request.opset,
        output_dir=request.output_dir,
        external_data_threshold=request.external_data_threshold,
        component=component.name,
    )


def max_sequence(config: Any) -> int | None:
    """The position table's length: the config's, or its text tower's (CLIP-style), or GPT-style ``n_positions``."""
    for source in (config, getattr(config, "text_config", None)):
        for name in ("max_position_embeddings", "n_positions"):
            limit = getattr(source, name, None)
            if isinstance(limit, int) and limit > 0:
                return limit
    return None


def axis_bounds(spec: ModelSpec, max_sequence: int | None) -> dict[str, tuple[int | None, int | None]]:
    """``(min, max)`` of each dynamic axis: the spec's minimums, and the position table's length."""
    bounds: dict[str, tuple[int | None, int | None]] = {axis: (low, None) for axis, low in spec.axis_min.items()}
    bounds["batch"] = (spec.axis_min.get("batch"), None)
    high = max_sequence - spec.sequence_headroom if max_sequence is not None else None
    for axis in ("sequence", "decoder_sequence", "past_sequence"):
        bounds[axis] = (spec.axis_min.get(axis), high)
    return bounds


def clean_output_dir(path: Path) -> None:
    """Remove what a previous export wrote there (only names this tool writes, see :mod:`exporter.files`)."""
    for name in (*export_file_names(), *REPORT_FILES, *LEGACY_NAMES):
        target = path / name
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


#: Names earlier releases wrote (weights were ``model.onnx.data``): removed too, never written.
LEGACY_NAMES = tuple(f"{component}.onnx.data" for component in COMPONENTS)
