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
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from exporter import dummy_inputs
from exporter.agreement import build_and_check
from exporter.axes import fixed_output_dims, output_axes_of_runs
from exporter.components import Component, build_components
from exporter.errors import (
    ExportFailedError,
    ForwardFailedError,
    UnsupportedTaskError,
    ValidationFailedError,
    first_line,
)
from exporter.files import COMPONENTS, REPORT_FILES, export_file_names
from exporter.formats import FORMATS, ExportContext
from exporter.formats.onnx import EXTERNAL_DATA_THRESHOLD, OnnxFormat
from exporter.loading import Loaded, load_config, load_model, resolve_checkpoint
from exporter.measure import measure
from exporter.merge import MERGED_FROM, merge_decoders
from exporter.report import FileEntry, FormatResult, Report, VariantResult
from exporter.reuse import CacheUse
from exporter.specs import ModelSpec, get_spec
from exporter.support import check_exportable, supported_tasks
from exporter.tasks import AUTO, get_task, infer_task
from exporter.tensors import flatten_outputs, flatten_tensors
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
    #: The Hub repo id and commit ``model`` is a copy of (the bot exports a snapshot folder): the report names them.
    source_repo: str | None = None
    source_revision: str | None = None
    task: str = AUTO
    opset: int = DEFAULT_OPSET
    atol: float | None = None
    rtol: float | None = None
    formats: tuple[str, ...] = ("onnx", "torchscript")
    #: ONNX dtype variants (:mod:`exporter.variants`); ``fp32`` is the export itself.
    dtypes: tuple[str, ...] = ("fp32",)
    trust_remote_code: bool = False
    token: str | None = field(default=None, repr=False)
    export_shape: Mapping[str, int] = field(default_factory=lambda: dict(dummy_inputs.EXPORT_SHAPE))
    validation_shapes: tuple[Mapping[str, int], ...] = dummy_inputs.VALIDATION_SHAPES
    #: Weights above this many bytes go to ``model.onnx.data`` (protobuf cannot hold 2 GiB).
    external_data_threshold: int = EXTERNAL_DATA_THRESHOLD
    #: Graph cache for weights-only re-exports (:mod:`exporter.graph_cache`); ``None``: always export in full.
    cache_dir: Path | None = None


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
    atol = request.atol if request.atol is not None else loaded.spec.atol_for(loaded.task)
    rtol = request.rtol if request.rtol is not None else loaded.spec.rtol_for(loaded.task)

    def timed(step: str, message: str) -> AbstractContextManager[None]:
        return _timed(timings, step, progress, message)

    cache = CacheUse.start(request, loaded, parts)
    reused = cache.reuse(parts, request, timed, atol, rtol) if cache else None
    if reused is not None:
        files, results = reused
    else:
        files, results = export_and_validate(parts, request, timings, progress, atol, rtol)
    written = [path for paths in files.values() for path in paths]
    variants: list[VariantResult] = []
    if "onnx" in request.formats and set(request.dtypes) - {"fp32"} and all(r.passed for r in results):
        with _timed(timings, "variants", progress, f"Building and checking {', '.join(request.dtypes[1:])}"):
            variants, built = build_and_check(parts, request.dtypes, request.validation_shapes)
        written += built
    axes = {axis for _, context in parts for axes in context.dynamic_axes.values() for axis in axes.values()}
    report = Report(
        model=request.source_repo or loaded.checkpoint.source,
        revision=request.source_revision or loaded.checkpoint.revision,
        model_type=loaded.config.model_type,
        architecture=type(loaded.model).__name__,
        task=loaded.task,
        config_overrides=loaded.config_overrides,
        opset=request.opset if "onnx" in request.formats else None,
        export_shape=dummy_inputs.restrict_shape(request.export_shape, axes),
        shapes=[dummy_inputs.restrict_shape(shape, axes) for shape in request.validation_shapes],
        formats=results,
        variants=variants,
        files=[FileEntry.of(request.output_dir, path) for path in written],
        versions=versions(request.opset),
        timings=timings,
    )
    if cache is not None:
        cache.store(parts, files, report, timed)
        report = report.model_copy(update={"graph_cache": cache.result, "timings": dict(timings)})
    report.write(request.output_dir)
    if report.status != "passed":
        raise ValidationFailedError(report)
    return report


