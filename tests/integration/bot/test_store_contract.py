"""What both job stores promise, run on each (SQLite file; real Redis): the retry window, hand-back, privacy.

A fake clock drives backoff and windows; no test waits.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.jobs.engine import parse_redis_url
from bot.jobs.model import JobSpec, JobStore, RetryPolicy
from bot.jobs.redis_store import RedisJobStore
from bot.jobs.sqlite_store import SQLiteJobStore
from bot.jobs.worker import HANDED_BACK
from tests.support.bot_fixtures import Clock, open_test_store

POLICY = RetryPolicy(max_attempts=3, base_seconds=10, max_seconds=40, window_seconds=300)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[JobStore]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    store: JobStore = open_test_store(request.param, tmp_path, clock, POLICY, redis_url)
    yield store
    store.close()


def spec(sha: str = "a" * 40, private: bool = False) -> JobSpec:
    return JobSpec(repo="alice/tiny", sha=sha, settings="s1", private=private)


def test_transient_errors_are_retried_for_the_window_not_a_count(store: JobStore, clock: Clock) -> None:
    """An outage longer than max_attempts × backoff: retried until the window (300 s) has passed."""
    job, _ = store.enqueue(spec())
    first_failure = clock.now
    delays = []
    while (claimed := store.claim("w", 60)) is not None:
        assert store.retry_later(claimed.id, "w", "Hub answered 503", transient=True)
        after = store.get(job.id)
        if after.status != "queued":
            break
        delays.append(after.not_before - clock.now)
        clock.now = after.not_before
    failed = store.get(job.id)
    assert delays == [10, 20, 40, 40, 40, 40, 40, 40, 40]  # doubling, capped at 40 s
    assert clock.now - first_failure >= 300 and failed.status == "failed" and failed.attempts == 10
    assert failed.reason == "gave up after 5 min of transient errors (10 attempts): Hub answered 503"
    assert failed.attempts > POLICY.max_attempts and failed.transient_failures == 10


def test_other_errors_and_lost_workers_are_bounded_apart_from_transient_ones(store: JobStore, clock: Clock) -> None:
    job, _ = store.enqueue(spec())
    for _ in range(4):  # four transient failures use up nothing of the three attempts
        claimed = store.claim("w", 60)
        assert claimed is not None and store.retry_later(claimed.id, "w", "timeout", transient=True)
        clock.now = store.get(job.id).not_before
    for _ in range(2):
        claimed = store.claim("w", 60)
        assert claimed is not None and store.retry_later(claimed.id, "w", "internal error: KeyError", transient=False)
        clock.now = store.get(job.id).not_before
    assert store.claim("dead", 5) is not None  # the third strike: its worker dies
    clock.now += 6
    assert store.claim("w", 60) is None
    failed = store.get(job.id)
    assert failed.status == "failed" and failed.reason == "gave up after 3 attempts (worker lost)"
    assert (failed.attempts, failed.transient_failures) == (7, 4)


def test_release_hands_the_job_back_without_counting_the_attempt(store: JobStore, clock: Clock) -> None:
    job, _ = store.enqueue(spec())
    claimed = store.claim("w1", 60)
    assert claimed is not None and claimed.attempts == 1
    assert not store.release(job.id, "someone-else", HANDED_BACK)  # fenced by the lease
    assert store.release(job.id, "w1", HANDED_BACK)
    back = store.get(job.id)
    assert (back.status, back.attempts, back.lease_owner, back.reason) == ("queued", 0, None, HANDED_BACK)
    assert not store.release(job.id, "w1", HANDED_BACK)  # not running any more
    again = store.claim("w2", 60)  # due at once
    assert again is not None and again.attempts == 1
    assert store.finish(job.id, "w2", "succeeded", "opened #1")


def test_requeue_starts_a_new_window(store: JobStore, clock: Clock) -> None:
    job, _ = store.enqueue(spec())
    claimed = store.claim("w", 60)
    assert claimed is not None and store.retry_later(job.id, "w", "Hub answered 502", transient=True)
    assert store.get(job.id).failing_since == clock.now
    clock.now += 301
    claimed = store.claim("w", 60)
    assert claimed is not None and store.retry_later(job.id, "w", "Hub answered 502", transient=True)
    assert store.get(job.id).status == "failed"
    again = store.requeue(job.id)
    assert (again.attempts, again.transient_failures, again.failing_since) == (0, 0, None)
    claimed = store.claim("w", 60)
    assert claimed is not None and store.retry_later(job.id, "w", "Hub answered 502", transient=True)
    assert store.get(job.id).status == "queued"


def test_private_is_recorded_and_sticky(store: JobStore) -> None:
    public, _ = store.enqueue(spec("1" * 40))
    private, _ = store.enqueue(spec("2" * 40, private=True))
    assert not store.get(public.id).private and store.get(private.id).private
    assert store.enqueue(spec("2" * 40, private=False))[0].private  # a later public delivery does not unmark it
    same, created = store.enqueue(spec("1" * 40, private=True))  # the repo was made private since
    assert not created and same.id == public.id and same.private and store.get(public.id).private


def test_sqlite_store_written_by_an_older_bot_gains_the_new_columns(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, repo TEXT NOT NULL, sha TEXT NOT NULL,"
            " settings TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, reason TEXT,"
            " pr_url TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL, started_at REAL, finished_at REAL,"
            " not_before REAL NOT NULL, lease_owner TEXT, lease_expires REAL)"
        )
        db.execute(
            "INSERT INTO jobs (id, key, repo, sha, settings, status, created_at, updated_at, not_before)"
            " VALUES ('j1', 'k1', 'alice/old', ?, 's', 'queued', 1, 1, 1)",
            ("b" * 40,),
        )
    store = SQLiteJobStore(path)
    old = store.get("j1")
    assert (old.repo, old.private, old.transient_failures, old.failing_since) == ("alice/old", False, 0, None)
    claimed = store.claim("w", 60)
    assert claimed is not None and store.retry_later("j1", "w", "Hub answered 503")
    assert store.get("j1").transient_failures == 1


@pytest.mark.redis
def test_redis_record_written_by_an_older_bot_reads_with_defaults(redis_url: str, clock: Clock) -> None:
    import json

    url, prefix = parse_redis_url(redis_url)
    client = redis.Redis.from_url(url)
    store = RedisJobStore(client, prefix=prefix, policy=POLICY, clock=clock)
    job, _ = store.enqueue(spec())
    record = json.loads(client.get(f"{prefix}:job:{job.id}") or b"{}")
    for name in ("private", "failing_since", "transient_failures"):
        del record[name]
    client.set(f"{prefix}:job:{job.id}", json.dumps(record))
    old = store.get(job.id)
    assert (old.private, old.failing_since, old.transient_failures) == (False, None, 0)
    claimed = store.claim("w", 60)
    assert claimed is not None and store.retry_later(job.id, "w", "Hub answered 503")
    assert store.get(job.id).transient_failures == 1 and store.get(job.id).status == "queued"
