"""Faults with real processes, a real store (SQLite file or Redis) and the fake Hub on loopback.

Each test runs in both modes: ``sqlite`` (workers poll the file) and ``redis`` (Dramatiq workers).
The ``process`` sandbox and TorchScript-only exports keep them fast; leases are 2 s, backoff 0.2 s · 2^n.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from bot.jobs.backends import open_store
from bot.jobs.engine import parse_redis_url
from bot.jobs.model import JobSpec, JobStore
from bot.jobs.redis_store import RedisJobStore
from bot.jobs.worker import HANDED_BACK
from tests.fakes import hub_webhooks
from tests.fakes.hub import FakeHub, serve_fake_hub
from tests.support.bot_fixtures import SECRET
from tests.support.processes import BotProcess, bot_env, finished, start_serve, start_worker, wait_for

REPO = "alice/tiny-bert"
MODEL_INFO = r"^/api/models/alice/[^/]+/revision/"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from exporter.sample import build_sample_checkpoint

    folder = build_sample_checkpoint(tmp_path_factory.mktemp("ckpt"))
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return {**files, ".export-bot.yaml": b"formats: [torchscript]\n"}  # the fastest export (~5 s)


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with serve_fake_hub(deliver_webhooks=False) as hub:
        hub.create_repo(REPO)
        yield hub


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path / 'jobs.sqlite3'}"


@pytest.fixture
def store(store_url: str) -> Iterator[JobStore]:
    store = open_store(store_url)
    yield store
    store.close()


@pytest.fixture
def procs() -> Iterator[list[BotProcess]]:
    """Every process a test starts; all are stopped at the end."""
    started: list[BotProcess] = []
    yield started
    for process in started:
        process.kill9(with_children=True)


def deliver(url: str, sha: str, repo: str = REPO) -> dict[str, object]:
    payload = hub_webhooks.repo_update_payload(repo, new_sha=sha)
    response = httpx.post(f"{url}/webhooks/hub", json=payload, headers={"X-Webhook-Secret": SECRET}, timeout=10)
    assert response.status_code == 202, response.text
    return response.json()


def hits(hub: FakeHub, pattern: str) -> int:
    import re

    return sum(1 for r in hub.requests if re.search(pattern, r.path))


def lease_owner_pid(store: JobStore, job_id: str) -> int | None:
    owner = store.get(job_id).lease_owner
    return int(owner.split(":")[1]) if owner else None


def pause_until_taken_over(store: JobStore, job_id: str, pid: int) -> None:
    """SIGSTOP the lease holder until another worker holds the job. Should the pause catch it inside a
    SQLite write (the other worker would wait on the lock), let it run a moment and pause it again."""
    for _ in range(5):
        os.kill(pid, signal.SIGSTOP)
        try:
            wait_for(lambda: lease_owner_pid(store, job_id) not in (pid, None), 8, "another worker to take over")
            return
        except AssertionError:
            os.kill(pid, signal.SIGCONT)
            time.sleep(0.1)
    raise AssertionError("no other worker took the job over")


def test_worker_killed_mid_export_is_retried_and_opens_one_pr(
    tmp_path: Path, hub: FakeHub, store: JobStore, store_url: str, checkpoint: dict[str, bytes], procs: list
) -> None:
    sha = hub.push(REPO, checkpoint)
    env = bot_env(tmp_path, hub.url, store_url)
    web, url = start_serve(env, tmp_path / "web.log")
    first = start_worker(env, tmp_path / "w1.log")
    procs += [web, first]
    job_id = str(deliver(url, sha)["job_id"])
    wait_for(lambda: "sandbox 'process'" in first.text(), 60, "the export to start")
    time.sleep(1.0)  # mid-export: the exporter is loading the model
    first.kill9(with_children=True)
    assert store.get(job_id).status == "running"
    second = start_worker(env, tmp_path / "w2.log")
    procs.append(second)
    job = finished(store, job_id, 120, first, second)
    assert job.status == "succeeded" and job.attempts == 2, job
    assert [pr.num for pr in hub.pull_requests(REPO)] == [1] and (job.pr_url or "").endswith("/discussions/1")
    assert {"onnx/report.json", "torchscript/model.pt"} <= set(hub.files_at(REPO, "refs/pr/1"))


def test_web_killed_right_after_202_the_job_is_still_done(
    tmp_path: Path, hub: FakeHub, store: JobStore, store_url: str, procs: list
) -> None:
    files = {"config.json": b'{"model_type": "bert"}', "model.safetensors": b"x" * 64}
    sha = hub.push(REPO, {**files, ".export-bot.yaml": b"enabled: false\n"})
    env = bot_env(tmp_path, hub.url, store_url)
    web, url = start_serve(env, tmp_path / "web.log")
    procs.append(web)
    job_id = str(deliver(url, sha)["job_id"])
    web.kill9()
    assert store.get(job_id).status == "queued"  # on disk / in Redis before the 202
    worker = start_worker(env, tmp_path / "w.log")
    procs.append(worker)
    job = finished(store, job_id, 60, worker)
    assert job.status == "skipped" and "enabled: false" in (job.reason or "") and job.attempts == 1, job
    assert hits(hub, MODEL_INFO) == 1


@pytest.mark.redis
def test_redis_job_whose_message_was_lost_is_swept(tmp_path: Path, hub: FakeHub, redis_url: str, procs: list) -> None:
    """The web process wrote the job and died before sending the message: the sweeper sends it."""
    sha = hub.push(REPO, {"README.md": b"no config"})
    import redis

    url, prefix = parse_redis_url(redis_url)
    lost = RedisJobStore(redis.Redis.from_url(url), prefix=prefix)  # no dispatch: the crash window
    job, _ = lost.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))
    worker = start_worker(bot_env(tmp_path, hub.url, redis_url), tmp_path / "w.log")
    procs.append(worker)
    done = finished(lost, job.id, 30, worker)
    assert done.status == "skipped" and "no config.json" in (done.reason or "")
    assert "sending its message again" in worker.text()


def test_hub_5xx_and_timeouts_are_retried_with_backoff(
    tmp_path: Path, hub: FakeHub, store: JobStore, store_url: str, procs: list
) -> None:
    sha = hub.push(REPO, {"README.md": b"no config"})
    errors = hub.inject_fault(MODEL_INFO, status=503, times=2)
    hang = hub.inject_fault(MODEL_INFO, delay=4, times=1)  # over the 2 s Hub timeout
    env = bot_env(tmp_path, hub.url, store_url)
    web, url = start_serve(env, tmp_path / "web.log")
    worker = start_worker(env, tmp_path / "w.log")
    procs += [web, worker]
    start = time.monotonic()
    job_id = str(deliver(url, sha)["job_id"])
    job = finished(store, job_id, 60, worker)
    assert job.status == "skipped" and job.attempts == 4, job
    # backoff 0.2 + 0.4 + 0.8 s between the attempts, plus the 2 s timeout
    assert time.monotonic() - start >= 3.4
    assert (errors.hits, hang.hits) == (2, 1)
    wait_for(lambda: hits(hub, MODEL_INFO) >= 4, 5, "the hung request to be logged")  # it ends after 4 s
    assert hits(hub, MODEL_INFO) == 4


def test_hub_refusals_fail_with_the_reason_and_no_retry_storm(
    tmp_path: Path, hub: FakeHub, store: JobStore, store_url: str, procs: list
) -> None:
    env = bot_env(tmp_path, hub.url, store_url)
    web, url = start_serve(env, tmp_path / "web.log")
    worker = start_worker(env, tmp_path / "w.log")
    procs += [web, worker]
    hub.create_repo("alice/unauthorized")
    hub.create_repo("alice/forbidden")
    hub.inject_fault(r"^/api/models/alice/unauthorized/", status=401, times=50)
    hub.inject_fault(r"^/api/models/alice/forbidden/", status=403, times=50)
    cases = {"alice/unauthorized": "401", "alice/forbidden": "403", "alice/missing": "404"}
    jobs = {repo: str(deliver(url, "f" * 40, repo)["job_id"]) for repo in cases}
    for repo, status in cases.items():
        job = finished(store, jobs[repo], 30, worker)
        assert job.status == "failed" and job.attempts == 1, job
        assert f"Hub answered {status}" in (job.reason or ""), job.reason
    time.sleep(1.0)  # a retry would come within the 0.2 s backoff
    for repo in cases:
        assert hits(hub, rf"^/api/models/{repo}/") == 1, repo


def test_two_workers_race_for_one_job_and_open_one_pr(
    tmp_path: Path, hub: FakeHub, store: JobStore, store_url: str, checkpoint: dict[str, bytes], procs: list
) -> None:
    """Duplicate deliveries (and, on Redis, duplicate messages) start it once; a worker paused past its
    lease loses the job to the other, then wakes up and finishes its run: its outcome is refused, one PR."""
    sha = hub.push(REPO, checkpoint)
    env = bot_env(tmp_path, hub.url, store_url)
    web, url = start_serve(env, tmp_path / "web.log")
    workers = [start_worker(env, tmp_path / f"w{i}.log") for i in range(2)]
    procs += [web, *workers]
    job_id = str(deliver(url, sha)["job_id"])
    assert deliver(url, sha)["duplicate"] is True
    if isinstance(store, RedisJobStore) and store.dispatch is not None:
        store.dispatch(job_id, 0.0)
        store.dispatch(job_id, 0.0)
    pid = wait_for(lambda: lease_owner_pid(store, job_id), 30, "a worker to claim the job")
    paused = next(w for w in workers if w.pid == pid)
    wait_for(lambda: "sandbox 'process'" in paused.text(), 60, "the export to start")
    try:
        pause_until_taken_over(store, job_id, pid)
        job = finished(store, job_id, 120, *workers)
    finally:
        os.kill(pid, signal.SIGCONT)
    assert job.status == "succeeded" and job.attempts == 2 and lease_owner_pid(store, job_id) is None, job
    wait_for(lambda: "lease lost" in paused.text(), 60, "the paused worker to finish its run")
    assert [pr.num for pr in hub.pull_requests(REPO)] == [1]
    assert store.get(job_id).status == "succeeded" and (store.get(job_id).pr_url or "").endswith("/discussions/1")
    assert json.loads(hub.files_at(REPO, "refs/pr/1")["onnx/report.json"])["status"] == "passed"


def sandbox_of(worker: BotProcess) -> psutil.Process:
    """The export running under ``worker`` (a child leading its own process group; not the start-up check)."""

    def find() -> psutil.Process | None:
        for child in psutil.Process(worker.pid).children():
            try:
                if "exporter export" in " ".join(child.cmdline()) and os.getpgid(child.pid) == child.pid:
                    return child
            except (psutil.Error, ProcessLookupError):  # the start-up check's process, exiting
                continue
        return None

    return wait_for(find, 60, "the export to start")


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sigterm_hands_a_long_export_back_and_kills_its_sandbox(
    tmp_path: Path, hub: FakeHub, store: JobStore, store_url: str, checkpoint: dict[str, bytes], procs: list
) -> None:
    """Grace 0.5 s, an export of several seconds: the job goes back to the queue, its attempt not counted."""
    sha = hub.push(REPO, checkpoint)
    env = bot_env(tmp_path, hub.url, store_url, stop_grace_seconds="0.5")
    job_id = store.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))[0].id  # Redis: with its message
    for n in (1, 2):  # the second worker takes the job at attempt 1 again, and is stopped the same way
        worker = start_worker(env, tmp_path / f"w{n}.log")
        procs.append(worker)
        sandbox = sandbox_of(worker)
        assert store.get(job_id).attempts == 1
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.proc.wait(30) == 0, worker.text()[-3000:]
        job = store.get(job_id)
        assert (job.status, job.attempts, job.lease_owner, job.reason) == ("queued", 0, None, HANDED_BACK), job
        assert gone(sandbox) and "handing them back" in worker.text()
    assert hub.pull_requests(REPO) == []


def test_sigterm_lets_a_job_finish_within_the_grace_period(
    tmp_path: Path, hub: FakeHub, store: JobStore, store_url: str, procs: list
) -> None:
    sha = hub.push(REPO, {"README.md": b"no config"})
    hub.inject_fault(MODEL_INFO, delay=3, times=1)  # the job is in a slow Hub call when the signal comes
    env = bot_env(tmp_path, hub.url, store_url, stop_grace_seconds="30", hub_timeout="20")
    worker = start_worker(env, tmp_path / "w.log")
    procs.append(worker)
    job_id = store.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))[0].id
    wait_for(lambda: store.get(job_id).status == "running", 30, "the job to start")
    worker.proc.send_signal(signal.SIGTERM)
    assert worker.proc.wait(30) == 0, worker.text()[-3000:]
    job = store.get(job_id)
    assert (job.status, job.attempts) == ("skipped", 1) and "no config.json" in (job.reason or ""), job
    log = worker.text()
    assert log.index("stopping: grace period 30 s") < log.index(f"job {job_id} skipped")


def test_serve_with_workers_stops_gracefully_too(tmp_path: Path, hub: FakeHub, procs: list) -> None:
    """``serve --workers 1``: uvicorn's shutdown stops the in-process worker the same way."""
    store_url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    sha = hub.push(REPO, {"README.md": b"no config"})
    hub.inject_fault(MODEL_INFO, delay=3, times=1)  # the job is in a slow Hub call when the signal comes
    env = bot_env(tmp_path, hub.url, store_url, stop_grace_seconds="30", hub_timeout="20")
    web, url = start_serve(env, tmp_path / "web.log", workers=1)
    procs.append(web)
    job_id = str(deliver(url, sha)["job_id"])
    store = open_store(store_url)
    wait_for(lambda: store.get(job_id).status == "running", 30, "the job to start")
    web.proc.send_signal(signal.SIGTERM)
    assert web.proc.wait(30) == -signal.SIGTERM, web.text()[-3000:]  # uvicorn re-raises the signal once done
    log = web.text()
    assert store.get(job_id).status == "skipped", log[-3000:]
    assert log.index("Waiting for application shutdown") < log.index(f"job {job_id} skipped")
