"""Run the exporter CLI in a subprocess that holds no GitHub token, and read its report."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from export_action.config import ActionConfig
from export_action.errors import ExportError
from exporter.errors import ReportError
from exporter.report import Report

#: Variables that never reach the exporter: it loads untrusted checkpoints.
_SECRET_VARIABLES = frozenset(
    {
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "ACTIONS_RUNTIME_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "ACTIONS_ID_TOKEN_REQUEST_URL",
    }
)


@dataclass(frozen=True, kw_only=True)
class ExportResult:
    """What the exporter left in the output folder."""

    status: Literal["passed", "failed"]
    output_dir: Path
    report_json: Path
    report_md: Path
    files: tuple[str, ...]  # exported files, relative to output_dir, as listed in the report
    failures: tuple[str, ...]
    revision: str | None = None  # the Hub commit exported (Hub ids), as the report names it


def exporter_command(config: ActionConfig) -> list[str]:
    """``python -I -m exporter export …`` for this configuration.

    ``-I`` (isolated mode, which implies ``-P``): the workspace, the exporter's working directory, is
    never on ``sys.path``, so a repository's own ``exporter/`` or ``platform.py`` cannot replace the
    action's code; ``PYTHON*`` variables of the job are ignored too.
    """
    command = [sys.executable, "-I", "-m", "exporter", "export", "--model", config.model]
    optional: dict[str, object | None] = {
        "--revision": config.revision,
        "--task": config.task,
        "--opset": config.opset,
        "--atol": config.atol,
        "--rtol": config.rtol,
    }
    for option, value in optional.items():
        if value is not None:
            command += [option, str(value)]
    if "onnx" in config.formats and config.dtypes != ("fp32",):
        command += ["--dtypes", ",".join(config.dtypes)]
    return [*command, "--formats", ",".join(config.formats), str(config.output_dir)]


def exporter_env(config: ActionConfig, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent's environment minus every action input and token, plus ``HF_TOKEN`` when given."""
    environ = os.environ if environ is None else environ
    env = {
        key: value for key, value in environ.items() if not key.startswith("INPUT_") and key not in _SECRET_VARIABLES
    }
    if config.hf_token:
        env["HF_TOKEN"] = config.hf_token
    return env


def run_exporter(config: ActionConfig) -> ExportResult:
    """Run the export; exit 0 and 1 leave a report, anything else raises :class:`ExportError`."""
    command = exporter_command(config)
    print("$ python " + shlex.join(command[1:]), flush=True)
    tail: deque[str] = deque(maxlen=20)
    with subprocess.Popen(
        command,
        cwd=config.workspace,
        env=exporter_env(config),
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            sys.stderr.write(line)
            if line.strip():
                tail.append(line.strip())
    code = process.returncode
    last = tail[-1] if tail else "no error message"
    if code < 0:
        raise ExportError(f"the exporter was killed by signal {-code} (out of memory?): {last}", code)
    if code not in (0, 1):
        raise ExportError(f"the exporter failed with exit code {code}: {last}", code)
    return read_result(config.output_dir, code)


def read_result(output_dir: Path, exit_code: int = 0) -> ExportResult:
    """Read ``report.json`` (strictly, as the exporter's own model); its status must agree with the exit code."""
    report_json, report_md = output_dir / "report.json", output_dir / "report.md"
    try:
        report = Report.read(output_dir)
        report_md.stat()
    except (OSError, ReportError) as error:
        raise ExportError(f"the exporter exited {exit_code} but left no readable report: {error}", 70) from error
    if (report.status == "passed") != (exit_code == 0):
        raise ExportError(f"the exporter exited {exit_code} with report status {report.status!r}", 70)
    return ExportResult(
        status=report.status,
        output_dir=output_dir,
        report_json=report_json,
        report_md=report_md,
        files=tuple(entry.path for entry in report.files),
        failures=tuple(report.failures()) if report.status == "failed" else (),
        revision=report.revision,
    )
