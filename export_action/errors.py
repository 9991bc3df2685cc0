"""Typed errors of the GitHub Action, each with the exit code the step ends with.

The CLI entry point catches :class:`ActionError` once, prints ``str(error)`` as one line (a workflow
``::error::`` annotation on a runner) and exits with ``error.exit_code``.

==== ======================================================================
code meaning
==== ======================================================================
0    exported and validated (PR opened, updated or unchanged when ``open-pr``)
1    validation failed (report and job summary written, no PR);
     0 instead when ``fail-on-validation-error`` is false
2    bad action input (malformed value, missing token or repository)
3-7  the exporter's own error, passed through (see ``exporter/errors.py``):
     3 checkpoint, 4 unsupported, 5 export failed, 6 Hub, 7 spec
10   an exported file is above GitHub's 100 MiB file limit (checked before any upload)
11   GitHub API error (authentication, permissions, missing repo or commit)
70   internal error (a bug: rerun with ``RUNNER_DEBUG=1`` for the traceback)
==== ======================================================================
"""

from __future__ import annotations

from pathlib import Path

#: Exit codes of the exporter that the action passes through unchanged.
EXPORTER_EXIT_CODES = frozenset({2, 3, 4, 5, 6, 7, 70})


class ActionError(Exception):
    """Root of every error the action raises on purpose."""

    exit_code: int = 70


class InputError(ActionError, ValueError):
    """An action input or runner variable is missing or malformed."""

    exit_code = 2


class ValidationFailedError(ActionError, AssertionError):
    """The exporter wrote a report with status ``failed``."""

    exit_code = 1

    def __init__(self, report_path: Path, failures: list[str]) -> None:
        self.report_path = report_path
        self.failures = failures
        shown = "; ".join(failures[:3]) + (" …" if len(failures) > 3 else "")
        super().__init__(f"validation failed, no pull request opened ({report_path}): {shown}")


class ExportError(ActionError, RuntimeError):
    """The exporter ended with an error; its exit code is passed through when it is a known one."""

    def __init__(self, message: str, exporter_exit_code: int) -> None:
        super().__init__(message)
        self.exporter_exit_code = exporter_exit_code
        self.exit_code = exporter_exit_code if exporter_exit_code in EXPORTER_EXIT_CODES else 70


class PublishError(ActionError):
    """Opening or updating the pull request failed."""

    exit_code = 11


class FileTooLargeError(PublishError, ValueError):
    """An exported file cannot be committed through the GitHub API."""

    exit_code = 10

    def __init__(self, path: str, size: int, limit: int) -> None:
        self.path, self.size, self.limit = path, size, limit
        super().__init__(
            f"{path} is {_human(size)}, above GitHub's {_human(limit)} file limit; "
            "nothing was uploaded. "
            "Publish the export to a Hugging Face Hub repo instead (the export bot), or set open-pr: false "
            "and commit it yourself with Git LFS"
        )


class GitHubError(PublishError, ConnectionError):
    """The GitHub API refused or failed a request."""

    exit_code = 11


def _human(size: int) -> str:
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MiB"
    return f"{size / 1024:.1f} KiB" if size >= 1024 else f"{size} bytes"
