"""End to end over real HTTP: fake Hub on loopback, ``export-bot serve`` as a subprocess, real bwrap.

One scenario, in order, because each export costs seconds:
webhook created with the CLI → push → PR with files and report; the same delivery again → no second
PR; a wrong secret → 403 and no job; two more pushes (new weights, then ``atol: 0``, ``rtol: 0``) → server killed
with jobs queued/running → restarted → the new PR supersedes the old one, the failing one opens none.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huggingface_hub import HfApi

from bot.jobs.backends import open_store
from tests.fakes import hub_webhooks
from tests.fakes.hub import BOT_TOKEN, BOT_USER, WRITE_TOKEN, FakeHub, serve_fake_hub
from tests.support.bot_fixtures import free_port

ROOT = Path(__file__).resolve().parents[3]
REPO = "alice/tiny-bert"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.bwrap,
]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class BotProcess:
    """``python -m bot serve`` with one in-process worker, on a fixed port, restartable."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bot",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--workers",
                    "1",
                ],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._healthy, 30, "the bot to serve")

    def _healthy(self) -> bool:
        assert self.proc is not None and self.proc.poll() is None, self.log.read_text()[-3000:]
        try:
            return httpx.get(self.url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def job(self, job_id: str) -> dict[str, Any]:
        return httpx.get(f"{self.url}/jobs/{job_id}", timeout=5).json()

    def jobs(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/jobs", timeout=5).json()

    def finished(self, job_id: str, timeout: float = 120) -> dict[str, Any]:
        def done() -> dict[str, Any] | None:
            job = self.job(job_id)
            return job if job["status"] in ("succeeded", "failed", "skipped") else None

        try:
            return wait_for(done, timeout, f"job {job_id}")
        except AssertionError:
            print(self.log.read_text()[-5000:])
            raise


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    with serve_fake_hub() as hub:
        yield hub


@pytest.fixture
def bot(tmp_path: Path, hub: FakeHub) -> Iterator[BotProcess]:
    port = free_port()
    secret = create_webhook(hub, f"http://127.0.0.1:{port}/webhooks/hub")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": hub.url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_TOKEN": BOT_TOKEN,
        "EXPORT_BOT_WEBHOOK_SECRET": secret,
        "EXPORT_BOT_BOT_USER": BOT_USER,
        "EXPORT_BOT_STORE_URL": f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        "EXPORT_BOT_WORK_DIR": str(tmp_path / "work"),
        "EXPORT_BOT_SANDBOX": "bwrap",
        "EXPORT_BOT_LEASE_SECONDS": "3",
        "EXPORT_BOT_POLL_SECONDS": "0.2",
        "EXPORT_BOT_EXPORT_TIMEOUT": "600",  # a seq2seq export with past takes minutes on a loaded machine
    }
    process = BotProcess(env, port, tmp_path / "bot.log")
    process.secret = secret  # type: ignore[attr-defined]
    process.start()
    yield process
    process.kill()


def create_webhook(hub: FakeHub, url: str) -> str:
    """``export-bot webhook create`` as the repo owner; returns the printed secret."""
    env = {**os.environ, "HF_TOKEN": WRITE_TOKEN, "HF_ENDPOINT": hub.url, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "bot", "webhook", "create", "--repo", REPO, "--url", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    secret = next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("secret: "))
    assert len(secret) >= 32
    return secret


def upload_checkpoint(api: HfApi, folder: Path, message: str) -> str:
    return api.upload_folder(repo_id=REPO, folder_path=folder, commit_message=message).oid


def delivery_for(hub: FakeHub, sha: str) -> hub_webhooks.DeliveryResult:
    def find() -> Any:
        for d in hub.deliveries:
            if any(ref.get("newSha") == sha for ref in d.payload.get("updatedRefs") or []):
                return d
        return None

    delivery = wait_for(find, 20, f"the webhook delivery for {sha[:8]}")
    return hub_webhooks.DeliveryResult(delivery.status, delivery.body)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_webhook_to_pull_request_lifecycle(tmp_path: Path, hub: FakeHub, bot: BotProcess) -> None:
    from exporter.sample import build_sample_checkpoint

    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(REPO)

    # 1. a push → signed webhook from the Hub → 202 → one PR with files and the report
    sha_a = upload_checkpoint(api, build_sample_checkpoint(tmp_path / "ckpt-a", seed=0), "tiny bert")
    first = delivery_for(hub, sha_a)
    assert first.status == 202, first.body
    job_a = json.loads(first.body)["job_id"]
    done = bot.finished(job_a)
    assert done["status"] == "succeeded", done
    prs = hub.pull_requests(REPO)
    assert [(pr.num, pr.status, pr.author) for pr in prs] == [(1, "open", BOT_USER)]
    assert done["pr_url"].endswith("/discussions/1")
    assert "ONNX and TorchScript" in prs[0].title
    files = hub.files_at(REPO, "refs/pr/1")
    assert {"onnx/model.onnx", "torchscript/model.pt", "onnx/report.json", "config.json"} <= set(files)
    assert "onnx/model_quantized.onnx" in files  # the default dtypes: fp32 and q8
    report = json.loads(files["onnx/report.json"])
    assert report["status"] == "passed"
    assert (report["model"], report["revision"]) == (REPO, sha_a)  # what it came from, not the sandbox path
    for entry in report["files"]:
        path = {"model.onnx": "onnx/model.onnx", "model.pt": "torchscript/model.pt"}.get(entry["path"])
        if path:
            assert sha256(files[path]) == entry["sha256"]
    description = hub.pr_description(REPO, 1)
    assert f"sha={sha_a}" in description and "Export passed" in description
    assert 'revision="refs/pr/1"' in description and "onnxruntime" in description
    assert "enabled: false" in description and "`torchscript/model.pt`" in description
    assert BOT_TOKEN not in description and BOT_TOKEN not in json.dumps(report)

    # 2. the same delivery again → the same job, no second PR
    replay = next(d for d in hub.deliveries if d.status == 202)
    again = hub_webhooks.send_webhook(replay.url, replay.payload, secret=bot.secret)  # type: ignore[attr-defined]
    assert again.status == 202 and json.loads(again.body)["job_id"] == job_a
    time.sleep(1.0)
    assert len(hub.pull_requests(REPO)) == 1 and bot.job(job_a)["status"] == "succeeded"

    # 3. a wrong secret → 403 and no job
    jobs_before = len(bot.jobs())
    wrong = hub_webhooks.send_webhook(replay.url, replay.payload, secret="not-the-secret")
    assert wrong.status == 403 and len(bot.jobs()) == jobs_before

    # 4. a new commit, then one that cannot validate (atol: 0, rtol: 0); kill the server with both accepted
    # other weights (seed 1's tiny random classifier has logits near 0.01, where q8's rounding moves
    # their direction below the 0.99 cosine the default q8 variant must reach: its export fails)
    sha_b = upload_checkpoint(api, build_sample_checkpoint(tmp_path / "ckpt-b", seed=2), "retrained")
    job_b = json.loads(delivery_for(hub, sha_b).body)["job_id"]
    sha_c = api.upload_file(path_or_fileobj=b"atol: 0\nrtol: 0\n", path_in_repo=".export-bot.yaml", repo_id=REPO).oid
    delivery_c = delivery_for(hub, sha_c)
    assert delivery_c.status == 202
    job_c = json.loads(delivery_c.body)["job_id"]
    bot.kill()
    store = open_store(bot.env["EXPORT_BOT_STORE_URL"])
    states = {job: store.get(job).status for job in (job_b, job_c)}
    store.close()
    assert set(states.values()) <= {"queued", "running"}, states  # on disk, unfinished: nothing lost
    bot.start()

    # 5. after the restart: the new commit's PR supersedes the old one; the failing one opens none, but a
    #    discussion with the report tells the author why (it takes #2 or #3, whichever job ran first)
    done_b = bot.finished(job_b)
    assert done_b["status"] == "succeeded", done_b
    done_c = bot.finished(job_c)
    assert done_c["status"] == "failed" and "validation failed" in done_c["reason"], done_c
    prs = hub.pull_requests(REPO)
    new_pr = int(done_b["pr_url"].rsplit("/", 1)[1])
    assert [(pr.num, pr.status) for pr in prs] == [(1, "closed"), (new_pr, "open")] and new_pr in (2, 3)
    assert f"sha={sha_b}" in hub.pr_description(REPO, new_pr)
    old_comments = [e["data"]["latest"]["raw"] for e in prs[0].events if e["type"] == "comment"]
    assert any(f"Superseded by #{new_pr}" in text for text in old_comments)
    assert not any(sha_c in hub.pr_description(REPO, pr.num) for pr in prs)
    assert ".export-bot.yaml" not in hub.files_at(REPO, f"refs/pr/{new_pr}")
    [notice] = [d for d in hub.discussions(REPO) if not d.is_pull_request]
    assert (notice.num, notice.status, notice.author) == (5 - new_pr, "open", BOT_USER)
    text = hub.pr_description(REPO, notice.num)
    assert text.startswith(f"<!-- export-bot-failure: sha={sha_c} -->") and f"**Why:** {done_c['reason']}" in text
    assert "Export failed" in text and "| onnx |" in text and "❌" in text  # the exporter's report
    assert "`atol`" in text and "notify_failures: false" in text and BOT_TOKEN not in text


@pytest.mark.heavy
def test_seq2seq_with_past_is_published_in_the_client_layout(tmp_path: Path, hub: FakeHub, bot: BotProcess) -> None:
    """A T5 export with past reaches the PR as the encoder and the merged decoder transformers.js loads."""
    from exporter.sample import build_sample_checkpoint

    api = HfApi(endpoint=hub.url, token=WRITE_TOKEN)
    api.create_repo(REPO)
    # a tiny random T5 whose q8 meets its criterion (most seeds' flat random logits miss it, and a
    # failed default variant fails the job: tests/clients/test_transformers_js.py, Q8_CHECKPOINTS)
    checkpoint = build_sample_checkpoint(tmp_path / "t5", "t5", "seq2seq-lm", seed=0, initializer_factor=1.5)
    (checkpoint / ".export-bot.yaml").write_text("tasks: [seq2seq-lm-with-past]\nformats: [onnx]\n")
    sha = upload_checkpoint(api, checkpoint, "tiny t5")
    done = bot.finished(json.loads(delivery_for(hub, sha).body)["job_id"], timeout=700)
    assert done["status"] == "succeeded", done
    files = hub.files_at(REPO, "refs/pr/1")
    onnx_files = {name for name in files if name.startswith("onnx/") and name.endswith(".onnx")}
    # the bot's default dtypes: fp32 and q8 (docs/bot.md), each as the clients name it
    assert onnx_files == {
        "onnx/encoder_model.onnx",
        "onnx/decoder_model_merged.onnx",
        "onnx/encoder_model_quantized.onnx",
        "onnx/decoder_model_merged_quantized.onnx",
    }
    report = json.loads(files["onnx/report.json"])
    assert (report["model"], report["revision"], report["task"]) == (REPO, sha, "seq2seq-lm-with-past")
    description = hub.pr_description(REPO, 1)
    assert f"`{REPO}`" in description and "/snapshot" not in description
