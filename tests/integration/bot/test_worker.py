"""The job pipeline against the fake Hub, in-process: skips, size limit, retries, hostile checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, HfApi

from bot.errors import CheckpointRejectedError, HubRefusedError
from bot.hub import HubClient, marker, set_hub_timeout
from bot.jobs.model import Job, JobSpec
from bot.jobs.sqlite_store import SQLiteJobStore
from bot.jobs.worker import Worker
from bot.pipeline.repo_config import RepoConfig
from bot.pipeline.workdir import JobFolder
from bot.runtime import build_worker
from tests.fakes.hub import BOT_TOKEN, WRITE_TOKEN, FakeHub
from tests.support.bot_fixtures import MODEL_REPO, TINY_BERT, make_settings
from tests.support.hostile import Listener, hostile_pickle, pickle_attack
from tests.support.outputs import write_output

REPO = MODEL_REPO  # the repo the shared `hub` fixture creates
BERT_CONFIG = json.dumps(TINY_BERT).encode()


def make_worker(tmp_path: Path, hub: FakeHub, **overrides: object) -> Worker:
    settings = make_settings(
        tmp_path,
        hf_endpoint=hub.url,
        hf_token=BOT_TOKEN,
        lease_seconds=30,
        backoff_seconds=0,
        max_attempts=3,
        **overrides,
    )
    return build_worker(settings)


def run(worker: Worker, sha: str) -> Job:
    job, _ = worker.store.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))
    finished = worker.run_once()
    assert finished is not None and finished.id == job.id
    return finished


def downloads(hub: FakeHub) -> list[str]:
    return [r.path for r in hub.requests if "/resolve/" in r.path]


def test_repo_without_config_is_skipped(tmp_path: Path, hub: FakeHub) -> None:
    sha = hub.push(REPO, {"README.md": b"# hello"})
    job = run(make_worker(tmp_path, hub), sha)
    assert job.status == "skipped" and "no config.json" in (job.reason or "")


def test_config_without_model_type_is_skipped(tmp_path: Path, hub: FakeHub) -> None:
    sha = hub.push(REPO, {"config.json": b"{}", "model.safetensors": b"x" * 16})
    job = run(make_worker(tmp_path, hub), sha)
    assert job.status == "skipped" and "model_type" in (job.reason or "")


def test_disabled_by_repo_config_before_any_other_download(tmp_path: Path, hub: FakeHub) -> None:
    """Only ``.export-bot.yaml`` is fetched: not the weights, not even config.json (here 2 MB, over its limit)."""
    sha = hub.push(
        REPO,
        {
            "config.json": b" " * (2 << 20),
            "model.safetensors": b"x" * 4096,
            ".export-bot.yaml": b"enabled: false\n",
        },
    )
    job = run(make_worker(tmp_path, hub), sha)
    assert job.status == "skipped" and job.reason == "disabled by .export-bot.yaml (enabled: false)", job
    assert [path.rsplit("/", 1)[-1] for path in downloads(hub)] == [".export-bot.yaml"]


def test_config_and_repo_settings_come_before_the_weights(tmp_path: Path, hub: FakeHub) -> None:
    """A config the bot refuses costs one small download; the weights are never fetched."""
    config = json.loads(BERT_CONFIG) | {"num_hidden_layers": 10**9}
    sha = hub.push(
        REPO,
        {
            "config.json": json.dumps(config).encode(),
            "model.safetensors": b"x" * 4096,
            ".export-bot.yaml": b"opset: 17\n",
        },
    )
    job = run(make_worker(tmp_path, hub), sha)
    assert job.status == "failed" and "asks for about" in (job.reason or ""), job
    assert sorted(path.rsplit("/", 1)[-1] for path in downloads(hub)) == [".export-bot.yaml", "config.json"]


def test_small_files_are_fetched_with_a_cap_on_the_stream(hub: FakeHub) -> None:
    """Should the listing understate a size, the download stops at the cap instead of reading it all."""
    sha = hub.push(REPO, {"config.json": b"{" + b" " * 5000 + b"}"})
    client = HubClient(endpoint=hub.url, token=BOT_TOKEN, bot_user="export-bot")
    assert client.fetch_capped(REPO, sha, "config.json", 10_000).startswith(b"{ ")
    with pytest.raises(
        CheckpointRejectedError, match=r"config.json is over the 1,000 bytes limit \(download stopped\)"
    ):
        client.fetch_capped(REPO, sha, "config.json", 1000)
    with pytest.raises(HubRefusedError, match="404"):
        client.fetch_capped(REPO, sha, "missing.json", 1000)


def test_invalid_repo_config_fails_with_reason(tmp_path: Path, hub: FakeHub) -> None:
    sha = hub.push(
        REPO,
        {
            "config.json": BERT_CONFIG,
            "model.safetensors": b"x" * 16,
            ".export-bot.yaml": b"formats: [tflite]\nopset: 99\n",
        },
    )
    job = run(make_worker(tmp_path, hub), sha)
    assert job.status == "failed" and job.attempts == 1
    assert "formats" in (job.reason or "") and "opset" in (job.reason or "")


def test_too_big_checkpoint_is_refused_before_download(tmp_path: Path, hub: FakeHub) -> None:
    sha = hub.push(REPO, {"config.json": BERT_CONFIG, "model.safetensors": b"x" * 5000})
    job = run(make_worker(tmp_path, hub, max_checkpoint_bytes=4096), sha)
    assert job.status == "failed" and "over the 4096 bytes limit" in (job.reason or "")
    assert downloads(hub) == []


def test_hub_5xx_is_retried_then_succeeds_past_it(tmp_path: Path, hub: FakeHub) -> None:
    sha = hub.push(REPO, {"README.md": b"no config"})
    hub.inject_fault(r"/api/models/alice/model/revision/", status=503, times=1)
    worker = make_worker(tmp_path, hub)
    job = run(worker, sha)
    assert job.status == "queued" and "503" in (job.reason or "")
    again = worker.run_once()
    assert again is not None and again.status == "skipped" and again.attempts == 2


def test_hub_404_fails_without_retry(tmp_path: Path, hub: FakeHub) -> None:
    worker = make_worker(tmp_path, hub)
    worker.store.enqueue(JobSpec(repo="alice/missing", sha="d" * 40, settings="t"))
    finished = worker.run_once()
    assert finished is not None and finished.status == "failed" and finished.attempts == 1
    assert "404" in (finished.reason or "")
    assert worker.run_once() is None


def test_persistent_5xx_gives_up_after_the_retry_window(tmp_path: Path, hub: FakeHub) -> None:
    """Not after max_attempts (3 here): transient errors are retried for the window (0.5 s here)."""
    sha = hub.push(REPO, {"README.md": b"x"})
    fault = hub.inject_fault(r"/api/models/alice/model/revision/", status=502, times=10_000)
    worker = make_worker(tmp_path, hub, retry_window_seconds=0.5)
    job = run(worker, sha)
    while job.status == "queued":
        job = worker.run_once() or job
    assert job.status == "failed" and job.attempts == fault.hits > 3, job
    assert job.reason == f"gave up after 0.5 s of transient errors ({job.attempts} attempts): " + (
        "reading alice/model@" + sha[:8] + ": Hub answered 502: Injected fault (502)"
    )


@pytest.mark.slow
@pytest.mark.bwrap
def test_hostile_checkpoint_gets_nothing_and_the_job_fails(
    tmp_path: Path, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pickle ``pytorch_model.bin`` that tries to steal the token, phone home and write outside."""
    token_file = tmp_path / "bot-home" / ".cache" / "huggingface" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(BOT_TOKEN)
    monkeypatch.setenv("HOME", str(tmp_path / "bot-home"))
    monkeypatch.setenv("HF_TOKEN", BOT_TOKEN)
    listener = Listener()
    outside = tmp_path / "pwned.txt"
    payload = hostile_pickle(pickle_attack("/output", listener.port, token_file, outside))
    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    sha = api.upload_file(path_or_fileobj=BERT_CONFIG, path_in_repo="config.json", repo_id=REPO).oid
    sha = api.upload_file(path_or_fileobj=payload, path_in_repo="pytorch_model.bin", repo_id=REPO).oid
    worker = make_worker(tmp_path, hub, keep_work_dirs=True, sandbox="bwrap")
    try:
        job = run(worker, sha)
    finally:
        listener.close()
    assert job.status == "failed", job
    assert "checkpoint problem" in (job.reason or "") or "export failed" in (job.reason or ""), job.reason
    assert listener.connections == 0 and not outside.exists()
    leftovers = "".join(p.read_text(errors="replace") for p in (tmp_path / "work").rglob("*") if p.is_file())
    assert BOT_TOKEN not in leftovers and BOT_TOKEN not in (job.reason or "")
    assert hub.pull_requests(REPO) == []
    assert isinstance(worker.store, SQLiteJobStore)


