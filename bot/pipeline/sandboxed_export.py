"""Step 2: run ``python -m exporter export`` in the sandbox and turn its exit into an outcome.

Exit codes are the exporter's (``exporter/errors.py``): 0 passed, 1 validation failed, 3 checkpoint
problem, 4 unsupported, 5 export failed, 7 bad spec, 70 internal.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path

from bot.errors import (
    CheckpointRejectedError,
    ExportJobError,
    ExportMismatchError,
    SkipJob,
    UnsafeOutputError,
)
from bot.pipeline.check import CheckedOutput, check_output, read_report
from bot.pipeline.repo_config import RepoConfig
from bot.sandbox import OUTPUT, SNAPSHOT, SandboxRequest, SandboxResult, SandboxRunner


@dataclass(frozen=True, kw_only=True)
class ExportLimits:
    timeout: float
    memory_bytes: int
    max_file_bytes: int
    threads: int


def exporter_args(config: RepoConfig, task: str | None) -> tuple[str, ...]:
    """The exporter command line (after ``python``), with sandbox path placeholders."""
    args = ["-m", "exporter", "export", "--model", SNAPSHOT, "--formats", ",".join(config.formats), "--quiet"]
    if task is not None:
        args += ["--task", task]
    if config.opset is not None:
        args += ["--opset", str(config.opset)]
    if config.atol is not None:
        args += ["--atol", repr(config.atol)]
    return (*args, OUTPUT)


def export_in_sandbox(
    runner: SandboxRunner,
    snapshot: Path,
    output: Path,
    config: RepoConfig,
    task: str | None,
    limits: ExportLimits,
) -> CheckedOutput:
    """Export one task in the sandbox; a passing, verified output or a job error."""
    output.mkdir(parents=True, exist_ok=False)
    request = SandboxRequest(
        args=exporter_args(config, task),
        snapshot_dir=snapshot,
        output_dir=output,
        timeout=limits.timeout,
        memory_bytes=limits.memory_bytes,
        max_file_bytes=limits.max_file_bytes,
        threads=limits.threads,
    )
    result = runner.run(request)
    if result.returncode != 0 or result.timed_out:
        raise _failure(result, output, limits)
    prefix = f"/{task}" if task is not None and len(config.task_list()) > 1 else ""
    return check_output(output, formats=list(config.formats), prefix=prefix, max_bytes=limits.max_file_bytes)


def _failure(result: SandboxResult, output: Path, limits: ExportLimits) -> Exception:
    line = result.last_line() or "no message"
    if result.timed_out:
        return ExportJobError(f"export timed out after {limits.timeout:g} s (sandbox killed)")
    if result.signal is not None:
        name = _signal_name(result.signal)
        return ExportJobError(f"exporter killed by {name} (memory limit {limits.memory_bytes} bytes?): {line}")
    code = result.returncode
    if code == 1:
        try:
            _, report = read_report(output)
            return ExportMismatchError(f"validation failed: {report.failure_summary()}")
        except UnsafeOutputError:
            return ExportMismatchError(f"validation failed: {line}")
    if code == 2:
        return ExportJobError(f"the exporter refused the options: {line}")
    if code == 3:
        return CheckpointRejectedError(f"checkpoint problem: {line}")
    if code == 4:
        return SkipJob(f"unsupported: {line}")
    if code == 5:
        return ExportJobError(f"export failed: {line}")
    if "MemoryError" in result.stderr:
        return ExportJobError(f"out of memory (limit {limits.memory_bytes} bytes): {line}")
    return ExportJobError(f"exporter exited with {code}: {line}")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
