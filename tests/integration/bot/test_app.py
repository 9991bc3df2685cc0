"""The web process over real HTTP (uvicorn on loopback): secrets, caps, parsing, filters, dedup."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from bot.errors import ConfigError
from bot.jobs.backends import open_store
from bot.jobs.sqlite_store import SQLiteJobStore
from bot.web.app import create_app
from tests.fakes import hub_webhooks
from tests.support.bot_fixtures import SECRET, make_settings, serve_in_thread

SHA = "c" * 40
URL = "/webhooks/hub"


@pytest.fixture
def store(tmp_path: Path) -> SQLiteJobStore:
    store = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    assert isinstance(store, SQLiteJobStore)
    return store


@pytest.fixture
def base(tmp_path: Path, store: SQLiteJobStore) -> Iterator[str]:
    with serve_in_thread(create_app(make_settings(tmp_path), store, workers=0)) as url:
        yield url


@pytest.fixture
def client(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=10) as client:
        yield client


def push(sha: str = SHA, **kwargs: object) -> dict:
    return hub_webhooks.repo_update_payload("alice/tiny", new_sha=sha, **kwargs)  # type: ignore[arg-type]


def post(client: httpx.Client, payload: object, secret: str | None = SECRET, **kwargs: object) -> httpx.Response:
    headers = {"X-Webhook-Secret": secret} if secret is not None else {}
    return client.post(URL, content=json.dumps(payload), headers=headers, **kwargs)  # type: ignore[arg-type]


def test_accepted_push_is_stored_before_202(client: httpx.Client, store: SQLiteJobStore) -> None:
    response = post(client, push())
    assert response.status_code == 202
    job_id = response.json()["job_id"]
    job = store.get(job_id)
    assert (job.repo, job.sha, job.status) == ("alice/tiny", SHA, "queued")


def test_same_commit_is_the_same_job(client: httpx.Client, store: SQLiteJobStore) -> None:
    first = post(client, push()).json()
    again = post(client, push()).json()
    assert again == {**first, "duplicate": True} and first["duplicate"] is False
    # another webhook id (a second delivery route) for the same commit is still the same job
    third = post(client, push(webhook_id="another-hook")).json()
    assert third["job_id"] == first["job_id"]
    assert store.counts()["queued"] == 1


def test_secret_in_query_parameter(client: httpx.Client) -> None:
    response = client.post(URL, params={"secret": SECRET}, content=json.dumps(push()))
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("secret", "status"), [(None, 401), ("", 401), ("wrong", 403), (SECRET + "x", 403), ("sécret", 403)]
)
def test_secret_checks(client: httpx.Client, store: SQLiteJobStore, secret: str | None, status: int) -> None:
    headers = {"X-Webhook-Secret": secret.encode()} if secret is not None else {}
    response = client.post(URL, content=json.dumps(push()), headers=headers)  # type: ignore[arg-type]
    assert response.status_code == status
    assert store.recent() == []


def test_wrong_secret_query(client: httpx.Client, store: SQLiteJobStore) -> None:
    assert client.post(URL, params={"secret": "nope"}, content=json.dumps(push())).status_code == 403
    assert store.recent() == []


def test_oversized_body_with_content_length(client: httpx.Client, store: SQLiteJobStore) -> None:
    payload = push()
    payload["padding"] = "x" * 100_000
    assert post(client, payload).status_code == 413
    assert store.recent() == []


def test_oversized_chunked_body_is_refused_while_streaming(base: str) -> None:
    """No Content-Length, and the body never ends: the 413 must come from reading, not after it."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            f"POST {URL} HTTP/1.1\r\nHost: {host}\r\nX-Webhook-Secret: {SECRET}\r\n"
            "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b"x" * 16384
        for _ in range(5):  # 80 KB > 64 KB cap, and no terminating chunk
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        answer = sock.recv(4096).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413")


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b"[1, 2"])
def test_malformed_json_is_400(client: httpx.Client, body: bytes) -> None:
    response = client.post(URL, content=body, headers={"X-Webhook-Secret": SECRET})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "payload",
    [
        [],
        {},
        {"event": {"action": "update", "scope": "repo.content"}},
        {**push(), "webhook": {"id": "x", "version": 2}},
        {**push(), "repo": {"type": "bucket", "name": "alice/tiny"}},
    ],
)
def test_wrong_shape_is_422(client: httpx.Client, payload: object) -> None:
    response = post(client, payload)
    assert response.status_code == 422
    assert response.json()["errors"]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (push(ref="refs/pr/1"), "pull request ref"),
        (push(ref="refs/heads/dev"), "not updated"),
        (push(repo_type="dataset"), "not a model repo"),
        (push("0" * 40), "deleted"),
        (
            hub_webhooks.discussion_payload(
                "alice/tiny", num=1, title="t", author="bob", is_pull_request=True, status="open"
            ),
            "scope discussion",
        ),
    ],
)
def test_ignored_events_are_200_with_reason(
    client: httpx.Client, store: SQLiteJobStore, payload: dict, reason: str
) -> None:
    response = post(client, payload)
    assert response.status_code == 200
    assert response.json()["status"] == "ignored" and reason in response.json()["reason"]
    assert store.recent() == []


def test_bot_commit_is_ignored(client: httpx.Client, store: SQLiteJobStore) -> None:
    store.record_bot_commit(SHA)
    response = post(client, push())
    assert response.status_code == 200 and "bot" in response.json()["reason"]


def test_read_only_views(client: httpx.Client, store: SQLiteJobStore) -> None:
    job_id = post(client, push()).json()["job_id"]
    post(client, push(), secret="wrong")
    assert client.get("/healthz").json() == {"status": "ok"}
    jobs = client.get("/jobs").json()
    assert [j["id"] for j in jobs] == [job_id] and jobs[0]["status"] == "queued"
    assert client.get(f"/jobs/{job_id}").json()["sha"] == SHA
    assert client.get("/jobs/nope").status_code == 404
    page = client.get("/")
    assert page.headers["content-type"].startswith("text/html") and "alice/tiny" in page.text
    metrics = client.get("/metrics").text
    assert 'export_bot_jobs{status="queued"} 1' in metrics
    assert 'export_bot_webhooks_total{result="accepted"} 1' in metrics
    assert 'export_bot_webhooks_total{result="forbidden"} 1' in metrics


def test_html_page_escapes_reasons(client: httpx.Client, store: SQLiteJobStore) -> None:
    post(client, push())
    job = store.claim("w", 30)
    assert job is not None
    store.finish(job.id, "w", "failed", "<script>alert(1)</script>")
    assert "<script>alert" not in client.get("/").text


def test_no_secret_configured_refuses_to_start(tmp_path: Path, store: SQLiteJobStore) -> None:
    with pytest.raises(ConfigError):
        create_app(make_settings(tmp_path, webhook_secret=None), store)
