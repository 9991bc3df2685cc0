"""Redis mode: the job store on Redis plus Dramatiq, the task engine that carries one message per job.

The web process writes the job (:class:`bot.jobs.redis_store.RedisJobStore`, one Lua script) and then
sends a Dramatiq message naming it, before answering 202. ``export-bot worker`` runs a Dramatiq
worker on that queue; for each message it claims the job with a lease and runs the same
:class:`bot.jobs.worker.Worker` code (and so :meth:`bot.pipeline.flow.JobPipeline.run`) as the SQLite mode.

Delivery is at least once: Dramatiq acks a message only after the actor returns and gives a dead
worker's unacked messages to others; the job's lease makes a duplicate message a no-op; a sweeper
in every worker process re-sends a message for queued jobs nobody claimed ``redispatch_seconds``
after they were due (a web process that died between the write and the send) and for running jobs
whose lease ran out (a worker that died).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Retries

from bot.errors import ConfigError, StoreError
from bot.jobs.model import JobStore, RetryPolicy
from bot.jobs.redis_store import RedisJobStore
from bot.jobs.worker import CANCEL_SECONDS, Worker, WorkerPool
from bot.settings import BotSettings

log = logging.getLogger(__name__)

QUEUE = "export-jobs"
ACTOR = "export_bot_run_job"


def parse_redis_url(url: str) -> tuple[str, str]:
    """``redis://host:port/db?prefix=P`` → (URL for redis-py, key prefix; default ``export-bot``)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    prefix = query.pop("prefix", "export-bot")
    if not prefix or any(c in prefix for c in " *?[]"):
        raise ConfigError(f"Redis key prefix {prefix!r} is not usable")
    return urlunsplit(parts._replace(query=urlencode(query))), prefix


def make_broker(client: redis.Redis, prefix: str) -> RedisBroker:
    """Dramatiq's Redis broker under ``<prefix>:dramatiq``; retries only for errors outside the job."""
    retries = Retries(max_retries=10, min_backoff=1000, max_backoff=60_000)
    broker = RedisBroker(client=client, namespace=f"{prefix}:dramatiq", middleware=[retries])
    broker.declare_queue(QUEUE)
    return broker


class DramatiqDispatch:
    """Sends the message that names a job; ``delay`` seconds go to Dramatiq's delay queue."""

    def __init__(self, broker: RedisBroker) -> None:
        self.broker = broker

    def __call__(self, job_id: str, delay: float) -> None:
        message: dramatiq.Message[None] = dramatiq.Message(
            queue_name=QUEUE, actor_name=ACTOR, args=(job_id,), kwargs={}, options={}
        )
        try:
            self.broker.enqueue(message, delay=int(delay * 1000) if delay > 0 else None)
        except redis.RedisError as e:
            raise StoreError(f"could not queue job {job_id}: {e}") from e


def open_redis_store(url: str, policy: RetryPolicy) -> RedisJobStore:
    """The Redis store wired to Dramatiq; fails at once with a clear message when Redis does not answer."""
    clean, prefix = parse_redis_url(url)
    client = redis.Redis.from_url(clean, socket_connect_timeout=5, socket_timeout=30, health_check_interval=30)
    try:
        client.ping()
    except redis.RedisError as e:
        raise StoreError(f"cannot reach Redis at {clean}: {e}") from e
    return RedisJobStore(client, prefix=prefix, policy=policy, dispatch=DramatiqDispatch(make_broker(client, prefix)))


def start_engine_workers(
    settings: BotSettings, store: JobStore, make_worker: Callable[[JobStore], Worker], count: int
) -> WorkerPool:
    """A Dramatiq worker with ``count`` threads, plus the sweeper; :meth:`WorkerPool.stop` stops both."""
    if not isinstance(store, RedisJobStore) or not isinstance(store.dispatch, DramatiqDispatch):
        raise ConfigError("engine workers need the Redis store opened by open_redis_store")
    broker = store.dispatch.broker
    local = threading.local()
    pool = WorkerPool(threading.Event(), [])

    def run_job(job_id: str) -> None:
        if not hasattr(local, "worker"):
            local.worker = make_worker(store)  # one lease owner name per thread
            pool.workers.append(local.worker)
        local.worker.run_job_id(job_id)

    if ACTOR not in broker.get_declared_actors():
        dramatiq.actor(actor_name=ACTOR, queue_name=QUEUE, broker=broker)(run_job)
    thread = threading.Thread(
        target=_supervise,
        args=(settings, store, broker, count, pool.stop_event),
        name="dramatiq-supervisor",
        daemon=True,
    )
    thread.start()
    pool.threads.append(thread)
    return pool


def _supervise(
    settings: BotSettings, store: RedisJobStore, broker: RedisBroker, count: int, stop: threading.Event
) -> None:
    """Run the Dramatiq worker and sweep until ``stop``; then stop taking messages.

    Dramatiq's own stop lets the running messages end (the pool hands back a job that outlives the
    grace period, which ends its message) and puts prefetched messages back on the queue.
    """
    worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=count)
    worker.queue_prefetch = count  # hold no more messages than threads: other hosts get the rest
    worker.start()
    interval = min(settings.redispatch_seconds, settings.lease_seconds) / 2
    try:
        while not stop.wait(interval):
            sweep(store, settings.redispatch_seconds)
    finally:
        worker.stop(timeout=int((settings.stop_grace_seconds + 2 * CANCEL_SECONDS) * 1000))


def sweep(store: RedisJobStore, grace_seconds: float) -> list[str]:
    """Re-send the message of jobs nobody took in time; duplicates are harmless (the lease decides)."""
    try:
        ids = store.sweep(grace_seconds)
        for job_id in ids:
            log.warning("job %s: no worker took it in time, sending its message again", job_id)
            assert store.dispatch is not None
            store.dispatch(job_id, 0.0)
    except StoreError:
        log.exception("sweeper: Redis error")
        return []
    return ids
