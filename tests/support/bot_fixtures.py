"""Bot test fixtures (a pytest plugin of the root conftest): settings, a uvicorn server in a thread, a fake Hub."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from bot.settings import BotSettings
from tests.fakes.hub import FakeHub, serve_fake_hub

SECRET = "s3cret-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_in_thread(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 with real uvicorn; yields the base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)


def make_settings(tmp_path: Path, **overrides: Any) -> BotSettings:
    values: dict[str, Any] = {
        "webhook_secret": SECRET,
        "store_url": f"sqlite:///{tmp_path / 'jobs.sqlite3'}",
        "work_dir": tmp_path / "work",
        "max_body_bytes": 64 * 1024,
        "hf_endpoint": "http://127.0.0.1:9",  # guard: a test that forgets the fake Hub fails fast
        # The bot's logic runs the same in every sandbox; tests about isolation ask for bwrap.
        "sandbox": "process",
        **overrides,
    }
    return BotSettings(**values)


@pytest.fixture(autouse=True)
def _no_settings_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build settings explicitly; the developer's environment must not change them."""
    for name in ("EXPORT_BOT_SETTINGS_FILE", "EXPORT_BOT_WEBHOOK_SECRET", "EXPORT_BOT_SANDBOX", "EXPORT_BOT_STORE_URL"):
        monkeypatch.delenv(name, raising=False)


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis store URL with a key prefix of its own (tests using it carry the ``redis`` marker)."""
    import uuid

    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as e:
        pytest.fail(f"a Redis server on 127.0.0.1:6379 was expected (mark the test 'redis'): {e}")
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    try:
        yield f"{REDIS_URL}?prefix={prefix}"
    finally:
        keys = list(client.scan_iter(f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()


MODEL_REPO = "alice/model"
#: The ``config.json`` of a tiny BERT classifier: what the bot's checks read before any weight.
TINY_BERT = {
    "model_type": "bert",
    "architectures": ["BertForSequenceClassification"],
    "vocab_size": 128,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 37,
    "max_position_embeddings": 64,
}


class Clock:
    """A settable clock for the job stores."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A fake Hub (no webhook deliveries) holding an empty model repo, ``MODEL_REPO``."""
    with serve_fake_hub(deliver_webhooks=False) as hub:
        hub.create_repo(MODEL_REPO)
        yield hub


def open_test_store(kind: str, tmp_path: Path, clock: Clock, policy: Any, redis_url: str | None = None) -> Any:
    """A ``sqlite`` store in ``tmp_path`` or a ``redis`` one at ``redis_url``, on the test's clock."""
    from bot.jobs.engine import parse_redis_url
    from bot.jobs.redis_store import RedisJobStore
    from bot.jobs.sqlite_store import SQLiteJobStore

    if kind == "sqlite":
        return SQLiteJobStore(tmp_path / "jobs.sqlite3", policy=policy, clock=clock)
    import redis

    assert redis_url is not None
    url, prefix = parse_redis_url(redis_url)
    return RedisJobStore(redis.Redis.from_url(url), prefix=prefix, policy=policy, clock=clock)
