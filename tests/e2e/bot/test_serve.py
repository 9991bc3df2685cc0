"""A real ``export-bot serve`` process: no secret reaches its log; stalled request bodies get 408.

One server for the module (SQLite store, no worker), body timeout 1 s, an operator token set.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.fakes import hub_webhooks
from tests.support.bot_fixtures import SECRET
from tests.support.processes import BotProcess, bot_env, start_serve, wait_for

OPERATOR_TOKEN = "op-7Hq2-token-never-logged"
WRONG_SECRET = "wr0ng-Secret-never-logged"
STALLED = 50


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, BotProcess]]:
    tmp = tmp_path_factory.mktemp("serve")
    env = bot_env(
        tmp,
        "http://127.0.0.1:9",
        f"sqlite:///{tmp / 'jobs.sqlite3'}",
        operator_token=OPERATOR_TOKEN,
        body_timeout_seconds="1",
    )
    process, url = start_serve(env, tmp / "serve.log")
    try:
        yield url, process
    finally:
        process.kill9()


def payload(sha: str) -> bytes:
    return json.dumps(hub_webhooks.repo_update_payload("alice/tiny", new_sha=sha)).encode()


def test_secrets_never_reach_the_log(server: tuple[str, BotProcess]) -> None:
    url, process = server
    with httpx.Client(base_url=url, timeout=10) as client:
        right = client.post("/webhooks/hub", params={"secret": SECRET}, content=payload("1" * 40))
        wrong = client.post("/webhooks/hub", params={"secret": WRONG_SECRET}, content=payload("2" * 40))
        header = client.post("/webhooks/hub", headers={"X-Webhook-Secret": SECRET}, content=payload("3" * 40))
        jobs = client.get("/jobs", params={"limit": 5}, headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"})
        probe = client.get("/jobs", params={"limit": 5, "token": OPERATOR_TOKEN})
    assert (right.status_code, wrong.status_code, header.status_code) == (202, 403, 202)
    assert (jobs.status_code, probe.status_code) == (200, 401)
    # The access log is written (so the check below can fail), with every query value but limit redacted;
    # a line is written once its response is sent, so it may come a moment after the answer.
    expected = [
        '"POST /webhooks/hub?secret=<redacted> HTTP/1.1" 202',
        '"POST /webhooks/hub?secret=<redacted> HTTP/1.1" 403',
        '"POST /webhooks/hub HTTP/1.1" 202',
        '"GET /jobs?limit=5 HTTP/1.1" 200',
        '"GET /jobs?limit=5&token=<redacted> HTTP/1.1" 401',
    ]
    wait_for(lambda: all(line in process.text() for line in expected), 10, "the access log lines")
    log = process.text()
    for secret in (SECRET, WRONG_SECRET, OPERATOR_TOKEN, SECRET[:10], WRONG_SECRET[:10]):
        assert secret not in log, secret


def stalled_post(port: int, declared: int, sent: bytes) -> socket.socket:
    """A delivery whose headers promise ``declared`` bytes of body, of which only ``sent`` ever arrive."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST /webhooks/hub HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Webhook-Secret: {SECRET}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    )
    sock.sendall(head.encode() + sent)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


def test_stalled_bodies_get_408_and_the_connection_closes(server: tuple[str, BotProcess]) -> None:
    url, _ = server
    port = int(url.rsplit(":", 1)[1])
    socks = [stalled_post(port, 1000, b'{"event": ') for _ in range(STALLED)]
    stop = threading.Event()
    trickled: list[bytes] = []

    def trickle() -> None:  # a slow loris: one byte at a time, never enough to finish in time
        sock = stalled_post(port, 1000, b"")
        with sock:
            for byte in b" " * 1000:
                if stop.wait(0.1):
                    break
                try:
                    sock.sendall(bytes([byte]))
                except OSError:  # the server answered and closed
                    break
            trickled.append(read_until_closed(sock))

    slow = threading.Thread(target=trickle)
    slow.start()
    try:
        answers = [read_until_closed(sock) for sock in socks]  # each recv waits at most 30 s
    finally:
        for sock in socks:
            sock.close()
        slow.join(30)
        stop.set()
    for answer in [*answers, *trickled]:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"did not arrive within 1 s" in answer
    assert len(trickled) == 1
    with httpx.Client(base_url=url, timeout=10) as client:  # still serving
        assert client.get("/healthz").json() == {"status": "ok"}
        good = client.post("/webhooks/hub", headers={"X-Webhook-Secret": SECRET}, content=payload("4" * 40))
        assert good.status_code == 202
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}).text
    assert f'export_bot_webhooks_total{{result="timeout"}} {STALLED + 1}' in metrics


def test_a_complete_slow_body_is_still_accepted(server: tuple[str, BotProcess]) -> None:
    """The timeout is for the whole body: one that arrives in two parts within it is fine."""
    url, _ = server
    body = payload("5" * 40)
    sock = stalled_post(int(url.rsplit(":", 1)[1]), len(body), body[:20])
    with sock:
        time.sleep(0.3)
        sock.sendall(body[20:])
        status = sock.recv(4096).split(b"\r\n", 1)[0]
    assert status == b"HTTP/1.1 202 Accepted"
