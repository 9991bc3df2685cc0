"""The ``exporter`` command line: parse, build one request, call the library, format the result."""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from exporter.errors import ExporterError, ValidationFailedError
from exporter.report import Report

app = typer.Typer(
    name="exporter",
    help="Export Hugging Face checkpoints to ONNX and TorchScript, validated against eager PyTorch.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

ModelOption = Annotated[str, typer.Option("--model", "-m", help="Local checkpoint folder or Hub repo id.")]
OutputArg = Annotated[Path, typer.Argument(help="Folder to write model.onnx, model.pt and the reports to.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress output.")]
_debug = False


def _remember_debug(value: bool) -> bool:
    global _debug
    _debug = _debug or value
    return value


DebugOption = Annotated[
    bool, typer.Option("--debug", help="Show tracebacks and library logs.", callback=_remember_debug)
]


@contextlib.contextmanager
def _library_output(debug: bool) -> Iterator[None]:
    """Keep stdout for results: libraries' prints go to stderr (``--debug``) or nowhere."""
    if debug:
        with contextlib.redirect_stdout(sys.stderr):
            yield
        return
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    for name in ("torch.onnx", "torch.export", "torch._dynamo", "torch.fx", "onnxscript"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def _report_error(error: BaseException) -> int:
    """Print one line (the traceback too with ``--debug``) and return the exit code."""
    if _debug:
        err.print_exception()
    code = error.exit_code if isinstance(error, ExporterError) else 70
    prefix = "error" if isinstance(error, ExporterError) else "internal error"
    hint = "" if _debug or isinstance(error, ExporterError) else " (rerun with --debug for the traceback)"
    err.print(f"[red]{prefix}:[/red] {error}{hint}", markup=True, soft_wrap=True)
    return code


@app.command()
def export(
    output_dir: OutputArg,
    model: ModelOption,
    revision: Annotated[str | None, typer.Option(help="Branch, tag or commit of a Hub repo.")] = None,
    source_repo: Annotated[
        str | None, typer.Option(help="Hub repo id the local MODEL folder is a copy of; the report names it.")
    ] = None,
    source_revision: Annotated[
        str | None, typer.Option(help="Commit the local MODEL folder is a copy of; the report names it.")
    ] = None,
    task: Annotated[str, typer.Option("--task", "-t", help="Task, or 'auto' to infer it.")] = "auto",
    opset: Annotated[int, typer.Option(min=14, max=23, help="ONNX opset.")] = 18,
    atol: Annotated[float | None, typer.Option(min=0.0, help="Absolute tolerance (default: per task).")] = None,
    rtol: Annotated[
        float | None,
        typer.Option(min=0.0, help="Relative tolerance, per element: atol + rtol·|reference| (default: per task)."),
    ] = None,
    formats: Annotated[str, typer.Option(help="Comma-separated: onnx, torchscript.")] = "onnx,torchscript",
    dtypes: Annotated[
        str,
        typer.Option(
            help="Comma-separated ONNX variants: fp32 (model.onnx), fp16 (model_fp16.onnx), "
            "q8 (model_quantized.onnx), q4 (model_q4.onnx); fp32 is always built."
        ),
    ] = "fp32",
    spec: Annotated[str | None, typer.Option(help="User spec for an unknown architecture: path.py:Name.")] = None,
    trust_remote_code: Annotated[bool, typer.Option(help="Allow the checkpoint's own Python code.")] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            help="Graph cache for weights-only re-exports: when only the weights changed since an export "
            "stored there, its graph gets the new weights (validated as usual). Off by default."
        ),
    ] = None,
    quiet: QuietOption = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print report.json to stdout.")] = False,
    debug: DebugOption = False,
) -> None:
    """Export MODEL to OUTPUT_DIR and validate every format on two input shapes."""
    from exporter.formats import parse_formats
    from exporter.run import ExportRequest, run_export
    from exporter.user_spec import load_spec
    from exporter.variants import parse_dtypes

    _imported()
    started = time.perf_counter()
    show = not quiet and not json_output
    if spec:
        load_spec(spec)
    request = ExportRequest(
        model=model,
        output_dir=output_dir,
        revision=revision,
        source_repo=source_repo,
        source_revision=source_revision,
        task=task,
        opset=opset,
        atol=atol,
        rtol=rtol,
        formats=parse_formats(formats),
        dtypes=parse_dtypes(dtypes),
        trust_remote_code=trust_remote_code,
        token=os.environ.get("HF_TOKEN") or None,
        cache_dir=cache_dir,
    )
    try:
        with _library_output(debug):
            report = run_export(request, progress=_progress(show))
    except ValidationFailedError as e:
        _finish(e.report, output_dir, json_output, quiet, time.perf_counter() - started)
        for line in e.report.failures():
            err.print(f"[red]✗[/red] {line}", soft_wrap=True)
        raise typer.Exit(e.exit_code) from None
    _finish(report, output_dir, json_output, quiet, time.perf_counter() - started)


