"""Typed errors of the bot: one root per area, subclasses that also inherit the matching built-in.

Job errors carry how the job ends: :class:`TransientJobError` is retried with backoff,
:class:`PermanentJobError` fails the job at once, :class:`SkipJob` records a reason and stops.
"""

from __future__ import annotations


class BotError(Exception):
    """Root of every error the bot raises on purpose."""


class ConfigError(BotError, ValueError):
    """Bot settings or a repo's ``.export-bot.yaml`` are invalid."""


class StoreError(BotError, RuntimeError):
    """The job store cannot do what was asked."""


class JobNotFoundError(StoreError, KeyError):
    """No job with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SandboxError(BotError, RuntimeError):
    """The sandbox could not run the command (not: the command failed)."""


class SandboxUnavailableError(SandboxError, FileNotFoundError):
    """The sandbox backend is missing on this machine (no bwrap, no docker)."""


class JobError(BotError):
    """A job step failed; ``reason`` is what the job records."""

    @property
    def reason(self) -> str:
        return str(self)


class TransientJobError(JobError, ConnectionError):
    """Worth retrying later: network trouble, Hub 5xx or timeouts."""


class PermanentJobError(JobError):
    """Retrying gives the same answer: the job fails with the reason."""


class HubRefusedError(PermanentJobError, PermissionError):
    """The Hub answered 401/403/404 (or another 4xx) for this repo."""


class CheckpointRejectedError(PermanentJobError, ValueError):
    """The checkpoint is too big, broken or unsafe to handle."""


class ExportJobError(PermanentJobError, RuntimeError):
    """The exporter failed inside the sandbox, timed out or was killed."""


class ExportMismatchError(ExportJobError, AssertionError):
    """The export ran but did not match eager PyTorch: no PR with files."""


class UnsafeOutputError(PermanentJobError, PermissionError):
    """The sandbox output is not what the report promises (symlink, wrong hash, extra size)."""


class SkipJob(JobError):
    """Nothing to do for this commit (no config.json, unsupported, disabled): recorded as skipped."""
