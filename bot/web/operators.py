"""Who may read the operators' pages (``/``, ``/jobs``, ``/metrics``) and what they see.

- ``EXPORT_BOT_OPERATOR_TOKEN`` set: anyone who sends ``Authorization: Bearer <token>`` (compared
  with :func:`hmac.compare_digest`) sees everything; no token → 401, a wrong one → 403.
- Not set: only a *direct* loopback client — peer address 127.0.0.0/8 or ``::1`` and no forwarding
  header (a request relayed by a reverse proxy on the same host is not local) — and private repos
  are shown without name, commit, reason or link. Anyone else → 403.

``/healthz`` stays open and names no repo.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from bot.jobs.model import Job
from bot.web.webhook import Rejection

#: Headers a reverse proxy adds: their presence means the TCP peer is not the client.
FORWARDING_HEADERS = ("forwarded", "x-forwarded-for", "x-real-ip", "x-forwarded-host")
PRIVATE_REPO = "(private repo)"
#: Job fields that could name or identify a private repo (the key is a hash of repo and commit).
_PRIVATE_FIELDS = ("key", "sha", "reason", "pr_url", "lease_owner")


@dataclass(frozen=True)
class Access:
    """A request allowed on the operators' pages; ``private`` whether it may see private repos."""

    private: bool


def operator_access(token: str | None, request: Request) -> Access | Rejection:
    """The access this request has, or the HTTP answer refusing it."""
    if token:
        scheme, _, value = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return Rejection(401, "operator token required: Authorization: Bearer <EXPORT_BOT_OPERATOR_TOKEN>")
        if not hmac.compare_digest(value.strip().encode("utf-8", "surrogateescape"), token.encode("utf-8")):
            return Rejection(403, "wrong operator token")
        return Access(private=True)
    if is_direct_loopback(request):
        return Access(private=False)
    return Rejection(403, "operators' pages answer only loopback clients unless EXPORT_BOT_OPERATOR_TOKEN is set")


def is_direct_loopback(request: Request) -> bool:
    """The peer is this host and no proxy relayed the request."""
    if request.client is None or any(name in request.headers for name in FORWARDING_HEADERS):
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False


def job_view(job: Job, access: Access) -> dict[str, Any]:
    """The job as JSON; a private repo's job without its name, commit, reason or link unless allowed."""
    data = job.to_dict()
    if job.private and not access.private:
        data.update(dict.fromkeys(_PRIVATE_FIELDS), repo=PRIVATE_REPO)
    return data
