"""Wiring from settings: the job store, the workers, and the job logic they run.

The one place that knows every part (store backend, Hub client, sandbox, pipeline); the CLI and
the web process call it, the parts themselves never import each other across areas.
"""

from __future__ import annotations

from bot.hub import HubClient, set_hub_timeout
from bot.jobs.backends import backend_for, open_store
from bot.jobs.model import JobStore, RetryPolicy
from bot.jobs.worker import Worker, WorkerPool
from bot.pipeline.flow import JobPipeline
from bot.sandbox import SandboxRunner, make_runner, preflight
from bot.settings import BotSettings


def retry_policy(settings: BotSettings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.max_attempts,
        base_seconds=settings.backoff_seconds,
        max_seconds=settings.backoff_max_seconds,
        window_seconds=settings.retry_window_seconds,
    )


def open_settings_store(settings: BotSettings) -> JobStore:
    """The store the settings name, with their retry policy."""
    return open_store(settings.store_url, retry_policy(settings))


def sandbox_runner(settings: BotSettings) -> SandboxRunner:
    """The settings' sandbox backend; :class:`~bot.errors.SandboxUnavailableError` if its tools are missing."""
    return make_runner(
        settings.sandbox, image=settings.container_image, container_cli=settings.container_cli, check=True
    )


def preflight_sandbox(settings: BotSettings) -> None:
    """Fail at start, in one line (exit 4), when the chosen sandbox cannot run a command here."""
    preflight(sandbox_runner(settings))


def build_worker(settings: BotSettings, store: JobStore | None = None) -> Worker:
    """A worker wired from settings: store, Hub client, sandbox runner, pipeline."""
    store = store or open_settings_store(settings)
    set_hub_timeout(settings.hub_timeout)
    hub = HubClient(endpoint=settings.hf_endpoint, token=settings.token(), bot_user=settings.bot_user)
    pipeline = JobPipeline(settings, hub, sandbox_runner(settings))
    return Worker(
        store,
        pipeline.run,
        lease_seconds=settings.lease_seconds,
        poll_seconds=settings.poll_seconds,
        on_cancel=pipeline.cancel,
    )


def start_workers(settings: BotSettings, store: JobStore, count: int) -> WorkerPool:
    """``count`` workers in this process, as the store's backend runs them; ``pool.stop(grace)`` stops them."""
    backend = backend_for(settings.store_url)
    return backend.start_workers(settings, store, lambda s: build_worker(settings, s), count)
