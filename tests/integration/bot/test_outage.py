"""A Hub outage after the export: the job waits it out and publishes what it exported, once.

The worker and pipeline run in-process against the fake Hub, with the store on a fake clock (SQLite and
Redis); the export is real (``process`` sandbox, TorchScript only), and the sandbox runs are counted.
The retry settings are the defaults (24 h window, backoff 30 s doubling to 10 min).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.jobs.model import Job, JobSpec, JobStore
from bot.jobs.sqlite_store import SQLiteJobStore
from bot.jobs.worker import Worker
from bot.pipeline.repo_config import RepoConfig
from bot.pipeline.workdir import JobFolder, prune
from bot.runtime import retry_policy
from bot.settings import BotSettings
from tests.fakes.hub import BOT_TOKEN, BOT_USER, FakeHub
from tests.support.bot_fixtures import MODEL_REPO, Clock, make_settings, open_test_store
from tests.support.outputs import write_output
from tests.support.pipeline import CountingRunner, worker_for

REPO = MODEL_REPO
OUTAGE = 2 * 3600.0  # simulated seconds: far past the 7.5 min the old fixed 5 attempts covered


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from exporter.sample import build_sample_checkpoint

    folder = build_sample_checkpoint(tmp_path_factory.mktemp("ckpt"))
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return {**files, ".export-bot.yaml": b"formats: [torchscript]\n"}  # the fastest export


def settings_for(tmp_path: Path, hub: FakeHub, **overrides: object) -> BotSettings:
    return make_settings(tmp_path, hf_endpoint=hub.url, hf_token=BOT_TOKEN, bot_user=BOT_USER, **overrides)


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def store(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[JobStore]:
    policy = retry_policy(make_settings(tmp_path))  # the defaults
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    store: JobStore = open_test_store(request.param, tmp_path, clock, policy, redis_url)
    yield store
    store.close()


def run(worker: Worker) -> Job:
    job = worker.run_once()
    assert job is not None
    return job


def assert_one_pr_with_checked_files(hub: FakeHub) -> None:
    assert [(pr.num, pr.status) for pr in hub.pull_requests(REPO)] == [(1, "open")]
    files = hub.files_at(REPO, "refs/pr/1")
    report = json.loads(files["onnx/report.json"])
    assert report["status"] == "passed"
    [entry] = report["files"]
    assert hashlib.sha256(files["torchscript/model.pt"]).hexdigest() == entry["sha256"]


def test_hub_down_for_hours_after_the_export_one_export_one_pr(
    tmp_path: Path, hub: FakeHub, checkpoint: dict[str, bytes], store: JobStore, clock: Clock
) -> None:
    sha = hub.push(REPO, checkpoint)
    runner = CountingRunner(after_run=lambda: hub.inject_fault(r".", status=503, times=10**9))  # the Hub goes down
    worker = worker_for(settings_for(tmp_path, hub), store, runner)
    store.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))
    job = run(worker)
    assert job.status == "queued" and "Hub answered 503" in (job.reason or "") and runner.runs == 1, job
    down_since, delays = clock.now, []
    while job.status == "queued":
        delays.append(job.not_before - clock.now)
        clock.now = job.not_before
        if clock.now - down_since >= OUTAGE:
            hub.clear_faults()  # the Hub is back
        job = run(worker)
    assert job.status == "succeeded" and job.reason == "opened pull request #1 (bert)", job
    assert runner.runs == 1  # every retry only published what the first attempt checked
    assert clock.now - down_since == 7530 and job.attempts == 17 and job.transient_failures == 16  # 2 h 05 min
    assert delays[:6] == [30, 60, 120, 240, 480, 600] and set(delays[6:]) == {600}
    assert_one_pr_with_checked_files(hub)
    assert not (tmp_path / "work" / job.id).exists()  # the kept outputs went with the job


def test_retry_on_another_host_exports_again(
    tmp_path: Path, hub: FakeHub, checkpoint: dict[str, bytes], clock: Clock
) -> None:
    """Host A exported and kept its checked outputs, then publishing failed; the retry is claimed on host B
    (another work folder): B cannot see A's disk, so it exports again, and opens the one PR."""
    sha = hub.push(REPO, checkpoint)
    store = SQLiteJobStore(tmp_path / "jobs.sqlite3", policy=retry_policy(make_settings(tmp_path)), clock=clock)
    job, _ = store.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))
    first = store.claim("host-a", 60)
    assert first is not None and store.retry_later(job.id, "host-a", "opening a pull request: Hub answered 503")
    on_a = JobFolder(tmp_path / "host-a", first)  # what host A kept (built here instead of exporting)
    output = on_a.begin() / "output-0"
    write_output(output)
    on_a.keep_outputs([output], RepoConfig(formats=["onnx", "torchscript"]), "bert", 1 << 20)
    on_a.after_transient(budget=1 << 30, prune_after=3600)
    runner = CountingRunner()
    host_b = worker_for(settings_for(tmp_path, hub, work_dir=tmp_path / "host-b"), store, runner)
    clock.now = store.get(job.id).not_before
    done = run(host_b)
    assert done.status == "succeeded" and done.attempts == 2 and runner.runs == 1, done
    assert_one_pr_with_checked_files(hub)
    # Host A's folder is left behind; it is pruned once older than a job can be retried.
    later = time.time() + 2 * 24 * 3600
    assert prune(tmp_path / "host-a", 24 * 3600 + 600 + 3600, now=later) == [job.id]
    assert os.listdir(tmp_path / "host-a") == []
