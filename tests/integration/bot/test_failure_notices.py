"""The author learns why no PR came: one discussion per failing commit, against the fake Hub, in-process.

Cheap failures (refused by the bot's own checks before any sandbox) drive most cases; one checkpoint with
its own model code goes through the real sandbox, and one good commit is exported (TorchScript only).
A failed *validation* with its report in the discussion is in ``tests/e2e/bot/test_webhook_to_pr.py``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bot.hub import FAILURE_MARKER_RE
from bot.jobs.model import Job, JobSpec
from bot.jobs.sqlite_store import SQLiteJobStore
from bot.jobs.worker import Worker
from tests.fakes.hub import BOT_USER, FakeHub
from tests.support.bot_fixtures import MODEL_REPO, TINY_BERT, Clock
from tests.support.pipeline import CountingRunner, worker_for

REPO = MODEL_REPO
BERT = TINY_BERT
TOO_BIG = {"config.json": json.dumps({**BERT, "hidden_size": 10**7}).encode(), "model.safetensors": b"x" * 64}
DISCUSSIONS = r"^/api/models/alice/model/discussions$"


def make_worker(
    tmp_path: Path, hub: FakeHub, runner: CountingRunner | None = None, clock: Clock | None = None, **overrides: object
) -> Worker:
    from tests.integration.bot.test_outage import settings_for

    store = SQLiteJobStore(tmp_path / "jobs.sqlite3", clock=clock or Clock())
    return worker_for(settings_for(tmp_path, hub, **overrides), store, runner or CountingRunner())


def run(worker: Worker, sha: str) -> Job:
    job, _ = worker.store.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))
    done = worker.run_once()
    assert done is not None and done.id == job.id
    return done


def notices(hub: FakeHub) -> list[tuple[int, str, str | None]]:
    """(number, status, commit named by the marker) of every discussion; fails on a PR."""
    found: list[tuple[int, str, str | None]] = []
    for d in hub.discussions(REPO):
        assert not d.is_pull_request and d.author == BOT_USER, d
        match = FAILURE_MARKER_RE.match(hub.pr_description(REPO, d.num))
        found.append((d.num, d.status, match.group(1) if match else None))
    return found


def comments(hub: FakeHub, num: int) -> list[str]:
    return [e["data"]["latest"]["raw"] for e in hub.repo(REPO).discussions[num].events if e["type"] == "comment"]


def test_a_failing_commit_gets_one_discussion_whatever_reruns_it(tmp_path: Path, hub: FakeHub) -> None:
    sha = hub.push(REPO, TOO_BIG)
    worker = make_worker(tmp_path, hub)
    job = run(worker, sha)
    assert job.status == "failed" and "asks for about" in (job.reason or ""), job
    assert notices(hub) == [(1, "open", sha)]
    [discussion] = hub.discussions(REPO)
    assert discussion.title == f"Export bot: the export of {sha[:7]} failed"
    text = hub.pr_description(REPO, 1)
    assert f"**Why:** {job.reason}" in text and "`notify_failures: false`" in text and "`enabled: false`" in text
    worker.store.requeue(job.id)  # an operator's retry runs it all again
    again = worker.run_once()
    assert again is not None and again.status == "failed" and again.attempts == 1
    assert notices(hub) == [(1, "open", sha)]


def test_telling_the_author_is_retried_alone(tmp_path: Path, hub: FakeHub, clock: Clock) -> None:
    sha = hub.push(REPO, TOO_BIG)
    fault = hub.inject_fault(DISCUSSIONS, method="POST", status=503)
    worker = make_worker(tmp_path, hub, clock=clock)
    job = run(worker, sha)
    assert job.status == "queued" and "opening a discussion" in (job.reason or "") and fault.hits == 1, job
    before = len(hub.requests)
    clock.now = job.not_before
    done = worker.run_once()
    assert done is not None and done.status == "failed" and "asks for about" in (done.reason or ""), done
    assert notices(hub) == [(1, "open", sha)]
    retried = [r.path for r in hub.requests[before:]]
    assert not any("/revision/" in path or "/resolve/" in path for path in retried), retried  # nothing re-checked
    assert not (tmp_path / "work" / job.id).exists()


def test_newer_failures_supersede_and_a_good_export_closes_the_discussion(
    tmp_path: Path, hub: FakeHub, checkpoint: dict[str, bytes]
) -> None:
    first = hub.push(REPO, TOO_BIG)
    second = hub.push(REPO, {"config.json": b"{model_type: bert"})  # not JSON
    runner = CountingRunner()
    worker = make_worker(tmp_path, hub, runner)
    assert run(worker, first).status == "failed" and run(worker, second).status == "failed"
    assert notices(hub) == [(1, "closed", first), (2, "open", second)]
    assert comments(hub, 1)[-1] == f"Superseded by #2: the newer commit `{second[:7]}` failed too."
    assert "config.json is not valid JSON" in hub.pr_description(REPO, 2)
    good = hub.push(REPO, checkpoint)
    done = run(worker, good)
    assert done.status == "succeeded" and done.pr_url and done.pr_url.endswith("/discussions/3"), done
    assert runner.runs == 1 and [pr.num for pr in hub.pull_requests(REPO)] == [3]
    assert [(d.num, d.status) for d in hub.discussions(REPO) if not d.is_pull_request] == [(1, "closed"), (2, "closed")]
    assert re.fullmatch(rf"Commit `{good[:7]}` exported: #3 \(.*/discussions/3\)\.", comments(hub, 2)[-1])


def test_an_older_commit_failing_late_leaves_the_newer_discussion_open(tmp_path: Path, hub: FakeHub) -> None:
    older = hub.push(REPO, TOO_BIG)
    newer = hub.push(REPO, {"config.json": b"{model_type: bert"})
    worker = make_worker(tmp_path, hub)
    assert run(worker, newer).status == "failed" and run(worker, older).status == "failed"
    assert sorted(notices(hub)) == [(1, "open", newer), (2, "open", older)]


@pytest.mark.parametrize(
    ("files", "settings", "why"),
    [
        ({**TOO_BIG, ".export-bot.yaml": b"notify_failures: false\n"}, {}, "the repo opted out"),
        (TOO_BIG, {"failure_discussions": False}, "the bot-wide switch is off"),
        ({**TOO_BIG, "../x.json": b"{}"}, {}, "an unsafe listing is not the author's to fix"),
    ],
    ids=["repo-opt-out", "bot-switch", "not-author-facing"],
)
def test_no_discussion(tmp_path: Path, hub: FakeHub, files: dict[str, bytes], settings: dict, why: str) -> None:
    job = run(make_worker(tmp_path, hub, **settings), hub.push(REPO, files))
    assert job.status == "failed" and hub.discussions(REPO) == [], why


def test_own_model_code_is_skipped_and_explained(tmp_path: Path, hub: FakeHub) -> None:
    """The real exporter in the sandbox refuses ``auto_map``; the author reads what to publish instead."""
    config = {**BERT, "auto_map": {"AutoModelForSequenceClassification": "modeling_mine.Mine"}}
    sha = hub.push(REPO, {"config.json": json.dumps(config).encode(), "model.safetensors": b"x" * 64})
    runner = CountingRunner()
    job = run(make_worker(tmp_path, hub, runner), sha)
    assert job.status == "skipped" and runner.runs == 1, job
    assert job.reason is not None and job.reason.startswith("unsupported: this checkpoint ships its own model code")
    text = hub.pr_description(REPO, 1)
    assert job.reason in text and "--trust-remote-code" not in text and str(tmp_path) not in text
    assert notices(hub) == [(1, "open", sha)]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    from exporter.sample import build_sample_checkpoint

    folder = build_sample_checkpoint(tmp_path_factory.mktemp("ckpt"))
    files = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    return {**files, ".export-bot.yaml": b"formats: [torchscript]\n"}