def test_dropped_connection_is_transient(tmp_path: Path, hub: FakeHub) -> None:
    sha = hub.push(REPO, {"README.md": b"x"})
    hub.inject_fault(r"/api/models/alice/model/revision/", drop=True, times=1)
    job = run(make_worker(tmp_path, hub), sha)
    assert job.status == "queued" and (job.reason or "").startswith("retrying: reading alice/model")


def open_bot_pr(hub: FakeHub, sha: str) -> int:
    """A PR as the bot opens it (marker first), without running an export."""
    api = HfApi(endpoint=hub.url, token=BOT_TOKEN)
    info = api.create_commit(
        REPO,
        [CommitOperationAdd("onnx/report.json", b"{}")],
        commit_message="Add export",
        commit_description=marker(sha) + "\nreport",
        create_pr=True,
        parent_commit=sha,
    )
    assert info.pr_num is not None
    return info.pr_num


def test_stale_commit_does_not_replace_a_newer_pr(tmp_path: Path, hub: FakeHub) -> None:
    old = hub.push(REPO, {"config.json": BERT_CONFIG, "model.safetensors": b"x" * 16})
    new = hub.push(REPO, {"model.safetensors": b"y" * 16})
    newer_pr = open_bot_pr(hub, new)
    job = run(make_worker(tmp_path, hub), old)
    assert job.status == "skipped" and f"already has pull request #{newer_pr}" in (job.reason or "")
    assert [pr.status for pr in hub.pull_requests(REPO)] == ["open"]


