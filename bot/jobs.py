"""The job record shared by every store backend, and the retry policy."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Literal

JobStatus = Literal["queued", "running", "succeeded", "failed", "skipped"]
STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "skipped")
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "skipped"})


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """What to export: one repo at one commit with one set of export settings."""

    repo: str
    sha: str
    settings: str  # fingerprint of the bot-side export settings

    @property
    def key(self) -> str:
        """Dedup key: the same repo + sha + settings is the same job."""
        return hashlib.sha256(f"{self.repo}\0{self.sha}\0{self.settings}".encode()).hexdigest()[:32]


@dataclass(frozen=True, kw_only=True)
class Job:
    """A durable job as stored; times are Unix seconds."""

    id: str
    key: str
    repo: str
    sha: str
    settings: str
    status: JobStatus
    attempts: int
    reason: str | None
    pr_url: str | None
    created_at: float
    updated_at: float
    started_at: float | None
    finished_at: float | None
    not_before: float
    lease_owner: str | None
    lease_expires: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff for transient errors: base · 2^(attempt-1), capped."""

    max_attempts: int = 5
    base_seconds: float = 30.0
    max_seconds: float = 3600.0

    def delay(self, attempts: int) -> float:
        return min(self.base_seconds * 2 ** max(attempts - 1, 0), self.max_seconds)