def export_and_validate(
    parts: list[tuple[Component, ExportContext]],
    request: ExportRequest,
    timings: dict[str, dict[str, float]],
    progress: Progress,
    atol: float,
    rtol: float,
) -> tuple[dict[tuple[str, str], list[Path]], list[FormatResult]]:
    """Export every format of every component, validate, and re-export ONNX files that fail by the next method."""
    files: dict[tuple[str, str], list[Path]] = {}
    methods: dict[tuple[str, str], str] = {}
    for name in request.formats:
        with _timed(timings, name, progress, f"Exporting {name}"):
            for component, context in parts:
                key = (name, component.name)
                files[key], methods[key] = export_format(name, component, context)
            if name == "onnx":
                merge_split_decoders(parts, files)
    with _timed(timings, "validate", progress, f"Validating on {len(request.validation_shapes)} shapes"):
        results = validate(parts, request.formats, request.validation_shapes, atol, rtol)
    results = [result.model_copy(update={"method": methods[result.format, result.component]}) for result in results]
    if "onnx" in request.formats:
        results = retry_onnx(parts, results, files, request.validation_shapes, atol, rtol, timings)
    return files, results


def export_format(name: str, component: Component, context: ExportContext) -> tuple[list[Path], str]:
    """Write one component in one format; the files and the method that made them (ONNX axes named)."""
    if name == "onnx":
        return OnnxFormat().export_from(component.module, context, 0)
    if name == "torchscript":
        return FORMATS[name].export(component.module, context), "trace"
    return FORMATS[name].export(component.module, context), name


def merge_split_decoders(
    parts: list[tuple[Component, ExportContext]], files: dict[tuple[str, str], list[Path]]
) -> None:
    """Replace the two split seq2seq decoder files by ``decoder_model_merged.onnx`` (see :mod:`exporter.merge`)."""
    split = [name for name in MERGED_FROM if ("onnx", name) in files]
    if len(split) < len(MERGED_FROM) or not parts:
        return
    context = parts[0][1]
    merged = merge_decoders(context.output_dir, context.external_data_threshold)
    files["onnx", split[0]] = merged
    for name in split[1:]:
        files["onnx", name] = []


def retry_onnx(
    parts: list[tuple[Component, ExportContext]],
    results: list[FormatResult],
    files: dict[tuple[str, str], list[Path]],
    shapes: tuple[Mapping[str, int], ...],
    atol: float,
    rtol: float,
    timings: dict[str, dict[str, float]],
) -> list[FormatResult]:
    """Re-export ONNX files that did not validate by the next method, and validate them again.

    A trace-based graph may be specialised to the export shape; the ``torch.export`` one is not.
    The two branches of a merged decoder are re-exported and merged together. When no later method
    exports, the first file and its failing checks stay.
    """
    onnx = OnnxFormat()
    last = onnx.methods[-1]
    by_component = {result.component: result for result in results if result.format == "onnx"}
    redo = {name for name, result in by_component.items() if not result.passed and (result.method or last) != last}
    if redo & set(MERGED_FROM):
        redo |= set(MERGED_FROM) & set(by_component)
    if not redo:
        return results
    again_parts = [(component, context) for component, context in parts if component.name in redo]
    methods: dict[str, str] = {}
    with _timed(timings, "onnx_retry", _quiet, ""):
        try:
            for component, context in again_parts:
                start = onnx.methods.index(by_component[component.name].method or last) + 1
                files["onnx", component.name], methods[component.name] = onnx.export_from(
                    component.module, context, min(start, len(onnx.methods) - 1)
                )
        except ExportFailedError:
            return results
        merge_split_decoders(again_parts, files)
        retried = validate(again_parts, ("onnx",), shapes, atol, rtol)
    fresh = {result.component: result.model_copy(update={"method": methods[result.component]}) for result in retried}
    return [fresh.get(r.component, r) if r.format == "onnx" else r for r in results]


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
    overrides = configure(config, spec, task)
    model_class = spec.model_class_for(task)
    model = load_model(model_class, checkpoint.path, config, request.trust_remote_code)
    if spec.prepare_model is not None:
        spec.prepare_model(model)
    parameters = frozenset(inspect.signature(model.forward).parameters)
    inputs = dummy_inputs.select_inputs(spec, task, parameters)
    return Loaded(checkpoint, spec, task, config, model, inputs, parameters, config_overrides=overrides)


