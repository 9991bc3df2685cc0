"""Compare an exported model's outputs with eager PyTorch's: names, shapes, and values within ``atol``.

``max_rel_diff`` is the largest absolute difference divided by the largest reference magnitude: a
scale-free figure that stays finite where reference values cross zero.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from exporter.report import OutputCheck, ShapeCheck


def compare_outputs(
    reference: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray], atol: float, shape: dict[str, int]
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
    checks = [_compare(name, reference[name], actual[name], atol) for name in reference if name in actual]
    passed = not problems and bool(checks) and all(check.passed for check in checks)
    return ShapeCheck(shape=dict(shape), outputs=checks, passed=passed, error="; ".join(problems) or None)


def _compare(name: str, expected: np.ndarray, got: np.ndarray, atol: float) -> OutputCheck:
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
        passed = max_abs <= atol and not nan_mismatch
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
        passed=passed,
    )
