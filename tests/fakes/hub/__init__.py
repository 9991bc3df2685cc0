"""A fake Hugging Face Hub on loopback HTTP for tests (`python -m tests.fakes.hub --port P` to run alone).

The real `huggingface_hub` client talks to it unmodified through `endpoint=hub.url` / `HF_ENDPOINT`.
The fake has no Xet storage: clients must run with `HF_HUB_DISABLE_XET=1` (`serve_fake_hub` sets it),
so uploads take the LFS path (preupload → LFS batch → PUT → verify → commit).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from ._server import FakeHub, Fault, RecordedRequest, WebhookDelivery
from ._store import Blob, Commit, Discussion, FakeToken, FakeUser, Repo, Webhook

USER = "alice"
ORG = "alice-org"
BOT_USER = "export-bot"
READ_TOKEN = "hf_fake_alice_read"
WRITE_TOKEN = "hf_fake_alice_write"
BOT_TOKEN = "hf_fake_bot_write"
BOT_READ_TOKEN = "hf_fake_bot_read"

DEFAULT_USERS: dict[str, FakeUser] = {USER: FakeUser(USER, (ORG,)), BOT_USER: FakeUser(BOT_USER)}
DEFAULT_TOKENS: dict[str, FakeToken] = {
    READ_TOKEN: FakeToken(USER, "read"),
    WRITE_TOKEN: FakeToken(USER, "write"),
    BOT_TOKEN: FakeToken(BOT_USER, "write"),
    BOT_READ_TOKEN: FakeToken(BOT_USER, "read"),
}

__all__ = [
    "BOT_READ_TOKEN",
    "BOT_TOKEN",
    "BOT_USER",
    "DEFAULT_TOKENS",
    "DEFAULT_USERS",
    "ORG",
    "READ_TOKEN",
    "USER",
    "WRITE_TOKEN",
    "Blob",
    "Commit",
    "Discussion",
    "FakeHub",
    "FakeToken",
    "FakeUser",
    "Fault",
    "RecordedRequest",
    "Repo",
    "Webhook",
    "WebhookDelivery",
    "configure_client",
    "serve_fake_hub",
]


@contextmanager
def configure_client(endpoint: str) -> Iterator[None]:
    """Point `huggingface_hub` defaults at `endpoint` and disable Xet, in env and constants; restore after."""
    from huggingface_hub import constants

    env = {"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    old_env = {name: os.environ.get(name) for name in env}
    consts = {
        "ENDPOINT": endpoint,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
    }
    old_consts = {name: getattr(constants, name) for name in consts}
    os.environ.update(env)
    for name, value in consts.items():
        setattr(constants, name, value)
    try:
        yield
    finally:
        for name, value in old_consts.items():
            setattr(constants, name, value)
        for name, old in old_env.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


@contextmanager
def serve_fake_hub(
    users: Mapping[str, FakeUser] | None = None,
    tokens: Mapping[str, FakeToken] | None = None,
    *,
    configure: bool = True,
    deliver_webhooks: bool = True,
) -> Iterator[FakeHub]:
    """Start a `FakeHub` on 127.0.0.1 (free port) in a background thread; stop it on exit.

    With `configure=True`, `huggingface_hub` defaults (HF_ENDPOINT, Xet off) point at it meanwhile.
    """
    hub = FakeHub(users, tokens, deliver_webhooks=deliver_webhooks)
    with hub:
        if configure:
            with configure_client(hub.url):
                yield hub
        else:
            yield hub
