"""The access log, written by the bot instead of uvicorn's: query values are redacted.

The Hub can send the webhook secret as ``?secret=``; uvicorn's access log prints the query string as
it came. This ASGI middleware logs one line per request — client, method, path, query with every
value but the harmless ones replaced, HTTP version, status, milliseconds — on the
``bot.web.access`` logger. ``export-bot serve`` turns uvicorn's own access log off.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import parse_qsl, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("bot.web.access")

#: Query parameters whose values are logged; every other value is written as ``<redacted>``.
LOGGED_QUERY_VALUES = frozenset({"limit", "status"})
REDACTED = "<redacted>"


def redacted_target(path: str, query: bytes) -> str:
    """``/webhooks/hub?secret=abc&limit=5`` → ``/webhooks/hub?secret=<redacted>&limit=5``."""
    if not query:
        return path
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    shown = [f"{quote(name)}={quote(value) if name in LOGGED_QUERY_VALUES else REDACTED}" for name, value in pairs]
    return f"{path}?{'&'.join(shown)}" if shown else f"{path}?{REDACTED}"


class AccessLog:
    """One log line per HTTP request, secrets left out."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # if the app fails before answering, the server's error handler answers 500
        start = time.monotonic()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            client = scope.get("client")
            log.info(
                '%s - "%s %s HTTP/%s" %d %.1f ms',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                redacted_target(scope["path"], scope.get("query_string", b"")),
                scope.get("http_version", "1.1"),
                status,
                (time.monotonic() - start) * 1000,
            )
