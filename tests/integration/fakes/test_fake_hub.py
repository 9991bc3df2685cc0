"""The fake Hub, exercised only through the real `huggingface_hub` client over loopback HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from huggingface_hub import CommitOperationAdd, HfApi, WebhookPayload, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from tests.fakes.hub import BOT_TOKEN, READ_TOKEN, USER, WRITE_TOKEN, FakeHub, serve_fake_hub

ROOT = Path(__file__).resolve().parents[3]
BIG = 11 * 1000 * 1000


@pytest.fixture(scope="module")
def hub() -> Iterator[FakeHub]:
    with serve_fake_hub() as running:
        yield running


@pytest.fixture
def api(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.url, token=WRITE_TOKEN)


@pytest.fixture
def bot(hub: FakeHub) -> HfApi:
    return HfApi(endpoint=hub.url, token=BOT_TOKEN)


def _new_repo(api: HfApi, name: str, files: dict[str, bytes]) -> tuple[str, str]:
    """Create `alice/<name>` holding `files`; returns (repo_id, head sha)."""
    repo_id = api.create_repo(f"{USER}/{name}").repo_id
    ops = [CommitOperationAdd(path, data) for path, data in files.items()]
    info = api.create_commit(repo_id, operations=ops, commit_message="Add files")
    return repo_id, info.oid


def test_auth_errors(hub: FakeHub, api: HfApi) -> None:
    repo_id, _ = _new_repo(api, "auth", {"a.txt": b"x"})
    assert api.model_info(repo_id).id == repo_id

    with pytest.raises(HfHubHTTPError) as bad:
        HfApi(endpoint=hub.url, token="hf_not_a_token").model_info(repo_id)
    assert bad.value.response.status_code == 401

    with pytest.raises(HfHubHTTPError) as read_only:
        HfApi(endpoint=hub.url, token=READ_TOKEN).create_repo(f"{USER}/nope")
    assert read_only.value.response.status_code == 403

    with pytest.raises(HfHubHTTPError) as anonymous:
        HfApi(endpoint=hub.url, token=False).create_commit(
            repo_id, operations=[CommitOperationAdd("b.txt", b"y")], commit_message="anon"
        )
    assert anonymous.value.response.status_code == 401


def test_private_repo_is_hidden_without_token(hub: FakeHub, api: HfApi) -> None:
    repo_id = api.create_repo(f"{USER}/secret", private=True).repo_id
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info(repo_id)
    assert HfApi(endpoint=hub.url, token=READ_TOKEN).model_info(repo_id).private is True


def test_upload_folder_takes_lfs_path_and_model_info_reports_it(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    folder = tmp_path / "ckpt"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertModel"]}))
    (folder / "README.md").write_text("---\nlicense: mit\n---\n# tiny\n")
    (folder / "sub" / "notes.txt").write_text("notes")
    big = os.urandom(BIG)
    (folder / "weights.bin").write_bytes(big)
    repo_id = api.create_repo(f"{USER}/upload").repo_id

    commit = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message="Upload")

    paths = [r.path for r in hub.requests]
    assert any(p.endswith(".git/info/lfs/objects/batch") for p in paths)
    assert any(p.startswith("/_fake_lfs/upload/") for p in paths)
    assert hub.lfs_files_at(repo_id) == {"weights.bin"}
    assert hub.files_at(repo_id, commit.oid)["weights.bin"] == big

    info = api.model_info(repo_id, files_metadata=True)
    assert info.sha == commit.oid
    siblings = {s.rfilename: s for s in info.siblings or []}
    assert set(siblings) == {".gitattributes", "config.json", "README.md", "sub/notes.txt", "weights.bin"}
    assert siblings["weights.bin"].size == BIG
    assert siblings["weights.bin"].lfs is not None and siblings["weights.bin"].lfs.size == BIG
    assert siblings["sub/notes.txt"].lfs is None and siblings["sub/notes.txt"].size == 5
    assert info.config == {"model_type": "bert", "architectures": ["BertModel"]}


def test_snapshot_download_at_sha_with_allow_patterns(hub: FakeHub, api: HfApi, tmp_path: Path) -> None:
    repo_id, first = _new_repo(api, "snap", {"config.json": b"{}", "model.onnx": b"old", "docs/a.md": b"a"})
    api.create_commit(repo_id, operations=[CommitOperationAdd("model.onnx", b"new")], commit_message="v2")

    path = snapshot_download(
        repo_id,
        revision=first,
        allow_patterns=["*.onnx", "docs/*"],
        cache_dir=tmp_path,
        endpoint=hub.url,
        token=READ_TOKEN,
    )

    got = {str(p.relative_to(path)) for p in Path(path).rglob("*") if p.is_file()}
    assert got == {"model.onnx", "docs/a.md"}
    assert (Path(path) / "model.onnx").read_bytes() == b"old"
    assert Path(path).name == first
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "model.onnx", revision="nope", cache_dir=tmp_path, endpoint=hub.url)


def test_pull_request_flow(hub: FakeHub, api: HfApi, bot: HfApi, tmp_path: Path) -> None:
    repo_id, head = _new_repo(api, "prs", {"config.json": b"{}"})

    commit = bot.create_commit(
        repo_id,
        operations=[CommitOperationAdd("onnx/model.onnx", b"\0onnx-bytes")],
        commit_message="Add ONNX export",
        commit_description="## Validation report\nall good",
        create_pr=True,
        parent_commit=head,
    )
    assert commit.pr_num == 1 and commit.pr_revision == "refs/pr/1"
    assert hub.head(repo_id) == head  # main untouched

    listed = list(bot.get_repo_discussions(repo_id, discussion_type="pull_request", discussion_status="open"))
    assert [(d.num, d.title, d.author, d.is_pull_request) for d in listed] == [
        (1, "Add ONNX export", "export-bot", True)
    ]
    details = bot.get_discussion_details(repo_id, 1)
    assert details.target_branch == "refs/heads/main"
    assert details.conflicting_files == [] and details.merge_commit_oid is None
    assert details.events[0].content.startswith("## Validation report")  # type: ignore[attr-defined]
    assert details.events[1].oid == commit.oid  # type: ignore[attr-defined]

    local = hf_hub_download(repo_id, "onnx/model.onnx", revision="refs/pr/1", cache_dir=tmp_path, endpoint=hub.url)
    assert Path(local).read_bytes() == b"\0onnx-bytes"

    update = bot.create_commit(
        repo_id,
        operations=[CommitOperationAdd("onnx/model.onnx", b"\0onnx-v2")],
        commit_message="Update ONNX export",
        revision="refs/pr/1",
    )
    assert hub.head(repo_id, "refs/pr/1") == update.oid
    assert hub.files_at(repo_id, "refs/pr/1")["onnx/model.onnx"] == b"\0onnx-v2"

    comment = bot.comment_discussion(repo_id, 1, "Superseded by a newer commit.")
    assert comment.content == "Superseded by a newer commit."
    status = bot.change_discussion_status(repo_id, 1, "closed")
    assert status.new_status == "closed"
    assert [pr.status for pr in hub.pull_requests(repo_id)] == ["closed"]
    assert list(bot.get_repo_discussions(repo_id, discussion_status="open")) == []


def test_merge_pull_request_updates_main(hub: FakeHub, api: HfApi, bot: HfApi) -> None:
    repo_id, _ = _new_repo(api, "merge", {"config.json": b"{}"})
    bot.create_commit(
        repo_id, operations=[CommitOperationAdd("model.pt", b"pt")], commit_message="Add pt", create_pr=True
    )
    api.merge_pull_request(repo_id, 1)
    assert hub.files_at(repo_id)["model.pt"] == b"pt"
    assert api.get_discussion_details(repo_id, 1).merge_commit_oid == hub.head(repo_id)


def test_parent_commit_mismatch_is_rejected(hub: FakeHub, api: HfApi) -> None:
    repo_id, first = _new_repo(api, "race", {"a.txt": b"1"})
    api.create_commit(repo_id, operations=[CommitOperationAdd("a.txt", b"2")], commit_message="two")
    with pytest.raises(HfHubHTTPError) as stale:
        api.create_commit(
            repo_id,
            operations=[CommitOperationAdd("a.txt", b"3")],
            commit_message="three",
            parent_commit=first,
        )
    assert stale.value.response.status_code == 412
    assert hub.files_at(repo_id)["a.txt"] == b"2"


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict[str, str], dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((dict(self.headers), json.loads(body)))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_webhooks_api_and_delivery_on_push(hub: FakeHub, api: HfApi) -> None:
    repo_id, _ = _new_repo(api, "hooked", {"a.txt": b"1"})
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_address[1]}/webhook"
        hook = api.create_webhook(
            url=url, watched=[{"type": "model", "name": repo_id}], domains=["repo"], secret="s3cret"
        )
        assert hook.url == url

        before = len(hub.deliveries)
        new = api.create_commit(repo_id, operations=[CommitOperationAdd("a.txt", b"2")], commit_message="2")
        delivery = hub.wait_for_deliveries(before + 1)[-1]
        assert delivery.status == 202
        headers, payload = _Receiver.received[-1]
        assert headers["X-Webhook-Secret"] == "s3cret"
        parsed = WebhookPayload.model_validate(payload)
        assert (parsed.event.action, parsed.event.scope) == ("update", "repo.content")
        assert parsed.repo.name == repo_id and parsed.webhook.id == hook.id and parsed.webhook.version == 3
        assert payload["repo"]["headSha"] == new.oid
        assert payload["updatedRefs"][0]["ref"] == "refs/heads/main"
        assert payload["updatedRefs"][0]["newSha"] == new.oid
    finally:
        receiver.shutdown()
        receiver.server_close()


def test_fault_injection(hub: FakeHub, api: HfApi) -> None:
    repo_id, _ = _new_repo(api, "faulty", {"a.txt": b"1"})
    fault = hub.inject_fault(r"^/api/models/[^/]+/[^/]+$", status=503)
    with pytest.raises(HfHubHTTPError) as failed:
        api.model_info(repo_id)
    assert failed.value.response.status_code == 503 and fault.hits == 1
    assert api.model_info(repo_id).id == repo_id

    hub.inject_fault(r"^/api/models/.+/revision/.+$", delay=0.3)
    start = time.monotonic()
    api.model_info(repo_id, revision="main")
    assert time.monotonic() - start >= 0.3


def test_runs_standalone() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.hub", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stdout is not None
            url = proc.stdout.readline().split()[-1]
            assert (
                HfApi(endpoint=url, token=WRITE_TOKEN).create_repo(f"{USER}/standalone").repo_id == f"{USER}/standalone"
            )
        finally:
            proc.terminate()
            proc.wait(timeout=10)
