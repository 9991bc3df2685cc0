"""The Redis job store on a real Redis: the SQLite store's semantics, plus dispatch and the sweeper."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import redis

from bot.errors import JobNotFoundError
from bot.jobs.backends import open_store
from bot.jobs.engine import parse_redis_url
from bot.jobs.model import JobSpec, RetryPolicy
from bot.jobs.redis_store import RedisJobStore
from tests.support.bot_fixtures import Clock

pytestmark = pytest.mark.redis


@pytest.fixture
def sent() -> list[tuple[str, float]]:
    return []


@pytest.fixture
def store(redis_url: str, clock: Clock, sent: list[tuple[str, float]]) -> Iterator[RedisJobStore]:
    url, prefix = parse_redis_url(redis_url)
    store = RedisJobStore(
        redis.Redis.from_url(url),
        prefix=prefix,
        policy=RetryPolicy(max_attempts=3, base_seconds=10),
        dispatch=lambda job_id, delay: sent.append((job_id, delay)),
        clock=clock,
    )
    yield store
    store.close()


def spec(sha: str = "a" * 40, settings: str = "s1") -> JobSpec:
    return JobSpec(repo="alice/tiny", sha=sha, settings=settings)


def test_dedup_and_one_message_per_new_job(store: RedisJobStore, sent: list[tuple[str, float]]) -> None:
    first, created = store.enqueue(spec())
    again, created_again = store.enqueue(spec())
    assert created and not created_again and again.id == first.id
    assert store.enqueue(spec(settings="s2"))[1]
    assert store.counts()["queued"] == 2 and [s[0] for s in sent].count(first.id) == 1


def test_claim_lease_reclaim_and_fencing(store: RedisJobStore, clock: Clock) -> None:
    job, _ = store.enqueue(spec())
    claimed = store.claim_job(job.id, "w1", 30)
    assert claimed is not None and (claimed.status, claimed.attempts, claimed.lease_owner) == ("running", 1, "w1")
    assert store.claim_job(job.id, "w2", 30) is None  # a duplicate message: no second run
    clock.now += 10
    assert store.heartbeat(job.id, "w1", 30)
    clock.now += 31
    reclaimed = store.claim("w2", 30)
    assert reclaimed is not None and reclaimed.lease_owner == "w2" and reclaimed.attempts == 2
    assert not store.heartbeat(job.id, "w1", 30) and not store.finish(job.id, "w1", "failed", "late")
    assert store.finish(job.id, "w2", "succeeded", "opened #1", "http://hub/pr/1")
    done = store.get(job.id)
    assert (done.status, done.reason, done.pr_url, done.lease_owner) == (
        "succeeded",
        "opened #1",
        "http://hub/pr/1",
        None,
    )
    assert store.claim_job(job.id, "w3", 30) is None and store.counts()["succeeded"] == 1


def test_backoff_sends_a_delayed_message_then_gives_up(
    store: RedisJobStore, clock: Clock, sent: list[tuple[str, float]]
) -> None:
    job, _ = store.enqueue(spec())
    for attempt, delay in ((1, 10), (2, 20)):
        claimed = store.claim_job(job.id, "w", 60)
        assert claimed is not None and claimed.attempts == attempt
        assert store.retry_later(job.id, "w", "Hub answered 503", transient=False)
        assert sent[-1] == (job.id, delay) and store.get(job.id).reason == "retrying: Hub answered 503"
        assert store.claim_job(job.id, "w", 60) is None  # early message: not due yet
        clock.now += delay
    assert store.claim_job(job.id, "w", 60) is not None
    assert store.retry_later(job.id, "w", "Hub answered 503", transient=False)
    failed = store.get(job.id)
    assert failed.status == "failed" and failed.reason == "gave up after 3 attempts: Hub answered 503"


def test_lost_leases_give_up(store: RedisJobStore, clock: Clock) -> None:
    job, _ = store.enqueue(spec())
    for _ in range(3):
        assert store.claim_job(job.id, "w", 5) is not None
        clock.now += 6
    assert store.claim_job(job.id, "w", 5) is None
    assert "gave up after 3 attempts (worker lost)" in (store.get(job.id).reason or "")


def test_sweeper_finds_lost_messages_and_lapsed_leases(store: RedisJobStore, clock: Clock) -> None:
    lost = RedisJobStore(store.client, prefix=store.prefix, clock=clock)  # no dispatch: a web crash
    orphan, _ = lost.enqueue(spec(sha="b" * 40))
    running, _ = store.enqueue(spec(sha="c" * 40))
    store.claim_job(running.id, "dead", 5)
    assert store.sweep(60) == []
    clock.now += 61
    assert sorted(store.sweep(60)) == sorted([orphan.id, running.id])
    assert store.sweep(60) == []  # each is sent again once per grace period, not on every sweep


def test_requeue_and_listing(store: RedisJobStore, sent: list[tuple[str, float]]) -> None:
    job, _ = store.enqueue(spec())
    store.claim_job(job.id, "w", 30)
    with pytest.raises(ValueError, match="running"):
        store.requeue(job.id)
    store.finish(job.id, "w", "failed", "validation failed")
    assert store.requeue(job.id).attempts == 0 and sent[-1][0] == job.id
    with pytest.raises(JobNotFoundError):
        store.requeue("nope")
    store.record_bot_commit("D" * 40)
    assert store.is_bot_commit("d" * 40) and not store.is_bot_commit("e" * 40)
    assert [j.id for j in store.recent(status="queued")] == [job.id]


def test_concurrent_claims_take_each_job_once(redis_url: str) -> None:
    stores = [open_store(redis_url) for _ in range(4)]
    jobs = [stores[0].enqueue(spec(sha=f"{i:040x}"))[0].id for i in range(40)]
    taken: list[str] = []
    lock = threading.Lock()

    def race(s: RedisJobStore, name: str) -> None:
        for job_id in jobs:
            if s.claim_job(job_id, name, 60) is not None:
                with lock:
                    taken.append(job_id)

    threads = [threading.Thread(target=race, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(jobs)