def test_retry_after_pr_opened_finishes_the_supersede(tmp_path: Path, hub: FakeHub) -> None:
    """A worker died after opening PR #2 but before closing #1: the retry closes #1, opens nothing."""
    old = hub.push(REPO, {"config.json": BERT_CONFIG, "model.safetensors": b"x" * 16})
    new = hub.push(REPO, {"model.safetensors": b"y" * 16})
    first, second = open_bot_pr(hub, old), open_bot_pr(hub, new)
    job = run(make_worker(tmp_path, hub), new)
    assert job.status == "succeeded" and (job.pr_url or "").endswith(f"/discussions/{second}")
    assert [(pr.num, pr.status) for pr in hub.pull_requests(REPO)] == [(first, "closed"), (second, "open")]
    assert downloads(hub) == []  # nothing was fetched or exported again


def test_forged_marker_in_a_report_is_not_trusted(tmp_path: Path, hub: FakeHub) -> None:
    """Only the first line names the commit: a report quoting a marker cannot claim another sha."""
    sha = hub.push(REPO, {"README.md": b"no config"})
    api = HfApi(endpoint=hub.url, token=BOT_TOKEN)
    api.create_commit(
        REPO,
        [CommitOperationAdd("x", b"x")],
        commit_message="x",
        create_pr=True,
        parent_commit=sha,
        commit_description="report\n" + marker(sha),
    )
    job = run(make_worker(tmp_path, hub), sha)
    assert job.status == "skipped" and "no config.json" in (job.reason or "")


def test_hung_hub_times_out_and_is_retried(tmp_path: Path, hub: FakeHub) -> None:
    sha = hub.push(REPO, {"README.md": b"x"})
    hub.inject_fault(r"/api/models/alice/model/revision/", delay=5, times=1)
    try:
        job = run(make_worker(tmp_path, hub, hub_timeout=1), sha)
    finally:
        set_hub_timeout(60)
    assert job.status == "queued" and "Timeout" in (job.reason or ""), job.reason


def test_a_retry_that_finds_its_pr_removes_the_kept_outputs(tmp_path: Path, hub: FakeHub) -> None:
    """The PR was created but its answer lost: the retry records it, opens none, and drops what it kept."""
    sha = hub.push(REPO, {"config.json": BERT_CONFIG, "model.safetensors": b"x" * 16})
    worker = make_worker(tmp_path, hub)
    job, _ = worker.store.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))
    first = worker.store.claim("lost-answer", 30)
    assert first is not None and worker.store.retry_later(job.id, "lost-answer", "opening a pull request: timeout")
    folder = JobFolder(tmp_path / "work", first)
    output = folder.begin() / "output-0"
    write_output(output)
    folder.keep_outputs([output], RepoConfig(), "bert", 1 << 20)
    folder.after_transient(budget=1 << 30, prune_after=3600)
    num = open_bot_pr(hub, sha)
    done = worker.run_once()
    assert done is not None and done.status == "succeeded" and done.attempts == 2, done
    assert done.reason == f"pull request #{num} already open for this commit"
    assert not (tmp_path / "work" / job.id).exists() and downloads(hub) == []
    assert len(hub.pull_requests(REPO)) == 1
