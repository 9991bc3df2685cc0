"""The validate step: run eager PyTorch and every exported file on every shape, compare output by output.

Comparison checks names, shapes, and values element by element like :func:`numpy.allclose`:
``|actual - reference| <= atol + rtol * |reference|``, so a fixed ``atol`` judges small outputs and
``rtol`` scales with large ones (float32 rounding of logits near 300 is ~1e-3).

``max_rel_diff`` is the largest absolute difference divided by the largest reference magnitude: a
scale-free figure that stays finite where reference values cross zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from exporter import dummy_inputs
from exporter.components import Component
from exporter.errors import first_line
from exporter.formats import FORMATS, ExportContext
from exporter.merge import MERGED_FROM, merged_runner, onnx_file
from exporter.report import FormatResult, OutputCheck, ShapeCheck
from exporter.tensors import flatten_outputs, flatten_tensors

Shape = Mapping[str, int]


def validate(
    parts: Sequence[tuple[Component, ExportContext]],
    formats: Sequence[str],
    shapes: Sequence[Shape],
    atol: float,
    rtol: float = 0.0,
) -> list[FormatResult]:
    """Run eager PyTorch and every exported file on every shape; compare output by output.

    One :class:`FormatResult` per format and component, format by format.
    """
    checks = {
        component.name: validate_component(component, context, formats, shapes, atol, rtol)
        for component, context in parts
    }
    results = []
    for name in formats:
        fmt = FORMATS[name]
        for component, _ in parts:
            shape_checks = checks[component.name][name]
            passing = [c.shape for c in shape_checks if c.passed]
            failing = [c.shape for c in shape_checks if not c.passed]
            note = fmt.note(passing, failing)
            file = onnx_file(component.name) if name == "onnx" else f"{component.name}{fmt.suffix}"
            results.append(
                FormatResult(format=name, file=file, checks=shape_checks, note=note, component=component.name)
            )
    return results


def validate_component(
    component: Component,
    context: ExportContext,
    formats: Sequence[str],
    shapes: Sequence[Shape],
    atol: float,
    rtol: float = 0.0,
) -> dict[str, list[ShapeCheck]]:
    """Checks of one component's file in each format, one per validation shape.

    Eager references come first; then one runtime at a time is loaded, run on every shape and
    dropped, so peak memory holds the eager model and a single exported copy, not all of them.
    """
    axes = {axis for axes in context.dynamic_axes.values() for axis in axes.values()}
    cases = []
    for index, requested in enumerate(shapes):
        sample = component.make_inputs(requested, index + 1)
        with torch.no_grad():
            outputs = flatten_outputs(component.module(**sample))
        reference = {name: outputs[name].numpy() for name in context.output_names if name in outputs}
        feeds = {name: tensor.numpy() for name, tensor in flatten_tensors(sample).items()}
        cases.append((dummy_inputs.restrict_shape(requested, axes), feeds, reference))
    checks: dict[str, list[ShapeCheck]] = {}
    for name in formats:
        run = load_runner(name, component.name, context)
        checks[name] = [_check(run, feeds, reference, atol, shape, rtol) for shape, feeds, reference in cases]
        del run  # no reference cycle holds a runner: its session or module is freed here (no gc.collect,
        # which costs ~1 s per call in a process holding torch and transformers)
    return checks


def load_runner(fmt: str, component: str, context: ExportContext) -> Any:
    """The runner of ``component``'s file in ``fmt``; a split seq2seq decoder runs its branch of the merged file."""
    if fmt == "onnx" and component in MERGED_FROM:
        path = context.output_dir / onnx_file(component)
        return merged_runner(FORMATS[fmt].load(path, context), path, MERGED_FROM[component])
    return FORMATS[fmt].load(context.path(FORMATS[fmt].suffix), context)


def _check(
    run: Any,
    feeds: dict[str, np.ndarray],
    reference: dict[str, np.ndarray],
    atol: float,
    shape: dict[str, int],
    rtol: float = 0.0,
) -> ShapeCheck:
    try:
        actual = run(feeds)
    except Exception as e:  # the runtime refused this shape: a validation failure, reported as such
        return ShapeCheck(shape=dict(shape), outputs=[], passed=False, error=f"run failed: {first_line(e)}")
    return compare_outputs(reference, actual, atol, shape, rtol)


def compare_outputs(
    reference: Mapping[str, np.ndarray],
    actual: Mapping[str, np.ndarray],
    atol: float,
    shape: dict[str, int],
    rtol: float = 0.0,
) -> ShapeCheck:
    """Check every reference output; a missing, extra or misshapen output fails the shape."""
    problems = []
    missing = [name for name in reference if name not in actual]
    extra = [name for name in actual if name not in reference]
    if missing or extra:
        problems.append(
            f"output names differ from the reference ({sorted(reference)}): "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}"
        )
    checks = [_compare(name, reference[name], actual[name], atol, rtol) for name in reference if name in actual]
    passed = not problems and bool(checks) and all(check.passed for check in checks)
    return ShapeCheck(shape=dict(shape), outputs=checks, passed=passed, error="; ".join(problems) or None)


def _compare(name: str, expected: np.ndarray, got: np.ndarray, atol: float, rtol: float) -> OutputCheck:
    expected = np.asarray(expected)
    got = np.asarray(got)
    same_shape = expected.shape == got.shape
    if same_shape and expected.size:
        exp64 = expected.astype(np.float64)
        diff = np.abs(exp64 - got.astype(np.float64))
        nan_mismatch = bool(np.any(np.isnan(exp64) != np.isnan(diff)))
        max_abs = float(np.nanmax(diff)) if not np.all(np.isnan(diff)) else 0.0
        scale = float(np.nanmax(np.abs(exp64))) if not np.all(np.isnan(exp64)) else 0.0
        max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else float("inf"))
        allowed = atol + rtol * np.abs(exp64)
        passed = not nan_mismatch and not bool(np.any(diff > allowed))
    else:
        max_abs = max_rel = 0.0 if same_shape else float("inf")
        passed = same_shape
    return OutputCheck(
        name=name,
        shape=list(got.shape),
        reference_shape=list(expected.shape),
        max_abs_diff=max_abs,
        max_rel_diff=max_rel,
        atol=atol,
        rtol=rtol,
        passed=passed,
    )
