"""No isolation at all: explicit opt-in for development (and the bot's own logic tests); logs a warning."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from bot.sandbox.base import (
    SandboxRequest,
    SandboxResult,
    exporter_source_dir,
    prlimit_prefix,
    run_command,
    sandbox_env,
    substitute,
)

log = logging.getLogger(__name__)


@dataclass
class ProcessRunner:
    """No isolation: a child process with an empty environment and limits. Development only."""

    python: str = sys.executable
    name: str = "process"

    def command(self, request: SandboxRequest) -> list[str]:
        cache = str(request.cache_dir.resolve()) if request.cache_dir is not None else "/nonexistent"
        args = substitute(request.args, str(request.snapshot_dir.resolve()), str(request.output_dir.resolve()), cache)
        return [*prlimit_prefix(request), self.python, *args]

    def env(self, request: SandboxRequest) -> dict[str, str]:
        """Still no token: an empty environment with a scratch HOME next to the output folder."""
        source = exporter_source_dir()
        env = sandbox_env(request.threads, str(source.parent) if source is not None else None)
        env["HOME"] = env["TMPDIR"] = str(request.output_dir.resolve().parent / "home")
        env["HF_HOME"] = env["HOME"] + "/hf"
        return env

    def run(self, request: SandboxRequest) -> SandboxResult:
        log.warning("sandbox 'process' gives NO isolation: the checkpoint's code runs as the bot's user")
        env = self.env(request)
        Path(env["HOME"]).mkdir(exist_ok=True)
        return run_command(self.command(request), request.timeout, env=env)
