"""The operators' pages over real HTTP (uvicorn on loopback): the token, loopback-only access, private repos.

Each page (``/``, ``/jobs``, ``/jobs/{id}``, ``/metrics``) is asked with no token, a wrong one and the right
one; without a configured token, from a direct loopback client and through a proxy. ``/healthz`` answers
anyone and names nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request

from bot.jobs.backends import open_store
from bot.jobs.sqlite_store import SQLiteJobStore
from bot.web.app import create_app
from bot.web.operators import PRIVATE_REPO, Access, operator_access
from bot.web.webhook import Rejection
from tests.fakes import hub_webhooks
from tests.support.bot_fixtures import SECRET, make_settings, serve_in_thread

TOKEN = "operator-token-for-tests"
PUBLIC, PRIVATE = ("alice/public-model", "a" * 40), ("alice/secret-model", "b" * 40)


@pytest.fixture
def store(tmp_path: Path) -> SQLiteJobStore:
    store = open_store(f"sqlite:///{tmp_path / 'jobs.sqlite3'}")
    assert isinstance(store, SQLiteJobStore)
    return store


def serve(tmp_path: Path, store: SQLiteJobStore, token: str | None) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    """The app with two delivered jobs (one of a private repo, already failed with a reason); their ids."""
    app = create_app(make_settings(tmp_path, operator_token=token), store)
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        ids = {}
        for (repo, sha), private in ((PUBLIC, False), (PRIVATE, True)):
            payload = hub_webhooks.repo_update_payload(repo, new_sha=sha, private=private)
            answer = client.post("/webhooks/hub", json=payload, headers={"X-Webhook-Secret": SECRET})
            assert answer.status_code == 202, answer.text
            ids[repo] = answer.json()["job_id"]
        claimed = store.claim_job(ids[PRIVATE[0]], "w", 30)
        assert claimed is not None
        store.finish(claimed.id, "w", "failed", "validation failed in alice/secret-model", "http://hub/pr/9")
        yield client, ids


@pytest.fixture
def with_token(tmp_path: Path, store: SQLiteJobStore) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    yield from serve(tmp_path, store, TOKEN)


@pytest.fixture
def without_token(tmp_path: Path, store: SQLiteJobStore) -> Iterator[tuple[httpx.Client, dict[str, str]]]:
    yield from serve(tmp_path, store, None)


def pages(ids: dict[str, str]) -> list[str]:
    return ["/", "/jobs", "/jobs?limit=1000", f"/jobs/{ids[PRIVATE[0]]}", "/metrics"]


def test_with_a_token_every_page_needs_it(with_token: tuple[httpx.Client, dict[str, str]]) -> None:
    client, ids = with_token
    for page in pages(ids):
        missing = client.get(page)
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer", page
        assert "operator token required" in missing.json()["detail"]
        for header in (f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", "Bearer x"):
            wrong = client.get(page, headers={"Authorization": header})
            assert wrong.status_code == 403 and wrong.json() == {"detail": "wrong operator token"}, page
        assert client.get(page, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        for answer in (missing, wrong):
            assert "secret-model" not in answer.text and "public-model" not in answer.text
        right = client.get(page, headers={"Authorization": f"Bearer {TOKEN}"})
        assert right.status_code == 200, page
    everything = client.get("/jobs", headers={"Authorization": f"bearer {TOKEN}"}).json()
    assert {job["repo"] for job in everything} == {PUBLIC[0], PRIVATE[0]}  # the token sees private repos
    private = next(job for job in everything if job["private"])
    assert (private["sha"], private["pr_url"]) == (PRIVATE[1], "http://hub/pr/9")


def test_without_a_token_loopback_sees_jobs_but_no_private_repo(
    without_token: tuple[httpx.Client, dict[str, str]],
) -> None:
    client, ids = without_token
    for page in pages(ids):
        answer = client.get(page)
        assert answer.status_code == 200, page
        for leak in ("secret-model", PRIVATE[1], PRIVATE[1][:8], "http://hub/pr/9"):
            assert leak not in answer.text, (page, leak)
    jobs = client.get("/jobs").json()
    public = next(job for job in jobs if not job["private"])
    private = next(job for job in jobs if job["private"])
    assert (public["repo"], public["sha"]) == PUBLIC
    assert private["repo"] == PRIVATE_REPO and private["status"] == "failed"
    assert all(private[name] is None for name in ("sha", "key", "reason", "pr_url", "lease_owner"))
    assert "public-model" in client.get("/").text and PRIVATE_REPO in client.get("/").text
    assert 'export_bot_jobs{status="failed"} 1' in client.get("/metrics").text


@pytest.mark.parametrize(
    "header", ["X-Forwarded-For", "Forwarded", "X-Real-IP", "X-Forwarded-Host"], ids=lambda h: h.lower()
)
def test_without_a_token_a_proxied_request_is_refused(
    without_token: tuple[httpx.Client, dict[str, str]], header: str
) -> None:
    """A reverse proxy on the same host connects from loopback: its forwarding header gives it away."""
    client, ids = without_token
    for page in pages(ids):
        answer = client.get(page, headers={header: "203.0.113.7"})
        assert answer.status_code == 403 and "only loopback clients" in answer.json()["detail"], page


def test_healthz_is_open_and_names_nothing(
    with_token: tuple[httpx.Client, dict[str, str]], store: SQLiteJobStore
) -> None:
    client, _ = with_token
    answer = client.get("/healthz")
    assert answer.status_code == 200 and answer.json() == {"status": "ok"}
    store.close()  # the store stops answering: 503, and no detail (it could name the store's address)
    down = client.get("/healthz")
    assert down.status_code == 503 and down.json() == {"status": "unavailable"}


def test_api_docs_are_not_served(without_token: tuple[httpx.Client, dict[str, str]]) -> None:
    client, _ = without_token
    for page in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(page).status_code == 404


def request_from(host: str, headers: dict[str, str] | None = None, authorization: str | None = None) -> Request:
    """A real Starlette request as uvicorn builds it for a client at ``host`` (a remote address cannot be
    reached from the tests: they may only connect to loopback)."""
    raw = [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()]
    if authorization is not None:
        raw.append((b"authorization", authorization.encode()))
    scope = {"type": "http", "method": "GET", "path": "/jobs", "headers": raw, "client": (host, 50000)}
    return Request(scope)


@pytest.mark.parametrize(
    ("host", "token", "authorization", "expected"),
    [
        ("203.0.113.7", None, None, Rejection(403, "x")),
        ("192.168.1.5", None, f"Bearer {TOKEN}", Rejection(403, "x")),  # no token configured: none accepted
        ("127.0.0.1", None, None, Access(private=False)),
        ("127.8.9.10", None, None, Access(private=False)),
        ("::1", None, None, Access(private=False)),
        ("::ffff:203.0.113.7", None, None, Rejection(403, "x")),
        ("testclient", None, None, Rejection(403, "x")),  # not an address at all
        ("203.0.113.7", TOKEN, f"Bearer {TOKEN}", Access(private=True)),
        ("127.0.0.1", TOKEN, None, Rejection(401, "x")),  # with a token, loopback needs it too
        ("127.0.0.1", TOKEN, "Bearer nope", Rejection(403, "x")),
        ("203.0.113.7", TOKEN, f"Token {TOKEN}", Rejection(401, "x")),
    ],
)
def test_operator_access_rules(host: str, token: str | None, authorization: str | None, expected: object) -> None:
    access = operator_access(token, request_from(host, authorization=authorization))
    if isinstance(expected, Rejection):
        assert isinstance(access, Rejection) and access.status == expected.status
    else:
        assert access == expected


def test_private_flag_comes_from_the_delivery(
    with_token: tuple[httpx.Client, dict[str, str]], store: SQLiteJobStore
) -> None:
    _, ids = with_token
    assert store.get(ids[PRIVATE[0]]).private and not store.get(ids[PUBLIC[0]]).private
    assert json.loads(json.dumps(store.get(ids[PRIVATE[0]]).to_dict()))["private"] is True
