"""Builders for Hub webhook (v3) payloads, and a helper that delivers one over HTTP like the Hub does.

Shapes follow what the Hub sends (see huggingface_hub `_webhooks_payload.py`); note the Hub spells the
repo head as `headSha`.
"""

from __future__ import annotations

import hashlib
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

RepoType = Literal["model", "dataset", "space"]
_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def _oid(*parts: object) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:24]


def repo_block(
    repo_id: str,
    *,
    head_sha: str | None,
    repo_type: RepoType = "model",
    private: bool = False,
    endpoint: str = "https://huggingface.co",
) -> dict[str, Any]:
    """The `repo` object of a payload."""
    prefix = _PREFIXES[repo_type]
    block: dict[str, Any] = {
        "type": repo_type,
        "name": repo_id,
        "id": _oid("repo", repo_type, repo_id),
        "private": private,
        "url": {"web": f"{endpoint}/{prefix}{repo_id}", "api": f"{endpoint}/api/{repo_type}s/{repo_id}"},
        "owner": {"id": _oid("user", repo_id.split("/")[0])},
        "tags": [],
    }
    if head_sha is not None:
        block["headSha"] = head_sha
    return block


def repo_update_payload(
    repo_id: str,
    *,
    new_sha: str,
    old_sha: str | None = None,
    ref: str = "refs/heads/main",
    head_sha: str | None = None,
    repo_type: RepoType = "model",
    private: bool = False,
    webhook_id: str = "6566b5f1d0c1d2e3f4a5b6c7",
    endpoint: str = "https://huggingface.co",
) -> dict[str, Any]:
    """Payload of a push (`event: {action: update, scope: repo.content}`) moving `ref` to `new_sha`."""
    return {
        "event": {"action": "update", "scope": "repo.content"},
        "repo": repo_block(
            repo_id,
            head_sha=head_sha or new_sha,
            repo_type=repo_type,
            private=private,
            endpoint=endpoint,
        ),
        "updatedRefs": [{"ref": ref, "oldSha": old_sha, "newSha": new_sha}],
        "webhook": {"id": webhook_id, "version": 3},
    }


def discussion_payload(
    repo_id: str,
    *,
    num: int,
    title: str,
    author: str,
    is_pull_request: bool,
    status: str,
    action: Literal["create", "update", "delete"] = "create",
    head_sha: str | None = None,
    base: str = "refs/heads/main",
    comment: str | None = None,
    repo_type: RepoType = "model",
    private: bool = False,
    webhook_id: str = "6566b5f1d0c1d2e3f4a5b6c7",
    endpoint: str = "https://huggingface.co",
) -> dict[str, Any]:
    """Payload of a discussion / pull request event (`scope: discussion`)."""
    web = f"{endpoint}/{_PREFIXES[repo_type]}{repo_id}/discussions/{num}"
    payload: dict[str, Any] = {
        "event": {"action": action, "scope": "discussion"},
        "repo": repo_block(repo_id, head_sha=head_sha, repo_type=repo_type, private=private, endpoint=endpoint),
        "discussion": {
            "id": _oid("discussion", repo_id, num),
            "num": num,
            "title": title,
            "author": {"id": _oid("user", author)},
            "url": {"web": web, "api": f"{endpoint}/api/{repo_type}s/{repo_id}/discussions/{num}"},
            "isPullRequest": is_pull_request,
            "status": status,
            "pinned": False,
        },
        "webhook": {"id": webhook_id, "version": 3},
    }
    if is_pull_request:
        payload["discussion"]["changes"] = {"base": base}
    if comment is not None:
        payload["comment"] = {
            "id": _oid("comment", repo_id, num, comment),
            "author": {"id": _oid("user", author)},
            "content": comment,
            "hidden": False,
            "url": {"web": web},
        }
    return payload


@dataclass(frozen=True)
class DeliveryResult:
    """Outcome of one webhook POST: HTTP status (None if no answer) and body or error text."""

    status: int | None
    body: str


def send_webhook(url: str, payload: dict[str, Any], *, secret: str | None, timeout: float = 10.0) -> DeliveryResult:
    """POST `payload` as JSON with the Hub's `X-Webhook-Secret` header; never raises on HTTP errors."""
    headers = {"Content-Type": "application/json", "User-Agent": "huggingface.co webhooks (fake)"}
    if secret is not None:
        headers["X-Webhook-Secret"] = secret
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return DeliveryResult(response.status, response.read().decode(errors="replace"))
    except urllib.error.HTTPError as e:
        return DeliveryResult(e.code, e.read().decode(errors="replace"))
    except (OSError, TimeoutError) as e:
        return DeliveryResult(None, repr(e))
