"""Typed Hub webhook payloads (version 3) and the filter that turns one into work or a reason.

Only what the bot reads is modelled; unknown fields are allowed (the Hub adds fields over time).
Shapes follow huggingface_hub's ``_webhooks_payload.py``, except that the Hub sends the head
commit as ``repo.headSha``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id
from pydantic import BaseModel, ConfigDict, field_validator

ZERO_SHA = "0" * 40
PR_REF_PREFIX = "refs/pr/"
BRANCH_REF_PREFIX = "refs/heads/"


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


class WebhookEvent(_Model):
    action: Literal["create", "delete", "move", "update"]
    scope: str


class WebhookRepo(_Model):
    type: Literal["model", "dataset", "space"]
    name: str
    id: str | None = None
    private: bool = False
    headSha: str | None = None

    @field_validator("name")
    @classmethod
    def _repo_id(cls, name: str) -> str:
        try:
            validate_repo_id(name)  # huggingface_hub's own rule: namespace/name, no "..", "--", ".git"
        except HFValidationError:
            raise ValueError("not a Hub repo id (namespace/name: letters, digits, '-', '_', '.')") from None
        return name


class UpdatedRef(_Model):
    ref: str
    oldSha: str | None = None
    newSha: str | None = None


class WebhookMeta(_Model):
    id: str
    version: Literal[3]


class HubWebhookPayload(_Model):
    event: WebhookEvent
    repo: WebhookRepo
    webhook: WebhookMeta
    updatedRefs: list[UpdatedRef] | None = None


@dataclass(frozen=True)
class Accepted:
    """A commit to export; ``private`` as the payload says (such jobs never show without the operator token)."""

    repo: str
    sha: str
    private: bool = False


@dataclass(frozen=True)
class Ignored:
    """A well-formed event the bot has nothing to do for."""

    reason: str


def decide(payload: HubWebhookPayload, *, watched_branch: str) -> Accepted | Ignored:
    """Accept only a new commit on the watched branch of a model repo."""
    if payload.repo.type != "model":
        return Ignored(f"not a model repo ({payload.repo.type})")
    if payload.event.scope != "repo.content":
        return Ignored(f"scope {payload.event.scope} is not repo.content")
    if payload.event.action == "delete":
        return Ignored("delete event")
    if payload.event.action != "update":
        return Ignored(f"action {payload.event.action} is not an update")
    return _decide_refs(payload, watched_branch)


def _decide_refs(payload: HubWebhookPayload, branch: str) -> Accepted | Ignored:
    watched = BRANCH_REF_PREFIX + branch
    refs = payload.updatedRefs
    if refs is None:  # older deliveries: headSha is the head of the default branch
        sha = payload.repo.headSha
        if sha is None or not _is_sha(sha):
            return Ignored("no updated ref and no headSha")
        return Accepted(payload.repo.name, sha.lower(), payload.repo.private)
    for ref in refs:
        if ref.ref != watched:
            continue
        if not ref.newSha or ref.newSha == ZERO_SHA:
            return Ignored(f"{watched} was deleted")
        if not _is_sha(ref.newSha):
            return Ignored(f"newSha {ref.newSha!r} is not a commit id")
        return Accepted(payload.repo.name, ref.newSha.lower(), payload.repo.private)
    names = ", ".join(ref.ref for ref in refs) or "none"
    if refs and all(ref.ref.startswith(PR_REF_PREFIX) for ref in refs):
        return Ignored(f"pull request ref only ({names})")
    return Ignored(f"{watched} not updated (updated: {names})")


def _is_sha(value: str | None) -> bool:
    return value is not None and len(value) == 40 and all(c in "0123456789abcdefABCDEF" for c in value)
