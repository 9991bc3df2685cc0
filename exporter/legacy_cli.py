"""``python -m exporter.onnx``: the command line of the removed ``python -m transformers.onnx``, kept alive.

Users of the old package migrate by changing one word::

    python -m transformers.onnx --model distilbert-base-uncased --feature sequence-classification out/
    python -m exporter.onnx     --model distilbert-base-uncased --feature sequence-classification out/

It accepts every argument of transformers 4.x's ``transformers/onnx/__main__.py`` and prints the same
validation log (on stderr, like the old logger did; the indented lines start with one or two tabs)::

    Validating ONNX model...
        -[✓] ONNX model output names match reference model ({'logits'})
        - Validating ONNX Model output "logits":
            -[✓] (2, 2) matches (2, 2)
            -[✓] all values close (atol: 0.0001)
    All good, model saved at: out/model.onnx

Differences from the old tool, all deliberate:

* the export runs through this project's pipeline (``torch.export`` → ONNX), validated on every
  shape of :data:`exporter.dummy_inputs.VALIDATION_SHAPES`: the log has one block per shape;
* a seq2seq ``-with-past`` export writes ``encoder_model.onnx``, ``decoder_model.onnx`` and
  ``decoder_with_past_model.onnx``: each gets its blocks and "All good" lists them all, as the old
  tool did for its encoder-decoder models;
* every failing output is listed (the old tool stopped at the first); ``report.json`` and
  ``report.md`` are written next to ``model.onnx``; weights above 2 GB go to ``model.onnx_data``;
* the default tolerance is this project's per-architecture ``atol`` (``--atol`` overrides it) and the
  default opset is :data:`exporter.run.DEFAULT_OPSET`; opsets below 14 are refused;
* ``--preprocessor`` and ``--export_with_transformers`` are accepted and ignored: dummy inputs come
  from the config, not a tokenizer, and there is no Optimum to delegate to. ``--framework tf`` is
  refused (TensorFlow left transformers in v5). ``--cache_dir`` sets the Hub cache of this process.

Exit codes: 0 when the export validated, 1 when validation failed (the ``-[x]`` lines say where),
2 for a bad command line, otherwise the exporter's own codes (see :mod:`exporter.errors`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from exporter.errors import ExporterError, UsageError, ValidationFailedError
from exporter.report import FormatResult, Report, ShapeCheck

#: Smallest opset the ``torch.export``-based ONNX exporter writes.
MIN_OPSET = 14
MAX_OPSET = 23
#: Old flags that no longer change anything, and why.
IGNORED_FLAGS = {
    "preprocessor": "dummy inputs are made from the config, not a preprocessor",
    "export_with_transformers": "the export always runs here; there is no Optimum to delegate to",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of transformers 4.x's ``transformers.onnx`` (same names, same defaults)."""
    parser = argparse.ArgumentParser(
        "python -m exporter.onnx",
        description="Hugging Face Transformers ONNX exporter (the transformers.onnx command line, on this exporter).",
    )
    parser.add_argument(
        "-m", "--model", type=str, required=True, help="Model ID on huggingface.co or path on disk to load model from."
    )
    parser.add_argument("--feature", default="default", help="The type of features to export the model with.")
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset version to export the model with.")
    parser.add_argument("--atol", type=float, default=None, help="Absolute difference tolerance when validating.")
    parser.add_argument(
        "--framework", type=str, choices=["pt", "tf"], default=None, help="Only 'pt': TensorFlow left transformers 5."
    )
    parser.add_argument("output", type=Path, help="Path indicating where to store generated ONNX model.")
    parser.add_argument("--cache_dir", type=str, default=None, help="Path indicating where to store cache.")
    parser.add_argument(
        "--preprocessor",
        type=str,
        choices=["auto", "tokenizer", "feature_extractor", "processor"],
        default="auto",
        help="Accepted and ignored: " + IGNORED_FLAGS["preprocessor"] + ".",
    )
    parser.add_argument(
        "--export_with_transformers",
        action="store_true",
        help="Accepted and ignored: " + IGNORED_FLAGS["export_with_transformers"] + ".",
    )
    parser.add_argument("--trust-remote-code", action="store_true", help="Allow the checkpoint's own Python code.")
    parser.add_argument("--debug", action="store_true", help="Show tracebacks and library logs.")
    return parser


def onnx_path_for(output: Path) -> Path:
    """Where ``model.onnx`` goes: the old rule (an existing file is the target, anything else a folder)."""
    if output.is_file():
        if output.name != "model.onnx":
            raise UsageError(f"{output} exists and is not named model.onnx; pass its folder instead")
        return output
    return output / "model.onnx"


def feature_to_task(feature: str) -> str:
    """The old ``--feature`` name as this project's task (they share names, ``-with-past`` ones included)."""
    from exporter.errors import UnsupportedTaskError
    from exporter.tasks import TASKS

    if feature not in TASKS:
        raise UnsupportedTaskError(f"feature {feature!r} is not supported; features: {', '.join(TASKS)}")
    return feature


def check_opset(opset: int | None) -> None:
    if opset is not None and not MIN_OPSET <= opset <= MAX_OPSET:
        raise UsageError(
            f"Opset {opset} is not sufficient to export with torch.export. At least {MIN_OPSET} is required "
            f"(and at most {MAX_OPSET})."
        )


