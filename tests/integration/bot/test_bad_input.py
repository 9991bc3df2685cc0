"""Bad input: each hostile delivery or checkpoint gets its precise answer, and the service keeps serving.

Cases already covered elsewhere are not repeated here: the basic secret checks, ``Content-Length`` and
chunked bodies over the cap, plain malformed JSON and wrong shapes (``test_app.py``); a single weight
file over the limit and an invalid ``.export-bot.yaml`` (``test_worker.py``); a pickle payload that
tries to steal the token, phone home and write outside (``test_worker.py``, ``test_sandbox.py``);
symlinks planted in the sandbox output (``test_outputs.py``).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.errors import CheckpointRejectedError
from bot.hub import HubClient
from bot.jobs.model import Job, JobSpec
from bot.jobs.worker import Worker
from bot.pipeline.snapshot import fetch_snapshot, read_listing
from bot.runtime import build_worker
from tests.fakes import hub_webhooks
from tests.fakes.hub import BOT_TOKEN, BOT_USER, FakeHub
from tests.support.bot_fixtures import MODEL_REPO, SECRET, TINY_BERT, make_settings
from tests.support.processes import BotProcess, bot_env, start_serve

SHA = "c" * 40
REPO = MODEL_REPO  # the repo the shared `hub` fixture creates


@dataclass(frozen=True)
class Case:
    """One delivery: body (JSON-able or raw bytes), headers, query; the answer expected."""

    name: str
    status: int
    detail: str
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=lambda: {"X-Webhook-Secret": SECRET})
    params: dict[str, str] = field(default_factory=dict)
    method: str = "POST"


def push(**changes: Any) -> dict[str, Any]:
    payload = hub_webhooks.repo_update_payload("alice/tiny", new_sha=SHA)
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = payload
        for key in parents:
            node = node[key]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return payload


CORPUS = [
    # secrets
    Case("secret-in-wrong-header", 401, "missing webhook secret", push(), headers={"X-Hub-Signature": SECRET}),
    Case("secret-as-bearer", 401, "missing", push(), headers={"Authorization": f"Bearer {SECRET}"}),
    Case("non-ascii-secret-query", 403, "wrong webhook secret", push(), headers={}, params={"secret": "sécret✓"}),
    Case("non-ascii-secret-bytes", 403, "wrong", push(), headers={"X-Webhook-Secret": "s\xe9cret"}),
    Case("huge-secret", 403, "wrong", push(), headers={"X-Webhook-Secret": "x" * 8000}),
    Case("secret-prefix", 403, "wrong", push(), headers={"X-Webhook-Secret": SECRET[:-1]}),
    # malformed JSON
    Case("nested-too-deep", 400, "nested too deeply", raw=b"[" * 100_000),
    Case("truncated", 400, "not JSON", raw=json.dumps(push()).encode()[:-5]),
    Case("utf8-garbage", 400, "not JSON", raw=b'{"event": "\xc3\x28"}'),
    Case("nan-values", 422, "not a Hub webhook", raw=b'{"event": NaN, "repo": Infinity}'),
    # missing or wrong fields
    Case("missing-repo-name", 422, "not a Hub webhook", push(**{"repo.name": None})),
    Case("missing-scope", 422, "not a Hub webhook", push(**{"event.scope": None})),
    Case("missing-webhook", 422, "not a Hub webhook", push(webhook=None)),
    Case("refs-not-a-list", 422, "not a Hub webhook", push(updatedRefs="refs/heads/main")),
    Case("repo-name-traversal", 422, "not a Hub webhook", push(**{"repo.name": "../../etc/passwd"})),
    Case("repo-name-too-deep", 422, "not a Hub webhook", push(**{"repo.name": "alice/tiny/../x"})),
    Case("sha-not-hex", 200, "not a commit id", push(updatedRefs=[{"ref": "refs/heads/main", "newSha": "z" * 40}])),
    # unknown scopes, actions and repo types
    Case("scope-repo-config", 200, "scope repo.config", push(**{"event.scope": "repo.config"})),
    Case("scope-discussion-comment", 200, "scope discussion.comment", push(**{"event.scope": "discussion.comment"})),
    Case("action-move", 200, "action move", push(**{"event.action": "move"})),
    Case("action-unknown", 422, "not a Hub webhook", push(**{"event.action": "explode"})),
    Case("repo-type-collection", 422, "not a Hub webhook", push(**{"repo.type": "collection"})),
    # size (a body really over the cap is in test_app.py) and method
    Case(
        "declared-terabyte",
        413,
        "over the",
        raw=b"{}",
        headers={"X-Webhook-Secret": SECRET, "Content-Length": str(10**12)},
    ),
    Case("wrong-method", 405, "Method Not Allowed", method="GET"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``export-bot serve`` (SQLite store, no workers) shared by the whole corpus."""
    tmp = tmp_path_factory.mktemp("bad-input")
    env = bot_env(tmp, "http://127.0.0.1:9", f"sqlite:///{tmp / 'jobs.sqlite3'}")
    process: BotProcess | None = None
    try:
        process, url = start_serve(env, tmp / "serve.log")
        yield url
    finally:
        if process is not None:
            process.kill9()


def send(url: str, case: Case) -> tuple[int, str]:
    """Raw HTTP/1.1 on a socket, so headers (a lying Content-Length, latin-1 bytes) go out as written."""
    if case.raw is not None:
        body = case.raw
    elif case.body is not None:
        body = json.dumps(case.body).encode()
    else:
        body = b""
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body)), **case.headers}
    query = str(httpx.QueryParams(case.params))
    target = "/webhooks/hub" + (f"?{query}" if query else "")
    host, port = url.removeprefix("http://").split(":")
    head = f"{case.method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + (body if int(headers["Content-Length"]) == len(body) else b""))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2].decode("utf-8", "replace")


