"""Step 2: run ``python -m exporter export`` in the sandbox and turn its exit into an outcome.

Exit codes are the exporter's (``exporter/errors.py``): 0 passed, 1 validation failed, 3 checkpoint
problem, 4 unsupported, 5 export failed, 7 bad spec, 70 internal. Reasons are worded for the
model's author (:mod:`bot.pipeline.reasons`); the exporter's own stderr goes to the bot's log.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from pathlib import Path

from bot.errors import (
    CheckpointRejectedError,
    ExportJobError,
    ExportMismatchError,
    JobError,
    UnsafeOutputError,
    UnsupportedCheckpointError,
)
from bot.pipeline.check import REPORT_MAX_BYTES, read_regular, read_report
from bot.pipeline.reasons import CHECKPOINT, EXPORT_FAILED, UNSUPPORTED, author_sentence, validation_sentence
from bot.pipeline.repo_config import RepoConfig
from bot.sandbox import CACHE, OUTPUT, SNAPSHOT, SandboxRequest, SandboxResult, SandboxRunner

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ExportLimits:
    timeout: float
    memory_bytes: int
    max_file_bytes: int
    threads: int
    max_processes: int = 512
    tmp_bytes: int = 1 << 30


def exporter_args(
    config: RepoConfig, task: str | None, repo: str | None = None, sha: str | None = None, cache: bool = False
) -> tuple[str, ...]:
    """The exporter command line (after ``python``), with sandbox path placeholders.

    ``repo`` and ``sha`` name what the snapshot is a copy of, so the committed report names them, not ``/snapshot``.
    """
    args = ["-m", "exporter", "export", "--model", SNAPSHOT, "--formats", ",".join(config.formats), "--quiet"]
    if repo is not None:
        args += ["--source-repo", repo]
    if sha is not None:
        args += ["--source-revision", sha]
    if task is not None:
        args += ["--task", task]
    if config.opset is not None:
        args += ["--opset", str(config.opset)]
    if config.atol is not None:
        args += ["--atol", repr(config.atol)]
    if config.rtol is not None:
        args += ["--rtol", repr(config.rtol)]
    if "onnx" in config.formats:
        args += ["--dtypes", ",".join(config.dtypes)]
    if cache:
        args += ["--cache-dir", CACHE]
    return (*args, OUTPUT)


def export_in_sandbox(
    runner: SandboxRunner,
    snapshot: Path,
    output: Path,
    config: RepoConfig,
    task: str | None,
    limits: ExportLimits,
    *,
    repo: str | None = None,
    sha: str | None = None,
    cache: Path | None = None,
) -> None:
    """Export one task in the sandbox into ``output`` (a new folder); a job error unless it passed.

    ``cache``: the repo's own graph-cache folder, writable in the sandbox (weights-only re-export).
    The output is not trusted yet: :func:`bot.pipeline.check.check_output` verifies it.
    """
    output.mkdir(parents=True, exist_ok=False)
    request = SandboxRequest(
        args=exporter_args(config, task, repo, sha, cache=cache is not None),
        cache_dir=cache,
        snapshot_dir=snapshot,
        output_dir=output,
        timeout=limits.timeout,
        memory_bytes=limits.memory_bytes,
        max_file_bytes=limits.max_file_bytes,
        threads=limits.threads,
        max_processes=limits.max_processes,
        tmp_bytes=limits.tmp_bytes,
    )
    result = runner.run(request)
    if result.returncode != 0 or result.timed_out:
        log.info("exporter exited with %s; its stderr ends:\n%s", result.returncode, result.stderr[-4000:])
        raise failure(result, output, limits, str(snapshot.resolve()))


def failure(result: SandboxResult, output: Path, limits: ExportLimits, snapshot: str | None = None) -> JobError:
    """The job error for a failed sandbox run, its reason written for the model's author."""
    line = result.last_line() or "no message"
    if result.timed_out:
        return ExportJobError(
            f"export timed out after {limits.timeout:g} s (sandbox killed): longer than this bot allows for one export"
        )
    if result.signal is not None:
        name = _signal_name(result.signal)
        return ExportJobError(f"exporter killed by {name} (memory limit {limits.memory_bytes:,} bytes?)")
    code = result.returncode
    sentence = author_sentence(code, line, snapshot)
    if code == 1:
        try:
            _, report = read_report(output)
        except UnsafeOutputError:
            return ExportMismatchError(f"validation failed: {sentence}")
        return ExportMismatchError(
            f"validation failed: {validation_sentence(report.failure_summary())}", details=_report_md(output)
        )
    if code == CHECKPOINT:
        return CheckpointRejectedError(f"checkpoint problem: {sentence}")
    if code == UNSUPPORTED:
        return UnsupportedCheckpointError(f"unsupported: {sentence}")
    if code == EXPORT_FAILED:
        return ExportJobError(f"export failed: {sentence}")
    if code == 2:
        return ExportJobError(f"the exporter refused the options from .export-bot.yaml: {sentence}")
    if "MemoryError" in result.stderr:
        return ExportJobError(f"out of memory (limit {limits.memory_bytes:,} bytes)")
    return ExportJobError(f"exporter exited with {code}: {sentence}")


def _report_md(output: Path) -> str | None:
    """The exporter's markdown report, if it wrote a readable one."""
    try:
        return read_regular(output / "report.md", REPORT_MAX_BYTES).decode("utf-8", "replace")
    except UnsafeOutputError:
        return None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"