def _progress(show: bool) -> Callable[[str], None]:
    def step(message: str) -> None:
        if show:
            err.print(f"[cyan]→[/cyan] {message}")

    return step


def _finish(report: Report, output_dir: Path, json_output: bool, quiet: bool, seconds: float) -> None:
    if json_output:
        typer.echo(report.to_json(), nl=False)
        return
    if quiet:
        return
    color = "green" if report.status == "passed" else "red"
    err.print(
        f"[{color}]{report.status}[/{color}] {report.model_type} · {report.task}: "
        f"{len(report.formats)} file(s) × {len(report.shapes)} shapes in {seconds:.1f}s → {output_dir}"
    )
    for fmt in report.formats:
        err.print(f"  {fmt.label}: {fmt.note}")
    if report.graph_cache is not None:
        err.print(f"  graph cache: {report.graph_cache.note}")
    for variant in report.variants:
        mark = "passed" if variant.passed else "failed"
        err.print(f"  {variant.dtype} {variant.file}: {mark} ({variant.figures_text()})")


@app.command()
def features(
    model: Annotated[str, typer.Argument(help="A model type (bert) or a checkpoint folder.")],
    spec: Annotated[str | None, typer.Option(help="User spec file: path.py:Name.")] = None,
) -> None:
    """List the tasks an architecture can be exported for."""
    from exporter.loading import read_config_dict
    from exporter.specs import get_spec
    from exporter.support import not_exportable, supported_tasks
    from exporter.user_spec import load_spec

    if spec:
        load_spec(spec)
    model_type = model
    if Path(model).is_dir():
        model_type = str(read_config_dict(Path(model)).get("model_type", ""))
    model_spec = get_spec(model_type)
    tasks = supported_tasks(model_spec)
    if tasks:
        typer.echo(f"{model_type}: " + ", ".join(tasks))
    for task, why in not_exportable(model_spec).items():
        typer.echo(f"{model_type}: {'every task' if task == '*' else task} not exportable: {why}")


@app.command("supported")
def supported(
    markdown: Annotated[bool, typer.Option(help="As the README's markdown table.")] = False,
) -> None:
    """Print every supported architecture and its tasks."""
    from exporter.support import support_matrix, support_table_markdown

    if markdown:
        typer.echo(support_table_markdown())
        return
    for model_type, tasks in support_matrix().items():
        typer.echo(f"{model_type}: {', '.join(tasks)}")


@app.command()
def sample(
    output_dir: Annotated[Path, typer.Argument(help="Folder to write the checkpoint to.")],
    model_type: Annotated[str, typer.Option(help="Architecture of the sample.")] = "distilbert",
    task: Annotated[str, typer.Option(help="Head of the sample.")] = "sequence-classification",
    debug: DebugOption = False,
) -> None:
    """Build a tiny random-weight checkpoint locally (no network)."""
    from exporter.sample import build_sample_checkpoint

    with _library_output(debug):
        build_sample_checkpoint(output_dir, model_type, task)
    err.print(f"wrote a tiny {model_type} ({task}) checkpoint to {output_dir}")


@app.command()
def quickstart(
    output_dir: Annotated[Path, typer.Argument(help="Working folder.")] = Path("quickstart"),
    debug: DebugOption = False,
) -> None:
    """Build a tiny sample checkpoint, then export and validate it: the whole job, offline."""
    checkpoint = output_dir / "checkpoint"
    sample(checkpoint, debug=debug)
    export(output_dir / "export", model=str(checkpoint), task="sequence-classification", debug=debug)
    err.print(f"open {output_dir / 'export' / 'report.md'} for the report")


def main() -> None:
    """Console-script entry point: the one place errors become a message and an exit code."""
    gc.disable()  # importing torch and transformers makes millions of objects and no garbage (see _imported)
    try:
        app()
    except Exception as e:
        raise SystemExit(_report_error(e)) from None
    finally:
        # Interpreter shutdown would collect every object torch and transformers created (1.1 s for a
        # DistilBERT-base export, measured); frozen, they are left to reference counting.
        gc.freeze()


def _imported() -> None:
    """Once the heavy modules are in, when :func:`main` turned collection off for the imports: keep their
    objects out of every later collection, and collect again (0.3 s less collecting during a
    DistilBERT-base export, measured). Called in-process (tests, a library user), it does nothing."""
    if not gc.isenabled():
        gc.freeze()
        gc.enable()


if __name__ == "__main__":
    main()
