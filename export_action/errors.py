"""Typed errors of the GitHub Action, each with the exit code the step ends with.

The CLI entry point catches :class:`ActionError` once, prints ``str(error)`` as one line (a workflow
``::error::`` annotation on a runner) and exits with ``error.exit_code``.

==== ======================================================================
code meaning
==== ======================================================================
0    exported and validated (PR opened, updated or unchanged when ``open-pr``)
1    validation failed (report and job summary written, no PR);
     0 instead when ``fail-on-validation-error`` is false
2    bad action input (malformed value, missing token or repository, output folder overlapping the
     checkpoint, unsupported runner)
3-7  the exporter's own error, passed through (see ``exporter/errors.py``):
     3 checkpoint, 4 unsupported, 5 export failed, 6 Hub, 7 spec
10   an exported file is above Git LFS's 2 GiB object limit (checked before any upload)
11   GitHub API or Git LFS error (authentication, permissions, missing repo or commit, quota)
12   the output folder holds files the action did not write (nothing exported or pushed)
13   the export branch holds commits the action did not make, or is the head of a pull request
     into another base branch (nothing pushed)
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


class ValidationGateError(ActionError, AssertionError):
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
    """An exported file is above what Git LFS on GitHub stores."""

    exit_code = 10

    def __init__(self, path: str, size: int, limit: int) -> None:
        self.path, self.size, self.limit = path, size, limit
        super().__init__(
            f"{path} is {human_size(size)}, above GitHub's {human_size(limit)} Git LFS object limit; "
            "nothing was uploaded. Publish the export to a Hugging Face Hub repo instead (the export bot)"
        )


class GitHubError(PublishError, ConnectionError):
    """The GitHub API or its Git LFS server refused or failed a request."""

    exit_code = 11


class OutputFolderNotOwnedError(PublishError, FileExistsError):
    """The output folder holds files that no earlier run of the action wrote."""

    exit_code = 12

    def __init__(self, where: str, folder: str, foreign: list[str]) -> None:
        self.folder, self.foreign = folder, foreign
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        super().__init__(
            f"output folder {folder} ({where}) holds files the action did not write ({shown}); nothing was "
            "pushed. The action only replaces files listed in the folder's .hub-exporter-manifest.json: "
            "set output-dir to a folder of its own (the default is exports/<model slug>)"
        )


class BranchConflictError(PublishError):
    """The export branch holds someone else's work, or serves another base branch."""

    exit_code = 13


def human_size(size: int) -> str:
    """Binary units, labelled as such: ``1.5 MiB``."""
    if size >= 1 << 30:
        return f"{size / (1 << 30):.1f} GiB"
    if size >= 1 << 20:
        return f"{size / (1 << 20):.1f} MiB"
    return f"{size / 1024:.1f} KiB" if size >= 1024 else f"{size} bytes"