@pytest.mark.parametrize("case", CORPUS, ids=lambda c: c.name)
def test_bad_delivery_gets_its_answer(server: str, case: Case) -> None:
    status, body = send(server, case)
    assert status == case.status, body
    assert case.detail in body, body
    assert httpx.get(f"{server}/jobs").json() == []  # nothing bad ever became a job


def test_service_still_serves_after_the_whole_corpus(server: str) -> None:
    for case in CORPUS:
        assert send(server, case)[0] == case.status, case.name
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    good = send(server, Case("good", 202, "job_id", push(**{"repo.name": "alice/good"})))
    assert good[0] == 202 and json.loads(good[1])["duplicate"] is False
    assert [job["repo"] for job in httpx.get(f"{server}/jobs").json()] == ["alice/good"]


# ---- hostile checkpoints: each fails with its reason, before any export (and, where said, download)

BERT = TINY_BERT
WEIGHTS = {"model.safetensors": b"x" * 64}


def make_worker(tmp_path: Path, hub: FakeHub, **overrides: Any) -> Worker:
    settings = make_settings(
        tmp_path, hf_endpoint=hub.url, hf_token=BOT_TOKEN, bot_user=BOT_USER, sandbox="process", **overrides
    )
    return build_worker(settings)


def run(worker: Worker, sha: str) -> Job:
    worker.store.enqueue(JobSpec(repo=REPO, sha=sha, settings="t"))
    job = worker.run_once()
    assert job is not None
    return job


def config(**sizes: Any) -> bytes:
    return json.dumps({**BERT, **sizes}).encode()


MiB = 1 << 20
NOTHING: set[str] = set()
CONFIG_ONLY = {"config.json"}
HOSTILE = [  # name, files, reason, the files fetched (never a weight), checkpoint limit
    (
        "traversal-up",
        {"config.json": config(), **WEIGHTS, "../../outside.json": b"{}"},
        "unsafe file name",
        NOTHING,
        MiB,
    ),
    (
        "traversal-inner",
        {"config.json": config(), **WEIGHTS, "sub/../../x.json": b"{}"},
        "unsafe file name",
        NOTHING,
        MiB,
    ),
    ("backslash-name", {"config.json": config(), **WEIGHTS, "a\\..\\b.json": b"{}"}, "unsafe file name", NOTHING, MiB),
    ("absurd-hidden-size", {"config.json": config(hidden_size=10**7), **WEIGHTS}, "asks for about", CONFIG_ONLY, MiB),
    ("absurd-layers", {"config.json": config(num_hidden_layers=10**9), **WEIGHTS}, "asks for about", CONFIG_ONLY, MiB),
    ("size-not-a-number", {"config.json": config(hidden_size="huge"), **WEIGHTS}, "not a size", CONFIG_ONLY, MiB),
    ("size-float", {"config.json": config(vocab_size=1e30), **WEIGHTS}, "not a size", CONFIG_ONLY, MiB),
    (
        "config-not-json",
        {"config.json": b"{model_type: bert", **WEIGHTS},
        "config.json is not valid JSON",
        CONFIG_ONLY,
        MiB,
    ),
    (
        "config-over-1mb",  # refused by the listed size: not one byte of it fetched
        {"config.json": config(pad="x" * MiB), **WEIGHTS},
        "config.json is 1,048,805 bytes, over the 1,048,576 bytes limit (not downloaded)",
        NOTHING,
        4 * MiB,
    ),
    (
        "repo-config-over-64kb",
        {"config.json": config(), **WEIGHTS, ".export-bot.yaml": b"#" * 70_000},
        ".export-bot.yaml is 70,000 bytes, over the 65,536 bytes limit (not downloaded)",
        NOTHING,
        MiB,
    ),
    (
        "shards-over-limit",
        {
            "config.json": config(),
            "model-00001-of-00002.safetensors": b"x" * 3000,
            "model-00002-of-00002.safetensors": b"y" * 3000,
        },
        "over the 4096 bytes limit",
        NOTHING,
        4096,
    ),
]


@pytest.mark.parametrize(("files", "reason", "fetched", "limit"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_hostile_checkpoint_fails_with_its_reason(
    tmp_path: Path, hub: FakeHub, files: dict[str, bytes], reason: str, fetched: set[str], limit: int
) -> None:
    sha = hub.push(REPO, files)
    job = run(make_worker(tmp_path, hub, max_checkpoint_bytes=limit), sha)
    assert job.status == "failed" and job.attempts == 1 and reason in (job.reason or ""), job
    paths = [r.path for r in hub.requests if "/resolve/" in r.path]
    assert {path.rsplit("/", 1)[-1] for path in paths} == fetched, paths
    assert not any(".." in path for path in paths)
    assert not list((tmp_path / "work").rglob("output-*"))  # the sandbox never ran
    assert hub.pull_requests(REPO) == []


def test_symlink_in_the_snapshot_is_refused(tmp_path: Path, hub: FakeHub) -> None:
    """A symlink out of the snapshot (here to the bot's token) is refused before the bot reads any file."""
    token = tmp_path / "token"
    token.write_text(BOT_TOKEN)
    sha = hub.push(REPO, {"config.json": config(), **WEIGHTS})
    dest = tmp_path / "snapshot"
    dest.mkdir()
    (dest / ".export-bot.yaml").symlink_to(token)
    client = HubClient(endpoint=hub.url, token=BOT_TOKEN, bot_user=BOT_USER)
    with pytest.raises(CheckpointRejectedError, match=r"\.export-bot\.yaml is a symlink") as error:
        fetch_snapshot(client, read_listing(client, REPO, sha), dest, 1 << 20)
    assert BOT_TOKEN not in str(error.value)
