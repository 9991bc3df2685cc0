"""The bot's graph cache: a repo's next commit with new weights reuses its graph; another repo's does not.

The worker runs in-process against the fake Hub; the exports are real (``process`` sandbox).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from bot.jobs.model import Job, JobSpec
from bot.jobs.worker import Worker
from bot.runtime import build_worker
from exporter.graph_cache import MANIFEST, entries
from exporter.sample import build_sample_checkpoint, reweight_checkpoint
from tests.fakes.hub import BOT_TOKEN, BOT_USER, FakeHub
from tests.support.bot_fixtures import MODEL_REPO, make_settings

pytestmark = [pytest.mark.slow, pytest.mark.heavy]
OTHER_REPO = "bob/model"


def files_of(folder: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return {**files, ".export-bot.yaml": b"formats: [onnx]\ndtypes: [fp32]\n"}


def worker(tmp_path: Path, hub: FakeHub, **overrides: object) -> Worker:
    settings = make_settings(tmp_path, hf_endpoint=hub.url, hf_token=BOT_TOKEN, bot_user=BOT_USER, **overrides)
    return build_worker(settings)


def run(worker: Worker, repo: str, sha: str) -> Job:
    worker.store.enqueue(JobSpec(repo=repo, sha=sha, settings="t"))
    job = worker.run_once()
    assert job is not None and job.status == "succeeded", job
    return job


def description(hub: FakeHub, repo: str) -> str:
    latest = max(hub.pull_requests(repo), key=lambda pr: pr.num)
    return hub.pr_description(repo, latest.num)


def repo_folder(tmp_path: Path, repo: str) -> Path:
    return tmp_path / "work" / "graph-cache" / hashlib.sha256(repo.encode()).hexdigest()[:32]


def test_a_repo_reuses_its_own_graph_only_and_old_entries_are_evicted(tmp_path: Path, hub: FakeHub) -> None:
    checkpoint = reweight_checkpoint(build_sample_checkpoint(tmp_path / "checkpoint"), seed=1)
    first = hub.push(MODEL_REPO, files_of(checkpoint))
    run(worker(tmp_path, hub), MODEL_REPO, first)
    assert "stored for the next export" in description(hub, MODEL_REPO)
    [alice_entry] = entries(repo_folder(tmp_path, MODEL_REPO))

    reweight_checkpoint(checkpoint, seed=2)
    second = hub.push(MODEL_REPO, files_of(checkpoint))
    run(worker(tmp_path, hub), MODEL_REPO, second)
    assert f"Graph reused from `{MODEL_REPO}@{first}`" in description(hub, MODEL_REPO)

    # Another repo with the same architecture and the same weights: its own (empty) cache, a full export.
    hub.create_repo(OTHER_REPO)
    other = hub.push(OTHER_REPO, files_of(checkpoint))
    size = sum(p.stat().st_size for p in alice_entry.rglob("*") if p.is_file())
    run(worker(tmp_path, hub, graph_cache_max_bytes=size * 3 // 2), OTHER_REPO, other)
    text = description(hub, OTHER_REPO)
    assert "Graph reused" not in text and "no entry for this key; stored" in text
    # Two entries do not fit: the least recently used one (alice's) went after the job.
    assert not (alice_entry / MANIFEST).exists()
    assert len(entries(repo_folder(tmp_path, OTHER_REPO))) == 1
