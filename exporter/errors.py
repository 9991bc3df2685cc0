"""Typed errors of the exporter, each with the process exit code the CLI ends with.

Every error inherits :class:`ExporterError` and, where one fits, the matching built-in, so callers can
catch either. The CLI catches :class:`ExporterError` once, prints ``str(error)`` on one line and exits
with ``error.exit_code``.

Exit codes (also documented in the README):

==== ===================================================================
code meaning
==== ===================================================================
0    exported and every format validated on every shape
1    validation failed: the report is written, status ``failed``
2    bad command line (unknown option, malformed value)
3    checkpoint problem: not found, no ``config.json``, missing/corrupt weights,
     the model's own forward fails on sample inputs
4    unsupported: unknown model type, task not available for the architecture,
     remote code refused
5    export failed inside torch.onnx / torch.jit / onnx.checker
6    Hub problem: network, authentication, repo or revision not found
7    bad spec file (``--spec``)
70   internal error (a bug: please report it with ``--debug`` output)
==== ===================================================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from exporter.report import Report


def first_line(error: BaseException | str, limit: int = 300) -> str:
    """The first non-blank line of an error message, at most ``limit`` characters (the type when empty)."""
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if lines:
        return lines[0][:limit]
    return type(error).__name__ if isinstance(error, BaseException) else ""


class ExporterError(Exception):
    """Root of every error the exporter raises on purpose."""

    exit_code: int = 70


class UsageError(ExporterError, ValueError):
    """A request that cannot be satisfied as written (bad option value)."""

    exit_code = 2


class CheckpointError(ExporterError):
    """The checkpoint cannot be read."""

    exit_code = 3


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """The local folder does not exist."""


class MissingConfigError(CheckpointError, FileNotFoundError):
    """The checkpoint has no ``config.json``."""


class InvalidConfigError(CheckpointError, ValueError):
    """``config.json`` is not valid JSON or not a transformers config."""


class WeightsError(CheckpointError):
    """Weights are missing, unreadable, corrupt or do not fit the architecture."""


class ForwardFailedError(CheckpointError, RuntimeError):
    """The model's own forward fails on sample inputs (e.g. a config whose sizes do not fit together)."""


class UnsupportedError(ExporterError):
    """The exporter knows no way to export this."""

    exit_code = 4


class UnsupportedModelTypeError(UnsupportedError, KeyError):
    """No spec for this ``model_type``."""

    def __str__(self) -> str:  # KeyError quotes its message otherwise
        return str(self.args[0]) if self.args else ""


class UnsupportedTaskError(UnsupportedError, ValueError):
    """The architecture has no head for this task, or the task name is unknown."""


class NotExportableError(UnsupportedError, ValueError):
    """The architecture (or this task of it) is known, but cannot be exported on the installed torch/transformers."""


class RemoteCodeRefusedError(UnsupportedError, PermissionError):
    """The checkpoint needs ``trust_remote_code`` and it was not given."""


class ExportFailedError(ExporterError, RuntimeError):
    """torch.onnx, torch.jit or the ONNX checker failed."""

    exit_code = 5


class HubError(ExporterError, ConnectionError):
    """Talking to the Hub failed: network, authentication, missing repo or revision."""

    exit_code = 6


class SpecError(ExporterError, ValueError):
    """A user spec (``--spec path.py:Name``) cannot be loaded or is malformed."""

    exit_code = 7


class ReportError(ExporterError, ValueError):
    """A ``report.json`` that cannot be read back: not JSON, another schema, or inconsistent."""


class ValidationFailedError(ExporterError, AssertionError):
    """At least one output of one format on one shape is outside tolerance.

    Carries the whole report, so callers see every difference, not only the first.
    """

    exit_code = 1

    def __init__(self, report: Report) -> None:
        self.report = report
        super().__init__(f"validation failed for {len(report.failures())} check(s): {report.failure_summary()}")
