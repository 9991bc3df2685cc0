"""Typed errors of the bot: one root per area, subclasses that also inherit the matching built-in.

Job errors carry how the job ends: :class:`TransientJobError` is retried with backoff,
:class:`PermanentJobError` fails the job at once, :class:`SkipJob` records a reason and stops.
Those whose ``author_facing`` is true are about the checkpoint, worded for its author: the bot
opens a discussion on the repo with the reason and ``details`` (the exporter's report).

Errors that reach ``export-bot`` end the command with their ``exit_code`` (caught once, in
:func:`bot.cli.main`; ``--debug`` adds the traceback):

==== ==================================================================
code meaning
==== ==================================================================
0    done
2    bad command line or settings (:class:`ConfigError`)
3    the job store: unreachable, no such job, a job in the wrong state
4    the sandbox cannot run here (:class:`SandboxError`)
6    the Hub refused or could not be reached (``webhook create``)
70   internal error (a bug: rerun with ``--debug`` and report it)
==== ==================================================================
"""

from __future__ import annotations

from typing import ClassVar


class BotError(Exception):
    """Root of every error the bot raises on purpose."""

    exit_code: int = 70


class ConfigError(BotError, ValueError):
    """Bot settings or a repo's ``.export-bot.yaml`` are invalid."""

    exit_code = 2


class StoreError(BotError, RuntimeError):
    """The job store cannot do what was asked."""

    exit_code = 3


class JobNotFoundError(StoreError, KeyError):
    """No job with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class JobStateError(StoreError, ValueError):
    """The job is not in a state that allows this (requeue of a running job)."""


class SandboxError(BotError, RuntimeError):
    """The sandbox could not run the command (not: the command failed)."""

    exit_code = 4


class SandboxUnavailableError(SandboxError, FileNotFoundError):
    """The sandbox backend is missing on this machine (no bwrap, no docker)."""


class JobError(BotError):
    """A job step failed; ``reason`` is what the job records, ``details`` (markdown) what else the author sees."""

    exit_code = 6
    #: The checkpoint's author can act on it: tell them in a discussion on the repo.
    author_facing: ClassVar[bool] = False

    def __init__(self, reason: str, *, details: str | None = None) -> None:
        super().__init__(reason)
        self.details = details

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

    author_facing = True


class RepoConfigError(PermanentJobError, ValueError):
    """The repo's ``.export-bot.yaml`` is invalid; ``notify`` is its ``notify_failures`` as far as readable."""

    author_facing = True

    def __init__(self, reason: str, *, notify: bool = True) -> None:
        super().__init__(reason)
        self.notify = notify


class ExportJobError(PermanentJobError, RuntimeError):
    """The exporter failed inside the sandbox, timed out or was killed."""

    author_facing = True


class ExportMismatchError(ExportJobError, AssertionError):
    """The export ran but did not match eager PyTorch: no PR with files."""


class UnsafeOutputError(PermanentJobError, PermissionError):
    """The sandbox output is not what the report promises (symlink, wrong hash, extra size).

    Not ``author_facing``: it means hostile code ran, and the bot does not explain its checks to it.
    """


class SkipJob(JobError):
    """Nothing to do for this commit (no config.json, unsupported, disabled): recorded as skipped."""


class UnsupportedCheckpointError(SkipJob):
    """The exporter refuses this checkpoint (its own code, an unknown architecture): skipped, the author told why."""

    author_facing = True