def configure(config: Any, spec: ModelSpec, task: str) -> dict[str, dict[str, Any]]:
    """Apply the spec's overrides; no cache in the outputs unless the task exports it (``-with-past``).

    Returns the overrides that change the checkpoint's config (``use_cache`` only picks the outputs,
    not the math): the report lists them, since the export is then not the checkpoint as it is.
    """
    if hasattr(config, "use_cache"):
        config.use_cache = get_task(task).with_past
    changed: dict[str, dict[str, Any]] = {}
    for key, value in spec.config_overrides.get(task, {}).items():
        before = getattr(config, key, None)
        if before != value:
            changed[key] = {"checkpoint": before, "exported": value}
        setattr(config, key, value)
    return changed


def component_context(loaded: Loaded, component: Component, request: ExportRequest) -> ExportContext:
    """Sample inputs at the export shape, their dynamic axes, and the output names of an eager run."""
    probes = [request.export_shape, *_differing(request.export_shape, request.validation_shapes)[:1]]
    runs: list[tuple[dict[str, Any], dict[str, torch.Tensor]]] = []
    try:
        for index, shape in enumerate(probes):
            inputs = component.make_inputs(shape, index)
            with torch.no_grad():
                runs.append((inputs, flatten_outputs(component.module(**inputs))))
    except Exception as e:  # the checkpoint's own code fails before any export happens
        raise ForwardFailedError(
            f"the model's own forward fails on sample inputs ({type(e).__name__}: {first_line(e)}); "
            "check the checkpoint's config"
        ) from e
    sample, outputs = runs[0]
    names = component.output_names or tuple(outputs)
    dynamic_axes = component.dynamic_axes(sample)
    sizes = [({k: tuple(t.shape) for k, t in flatten_tensors(i).items()}, _shapes(o, names)) for i, o in runs]
    limit = max_sequence(loaded.config)
    return ExportContext(
        inputs=sample,
        dynamic_axes=dynamic_axes,
        output_axes=output_axes_of_runs([i for i, _ in sizes], [o for _, o in sizes], dynamic_axes)
        if len(runs) > 1
        else {},
        fixed_output_dims=fixed_output_dims([o for _, o in sizes]),
        output_names=names,
        axis_bounds=axis_bounds(loaded.spec, limit),
        opset=request.opset,
        output_dir=request.output_dir,
        external_data_threshold=request.external_data_threshold,
        component=component.name,
    )


def _differing(shape: Mapping[str, int], others: tuple[Mapping[str, int], ...]) -> list[Mapping[str, int]]:
    """The shapes of ``others`` that differ from ``shape`` in every axis both name."""
    return [other for other in others if all(other[key] != shape[key] for key in shape.keys() & other.keys())]


def _shapes(outputs: Mapping[str, torch.Tensor], names: tuple[str, ...]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(outputs[name].shape) for name in names if name in outputs}


def max_sequence(config: Any) -> int | None:
    """The position table's length: the config's, or its text tower's (CLIP-style) or decoder's (a vision
    encoder-decoder), or GPT-style ``n_positions``."""
    for source in (config, dummy_inputs.tower(config, "text")):
        for name in ("max_position_embeddings", "n_positions"):
            limit = getattr(source, name, None)
            if isinstance(limit, int) and limit > 0:
                return limit
    return None


def axis_bounds(spec: ModelSpec, max_sequence: int | None) -> dict[str, tuple[int | None, int | None]]:
    """``(min, max)`` of each dynamic axis: the spec's minimums, and the position table's length."""
    batch = dummy_inputs.BATCH
    bounds: dict[str, tuple[int | None, int | None]] = {axis: (low, None) for axis, low in spec.axis_min.items()}
    bounds[batch] = (spec.axis_min.get(batch), None)
    high = max_sequence - spec.sequence_headroom if max_sequence is not None else None
    for axis in (dummy_inputs.SEQUENCE, dummy_inputs.DECODER_SEQUENCE, dummy_inputs.PAST_SEQUENCE):
        bounds[axis] = (spec.axis_min.get(axis), high)
    for alias, key in dummy_inputs.ALIASES.items():
        bounds[alias] = bounds[key]
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
