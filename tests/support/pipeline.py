"""The job pipeline in-process with a real sandbox whose runs are counted."""

from __future__ import annotations

from collections.abc import Callable

from bot.hub import HubClient
from bot.jobs.model import JobStore
from bot.jobs.worker import Worker
from bot.pipeline.flow import JobPipeline
from bot.sandbox import ProcessRunner, SandboxRequest, SandboxResult
from bot.settings import BotSettings


class CountingRunner:
    """The real ``process`` sandbox, counting its runs; ``after_run`` is called when one ends."""

    name = "counting"

    def __init__(self, after_run: Callable[[], object] | None = None) -> None:
        self.inner = ProcessRunner()
        self.runs = 0
        self.after_run = after_run

    def command(self, request: SandboxRequest) -> list[str]:
        return self.inner.command(request)

    def run(self, request: SandboxRequest) -> SandboxResult:
        self.runs += 1
        result = self.inner.run(request)
        if self.after_run is not None:
            self.after_run()
        return result


def worker_for(settings: BotSettings, store: JobStore, runner: CountingRunner) -> Worker:
    hub = HubClient(endpoint=settings.hf_endpoint, token=settings.token(), bot_user=settings.bot_user)
    return Worker(store, JobPipeline(settings, hub, runner).run, lease_seconds=60)
