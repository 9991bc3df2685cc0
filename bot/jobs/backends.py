"""Job store backends, chosen by the store URL's scheme: an explicit dict, each with two entry points.

- ``open_store(url, policy)``: the durable store the web process writes jobs to;
- ``start_workers(settings, store, make_worker, count)``: run ``count`` workers over that store in
  this process (threads polling SQLite, or a Dramatiq worker consuming the Redis queue).

The job logic the workers run is the same in both (:class:`bot.jobs.worker.Worker` around the
pipeline); only delivery differs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.errors import ConfigError
from bot.jobs.model import JobStore, RetryPolicy
from bot.jobs.sqlite_store import open_sqlite_store, start_polling_workers
from bot.jobs.worker import Worker, WorkerPool
from bot.settings import BotSettings

MakeWorker = Callable[[JobStore], Worker]


@dataclass(frozen=True)
class Backend:
    """How to open a store and start workers for one URL scheme."""

    open_store: Callable[[str, RetryPolicy], JobStore]
    start_workers: Callable[[BotSettings, JobStore, MakeWorker, int], WorkerPool]


def _open_redis(url: str, policy: RetryPolicy) -> JobStore:
    from bot.jobs.engine import open_redis_store  # redis and dramatiq only when configured

    return open_redis_store(url, policy)


def _start_engine(settings: BotSettings, store: JobStore, make_worker: MakeWorker, count: int) -> WorkerPool:
    from bot.jobs.engine import start_engine_workers

    return start_engine_workers(settings, store, make_worker, count)


def _start_polling(_settings: BotSettings, store: JobStore, make_worker: MakeWorker, count: int) -> WorkerPool:
    return start_polling_workers(store, make_worker, count)


_REDIS = Backend(open_store=_open_redis, start_workers=_start_engine)
BACKENDS: dict[str, Backend] = {
    "sqlite": Backend(open_store=open_sqlite_store, start_workers=_start_polling),
    "redis": _REDIS,
    "rediss": _REDIS,  # Redis over TLS
}


def backend_for(url: str) -> Backend:
    """The backend named by the URL scheme (``sqlite:///path``, ``redis://host:port/db?prefix=P``)."""
    scheme = url.split(":", 1)[0]
    if scheme not in BACKENDS:
        raise ConfigError(f"store URL scheme {scheme!r} not supported (known: {', '.join(BACKENDS)})")
    return BACKENDS[scheme]


def open_store(url: str, policy: RetryPolicy | None = None) -> JobStore:
    """Open the store the URL names."""
    return backend_for(url).open_store(url, policy or RetryPolicy())
