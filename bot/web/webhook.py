"""Webhook checks that come before any parsing: the shared secret, the body size cap and read timeout."""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Rejection:
    """An HTTP answer for a delivery the bot refuses."""

    status: int
    detail: str


def check_secret(expected: str, header: str | None, query: str | None) -> Rejection | None:
    """401 when no secret was sent, 403 when it is wrong; compared in constant time."""
    # Header values arrive latin-1 decoded: re-encode to get the bytes the Hub sent.
    sent = header.encode("latin-1", "replace") if header is not None else None
    if sent is None and query is not None:
        sent = query.encode("utf-8", "surrogateescape")
    if sent is None or sent == b"":
        return Rejection(401, "missing webhook secret (X-Webhook-Secret header or ?secret=)")
    if not hmac.compare_digest(sent, expected.encode("utf-8")):
        return Rejection(403, "wrong webhook secret")
    return None


class BodyTooLarge(Exception):
    """The body passed the cap while being read."""


class BodyTimeout(Exception):
    """The whole body did not arrive in time (a stalled or trickling client)."""


async def read_capped(chunks: AsyncIterator[bytes], declared: str | None, cap: int) -> bytes:
    """Read at most ``cap`` bytes: refuse a larger Content-Length at once, stop a longer stream early."""
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise BodyTooLarge(f"body of {declared} bytes is over the {cap} bytes limit")
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > cap:
            raise BodyTooLarge(f"body is over the {cap} bytes limit")
    return bytes(body)


async def read_body(chunks: AsyncIterator[bytes], declared: str | None, cap: int, timeout: float) -> bytes:
    """:func:`read_capped` within ``timeout`` seconds for the whole body."""
    try:
        return await asyncio.wait_for(read_capped(chunks, declared, cap), timeout)
    except TimeoutError:
        raise BodyTimeout(f"the request body did not arrive within {timeout:g} s") from None