def _names(names: Sequence[str]) -> str:
    """Python's set display of the old log: ``{'end_logits', 'start_logits'}``."""
    return "{" + ", ".join(repr(name) for name in sorted(names)) + "}" if names else "set()"


def _shape(shape: Sequence[int]) -> str:
    return str(tuple(shape))


def render_log(report: Report, onnx_path: Path) -> list[str]:
    """The old validation log from the report: one block per ONNX graph and validated shape."""
    results = onnx_results(report)
    if not results:
        return ["Validating ONNX model...", "\t-[x] no ONNX model was validated"]
    lines: list[str] = []
    for result in results:
        for check in result.checks:
            lines += _check_block(check)
    if report.status == "passed":
        graphs = [onnx_path.parent / f.path for f in report.files if f.path.endswith(".onnx")] or [onnx_path]
        lines.append("All good, model saved at: " + ", ".join(path.as_posix() for path in graphs))
    else:
        for result in results:
            lines += failure_lines(result)
    return lines


def onnx_results(report: Report) -> list[FormatResult]:
    """The report's ONNX validations (several graphs for a seq2seq model with past)."""
    return [fmt for fmt in report.formats if fmt.format == "onnx" or fmt.file.endswith(".onnx")]


def _check_block(check: ShapeCheck) -> list[str]:
    lines = ["Validating ONNX model..."]
    if check.error:
        lines.append(f"\t-[x] {check.error}")
    else:
        names = [out.name for out in check.outputs]
        lines.append(f"\t-[✓] ONNX model output names match reference model ({_names(names)})")
    for out in check.outputs:
        lines.append(f'\t- Validating ONNX Model output "{out.name}":')
        if out.shape != out.reference_shape:
            lines.append(f"\t\t-[x] shape {_shape(out.shape)} doesn't match {_shape(out.reference_shape)}")
            continue
        lines.append(f"\t\t-[✓] {_shape(out.shape)} matches {_shape(out.reference_shape)}")
        if out.passed:
            lines.append(f"\t\t-[✓] all values close (atol: {out.atol})")
        else:
            lines.append(f"\t\t-[x] values not close enough (atol: {out.atol})")
    return lines


def failure_lines(result: FormatResult) -> list[str]:
    """The old tool's error messages, one per failing output (it raised on the first)."""
    lines = []
    for check in result.checks:
        where = ", ".join(f"{key}={value}" for key, value in check.shape.items())
        if check.error:
            lines.append(f"ValueError: {check.error} ({where})")
        for out in check.outputs:
            if out.passed:
                continue
            if out.shape != out.reference_shape:
                lines.append(
                    "ValueError: Outputs shape doesn't match between reference model and ONNX exported model: "
                    f"Got {_shape(out.reference_shape)} (reference) and {_shape(out.shape)} (ONNX) "
                    f'for "{out.name}" ({where})'
                )
            else:
                lines.append(
                    "ValueError: Outputs values doesn't match between reference model and ONNX exported model: "
                    f'Got max absolute difference of: {out.max_abs_diff} for "{out.name}" ({where})'
                )
    return lines


def _set_cache_dir(cache_dir: str) -> None:
    """``--cache_dir``: the Hub cache of this process (read by ``snapshot_download`` at call time)."""
    import os

    from huggingface_hub import constants

    os.environ["HF_HUB_CACHE"] = cache_dir
    constants.HF_HUB_CACHE = cache_dir


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the old arguments, export and validate ONNX, print the old log; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _run(args)
    except ExporterError as e:
        if args.debug:
            import traceback

            traceback.print_exc()
        _say(f"error: {e}")
        return e.exit_code
    except Exception as e:  # a bug: one line, the traceback behind --debug
        if args.debug:
            raise
        _say(f"internal error: {e} (rerun with --debug for the traceback)")
        return 70


def _run(args: argparse.Namespace) -> int:
    import os

    import torch

    from exporter.cli import _library_output
    from exporter.run import DEFAULT_OPSET, ExportRequest, run_export

    if args.framework == "tf":
        raise UsageError("--framework tf: TensorFlow left transformers in v5; only pt (the default) exports")
    check_opset(args.opset)
    for flag, why in IGNORED_FLAGS.items():
        value = getattr(args, flag)
        if value not in (False, "auto"):
            shown = f"--{flag}" if value is True else f"--{flag} {value}"
            _say(f"note: {shown} is ignored: {why}")
    if args.cache_dir:
        _set_cache_dir(args.cache_dir)
    onnx_path = onnx_path_for(args.output)
    request = ExportRequest(
        model=args.model,
        output_dir=onnx_path.parent,
        task=feature_to_task(args.feature),
        opset=args.opset or DEFAULT_OPSET,
        atol=args.atol,
        formats=("onnx",),
        trust_remote_code=args.trust_remote_code,
        token=os.environ.get("HF_TOKEN") or None,
    )
    _say(f"Using framework PyTorch: {torch.__version__}")
    try:
        with _library_output(args.debug):
            report = run_export(request)
    except ValidationFailedError as e:
        for line in render_log(e.report, onnx_path):
            _say(line)
        return e.exit_code
    for line in render_log(report, onnx_path):
        _say(line)
    return 0
