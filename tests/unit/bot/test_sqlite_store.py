"""The SQLite job store: dedup, claim with lease, reclaim, retry with backoff, durability."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from bot.errors import ConfigError, JobNotFoundError
from bot.jobs.backends import open_store
from bot.jobs.model import JobSpec, RetryPolicy
from bot.jobs.sqlite_store import SQLiteJobStore
from tests.support.bot_fixtures import Clock


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> SQLiteJobStore:
    return SQLiteJobStore(tmp_path / "jobs.sqlite3", policy=RetryPolicy(max_attempts=3, base_seconds=10), clock=clock)


def spec(sha: str = "a" * 40, repo: str = "alice/tiny", settings: str = "s1") -> JobSpec:
    return JobSpec(repo=repo, sha=sha, settings=settings)


def test_same_repo_sha_settings_is_one_job(store: SQLiteJobStore) -> None:
    first, created = store.enqueue(spec())
    again, created_again = store.enqueue(spec())
    assert created and not created_again and again.id == first.id
    assert store.enqueue(spec(settings="s2"))[1]
    assert store.enqueue(spec(sha="b" * 40))[1]
    assert store.counts()["queued"] == 3


def test_enqueued_job_survives_reopening(tmp_path: Path, store: SQLiteJobStore) -> None:
    job, _ = store.enqueue(spec())
    reopened = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    assert reopened.get(job.id).status == "queued"


def test_claim_finish(store: SQLiteJobStore) -> None:
    job, _ = store.enqueue(spec())
    claimed = store.claim("w1", 30)
    assert claimed is not None and claimed.id == job.id and claimed.attempts == 1 and claimed.status == "running"
    assert store.claim("w2", 30) is None
    assert not store.finish(job.id, "w2", "succeeded", "not mine")
    assert store.finish(job.id, "w1", "succeeded", "opened #1", "http://hub/pr/1")
    done = store.get(job.id)
    assert (done.status, done.reason, done.pr_url, done.lease_owner) == (
        "succeeded",
        "opened #1",
        "http://hub/pr/1",
        None,
    )
    assert done.finished_at is not None


def test_expired_lease_is_reclaimed_and_old_worker_cannot_write(store: SQLiteJobStore, clock: Clock) -> None:
    job, _ = store.enqueue(spec())
    assert store.claim("dead", 30) is not None
    clock.now += 10
    assert store.heartbeat(job.id, "dead", 30)  # lease renewed to now + 30
    clock.now += 29
    assert store.claim("w2", 30) is None
    clock.now += 2
    reclaimed = store.claim("w2", 30)
    assert reclaimed is not None and reclaimed.lease_owner == "w2" and reclaimed.attempts == 2
    assert not store.heartbeat(job.id, "dead", 30)
    assert not store.finish(job.id, "dead", "failed", "late")
    assert store.finish(job.id, "w2", "succeeded", "ok")


def test_lost_leases_give_up_after_max_attempts(store: SQLiteJobStore, clock: Clock) -> None:
    job, _ = store.enqueue(spec())
    for _ in range(3):
        assert store.claim("w", 5) is not None
        clock.now += 6
    assert store.claim("w", 5) is None
    failed = store.get(job.id)
    assert failed.status == "failed" and "gave up after 3 attempts" in (failed.reason or "")


def test_retry_backs_off_exponentially_then_gives_up(store: SQLiteJobStore, clock: Clock) -> None:
    job, _ = store.enqueue(spec())
    start = clock.now
    for attempt, delay in ((1, 10), (2, 20)):
        claimed = store.claim("w", 60)
        assert claimed is not None and claimed.attempts == attempt
        assert store.retry_later(job.id, "w", "Hub answered 503", transient=False)
        queued = store.get(job.id)
        assert queued.status == "queued" and queued.not_before == clock.now + delay
        assert "503" in (queued.reason or "")
        clock.now += delay - 1
        assert store.claim("w", 60) is None
        clock.now += 1
    assert store.claim("w", 60) is not None
    assert store.retry_later(job.id, "w", "Hub answered 503", transient=False)
    failed = store.get(job.id)
    assert failed.status == "failed" and failed.reason == "gave up after 3 attempts: Hub answered 503"
    assert clock.now - start == 30


def test_operator_requeue(store: SQLiteJobStore) -> None:
    job, _ = store.enqueue(spec())
    store.claim("w", 30)
    with pytest.raises(ValueError, match="running"):
        store.requeue(job.id)
    store.finish(job.id, "w", "failed", "validation failed")
    again = store.requeue(job.id)
    assert (again.status, again.attempts) == ("queued", 0)
    with pytest.raises(JobNotFoundError):
        store.requeue("nope")


def test_concurrent_claims_take_each_job_once(tmp_path: Path) -> None:
    path = tmp_path / "race.sqlite3"
    setup = SQLiteJobStore(path)
    for i in range(40):
        setup.enqueue(spec(sha=f"{i:040x}"))
    stores = [SQLiteJobStore(path) for _ in range(4)]  # separate connections, like separate processes
    taken: list[str] = []
    lock = threading.Lock()

    def drain(s: SQLiteJobStore, name: str) -> None:
        while (job := s.claim(name, 60)) is not None:
            with lock:
                taken.append(job.id)

    threads = [threading.Thread(target=drain, args=(s, f"w{i}")) for i, s in enumerate(stores)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(taken) == 40 and len(set(taken)) == 40


def test_bot_commits_and_listing(store: SQLiteJobStore, clock: Clock) -> None:
    store.record_bot_commit("C" * 40)
    assert store.is_bot_commit("c" * 40) and not store.is_bot_commit("d" * 40)
    store.enqueue(spec(sha="1" * 40))
    clock.now += 1
    newest, _ = store.enqueue(spec(sha="2" * 40))
    assert [j.id for j in store.recent(1)] == [newest.id]
    assert store.recent(10, "failed") == []


def test_unknown_store_scheme() -> None:
    with pytest.raises(ConfigError, match="'postgres' not supported"):
        open_store("postgres://localhost/jobs")
