"""Validate dtype variants against eager PyTorch, each with a criterion that fits it.

=========  =======================================================================================
dtype      passes when, on every validation shape
=========  =======================================================================================
``fp16``   every element of every output within ``atol + rtol·|reference|`` (both ``1e-2``)
``q8``     ``*logits``: the top-1 class / next token agrees with eager at ≥ 90 % of positions and
           the logits' cosine similarity is ≥ 0.99; other outputs (hidden states): cosine ≥ 0.99
           (the output taken as one flat vector, per shape, the lowest shape's)
``q4``     the same figures at ≥ 80 % and ≥ 0.95
=========  =======================================================================================

Quantized weights change values by design, so q8/q4 are judged on what a user sees: the argmax
(the class a classifier returns, the token greedy decoding picks at each position of the input)
and the direction of the main output. The main output is the component's first (``logits``, or
``last_hidden_state`` of an encoder). The thresholds were set on tiny random checkpoints, whose
flat logits flip more easily than a trained model's: a tiny T5's q8 decoder measured 94.7 % (one
position of 19), its q4 decoder 68–74 % (fails, as it should be chosen knowingly).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from exporter.components import Component
from exporter.errors import first_line
from exporter.formats import FORMATS, ExportContext
from exporter.merge import MERGED_FROM, merged_runner, onnx_file
from exporter.report import VariantResult
from exporter.tensors import flatten_outputs, flatten_tensors
from exporter.validation import compare_outputs
from exporter.variants import build_variant, variant_path

FP16_TOLERANCE = 1e-2


@dataclass(frozen=True)
class Agreement:
    """Thresholds of a quantized dtype."""

    top1: float
    cosine: float


AGREEMENT = {"q8": Agreement(top1=0.90, cosine=0.99), "q4": Agreement(top1=0.80, cosine=0.95)}
Case = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]


def check_variant(
    component: Component,
    context: ExportContext,
    dtype: str,
    shapes: Sequence[Mapping[str, int]],
    cases: list[Case] | None = None,
) -> VariantResult:
    """Run the ``dtype`` file of ``component`` on every shape and judge it against eager PyTorch.

    ``cases`` are the feeds and eager outputs of ``shapes`` when the caller already has them.
    """
    fp32_file = context.output_dir / onnx_file(component.name)
    path = variant_path(fp32_file, dtype)
    cases = cases if cases is not None else _cases(component, shapes)
    try:
        run = FORMATS["onnx"].load(path, context)
        if component.name in MERGED_FROM:  # a split decoder is one branch of the merged file
            run = merged_runner(run, path, MERGED_FROM[component.name])
        actual = [run(feeds) for feeds, _ in cases]
        del run  # its session is freed here: no reference cycle holds it (see exporter/validation.py)
    except Exception as e:  # the runtime refused the variant: a failed criterion, reported as such
        return VariantResult(
            dtype=dtype, component=component.name, file=path.name, criterion=_criterion(dtype), figures={},
            passed=False, error=f"run failed: {first_line(e)}",
        )  # fmt: skip
    references = [reference for _, reference in cases]
    if dtype == "fp16":
        return _fp16(component.name, path.name, references, actual, shapes)
    return _agreement(component.name, path.name, dtype, references, actual)


def _cases(component: Component, shapes: Sequence[Mapping[str, int]]) -> list[Case]:
    cases = []
    for index, shape in enumerate(shapes):
        sample = component.make_inputs(shape, index + 1)
        with torch.no_grad():
            outputs = flatten_outputs(component.module(**sample))
        feeds = {name: tensor.numpy() for name, tensor in flatten_tensors(sample).items()}
        cases.append((feeds, {name: tensor.numpy() for name, tensor in outputs.items()}))
    return cases


def _criterion(dtype: str) -> str:
    if dtype == "fp16":
        return f"every output within atol {FP16_TOLERANCE:g} + rtol {FP16_TOLERANCE:g}·|reference|"
    agreement = AGREEMENT[dtype]
    return f"top-1 agreement ≥ {agreement.top1:.0%} (logits) and cosine similarity ≥ {agreement.cosine:g}"


def _fp16(
    component: str,
    file: str,
    references: Sequence[dict[str, np.ndarray]],
    actual: Sequence[dict[str, np.ndarray]],
    shapes: Sequence[Mapping[str, int]],
) -> VariantResult:
    checks = [
        compare_outputs(
            {k: v for k, v in reference.items() if k in got}, got, FP16_TOLERANCE, dict(shape), FP16_TOLERANCE
        )
        for reference, got, shape in zip(references, actual, shapes, strict=True)
    ]
    worst = max((out.max_abs_diff for check in checks for out in check.outputs), default=float("inf"))
    worst_rel = max((out.max_rel_diff for check in checks for out in check.outputs), default=float("inf"))
    errors = [check.error for check in checks if check.error]
    return VariantResult(
        dtype="fp16",
        component=component,
        file=file,
        criterion=_criterion("fp16"),
        figures={"max_abs_diff": worst, "max_rel_diff": worst_rel},
        passed=all(check.passed for check in checks),
        error=errors[0] if errors else None,
    )


def _agreement(
    component: str,
    file: str,
    dtype: str,
    references: Sequence[dict[str, np.ndarray]],
    actual: Sequence[dict[str, np.ndarray]],
) -> VariantResult:
    main = next(iter(references[0]))
    expected = [reference[main].astype(np.float64) for reference in references]
    got = [outputs[main].astype(np.float64) for outputs in actual if main in outputs]
    if len(got) != len(expected) or any(e.shape != g.shape for e, g in zip(expected, got, strict=False)):
        return VariantResult(
            dtype=dtype, component=component, file=file, criterion=_criterion(dtype), figures={}, passed=False,
            error=f"output {main!r} is missing or misshapen",
        )  # fmt: skip
    agreement = AGREEMENT[dtype]
    cosine = min(_cosine(e, g) for e, g in zip(expected, got, strict=True))
    figures = {"cosine": cosine}
    passed = cosine >= agreement.cosine
    if main.endswith("logits"):
        top1 = float(np.mean(np.concatenate([_top1(e) == _top1(g) for e, g in zip(expected, got, strict=True)])))
        figures["top1_agreement"] = top1
        passed = passed and top1 >= agreement.top1
    return VariantResult(
        dtype=dtype,
        component=component,
        file=file,
        criterion=_criterion(dtype),
        figures=figures,
        passed=passed,
        error=None,
    )


def _top1(logits: np.ndarray) -> np.ndarray:
    return np.asarray(np.argmax(logits, axis=-1)).reshape(-1)


def _cosine(expected: np.ndarray, got: np.ndarray) -> float:
    """Cosine similarity of the two outputs taken as flat vectors (1.0 when both are zero)."""
    e, g = expected.reshape(-1), got.reshape(-1)
    norms = float(np.linalg.norm(e) * np.linalg.norm(g))
    if norms == 0:
        return 1.0 if not e.any() and not g.any() else 0.0
    return float(np.dot(e, g) / norms)


def build_and_check(
    parts: Sequence[tuple[Component, ExportContext]],
    dtypes: Sequence[str],
    shapes: Sequence[Mapping[str, int]],
) -> tuple[list[VariantResult], list[Path]]:
    """Build every dtype but fp32 from each component's validated ``.onnx`` file and judge it; results and files."""
    results, written = [], []
    cases: dict[str, list[Case]] = {}  # eager PyTorch runs once per component, for every dtype
    for dtype in dtypes:
        if dtype == "fp32":
            continue
        built: set[Path] = set()
        for component, context in parts:
            fp32_file = context.output_dir / onnx_file(component.name)
            if fp32_file not in built:  # the merged decoder's two branches share one file
                built.add(fp32_file)
                written += build_variant(fp32_file, dtype, context.external_data_threshold)
            if component.name not in cases:
                cases[component.name] = _cases(component, shapes)
            results.append(check_variant(component, context, dtype, shapes, cases[component.name]))
    return results, written
