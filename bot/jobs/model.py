"""The job record, the store Protocol every backend implements, the retry policy, and how a job ends."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

JobStatus = Literal["queued", "running", "succeeded", "failed", "skipped"]
STATUSES: tuple[JobStatus, ...] = ("queued", "running", "succeeded", "failed", "skipped")
FINAL: frozenset[str] = frozenset({"succeeded", "failed", "skipped"})


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """What to export: one repo at one commit with one set of export settings.

    ``private`` (the webhook's ``repo.private``) is not part of the key: a later delivery saying the
    repo is private marks the existing job private, never the reverse.
    """

    repo: str
    sha: str
    settings: str  # fingerprint of the bot-side export settings
    private: bool = False

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
    private: bool = False
    failing_since: float | None = None  # first transient error of the current run of retries
    transient_failures: int = 0  # attempts that ended in a transient error

    @property
    def strikes(self) -> int:
        """Attempts that did not end in a transient error: bounded by ``RetryPolicy.max_attempts``."""
        return self.attempts - self.transient_failures

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """When a failed attempt is tried again.

    Transient errors (Hub 5xx, timeouts, network) are retried for ``window_seconds`` after the first
    one, however many attempts that takes; other errors (a bug, a worker that died) for at most
    ``max_attempts`` attempts. The delay is ``base · 2^(n-1)`` capped at ``max_seconds``.
    """

    max_attempts: int = 5
    base_seconds: float = 30.0
    max_seconds: float = 600.0
    window_seconds: float = 24 * 3600.0

    def delay(self, attempts: int) -> float:
        return float(min(self.base_seconds * 2 ** max(attempts - 1, 0), self.max_seconds))


def give_up_reason(policy: RetryPolicy, job: Job, now: float, reason: str, *, transient: bool) -> str | None:
    """Why a failed attempt is the last one, or ``None`` when the job is to be tried again."""
    if transient:
        since = job.failing_since if job.failing_since is not None else now
        if now - since >= policy.window_seconds:
            window = duration(policy.window_seconds)
            return f"gave up after {window} of transient errors ({job.attempts} attempts): {reason}"
        return None
    if job.strikes >= policy.max_attempts:
        return f"gave up after {job.strikes} attempts: {reason}"
    return None


def duration(seconds: float) -> str:
    """``90`` → ``1.5 min``; ``86400`` → ``24 h``: for reasons people read."""
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds:.3g} s"


@dataclass(frozen=True)
class Outcome:
    """How a job ended well: succeeded (with a PR) or skipped (with the reason)."""

    status: Literal["succeeded", "skipped"]
    reason: str
    pr_url: str | None = None
    pr_commit: str | None = None


class JobStore(Protocol):
    """Durable jobs: enqueue once, claim with a lease, finish or retry later."""

    def enqueue(self, spec: JobSpec) -> tuple[Job, bool]:
        """Store the job durably; ``(job, False)`` when the same key already exists."""
        ...

    def claim(self, worker: str, lease_seconds: float) -> Job | None: ...

    def claim_job(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        """Take this job if it is due (or its lease ran out); ``None`` if it is not to be run now."""
        ...

    def heartbeat(self, job_id: str, worker: str, lease_seconds: float) -> bool: ...

    def finish(
        self, job_id: str, worker: str, status: JobStatus, reason: str | None, pr_url: str | None = None
    ) -> bool: ...

    def retry_later(self, job_id: str, worker: str, reason: str, *, transient: bool = True) -> bool:
        """Back to the queue with backoff, or failed once the policy gives up (see :class:`RetryPolicy`)."""
        ...

    def release(self, job_id: str, worker: str, reason: str) -> bool:
        """Hand a running job back unfinished (a worker stopping): queued now, the attempt not counted."""
        ...

    def requeue(self, job_id: str) -> Job: ...

    def get(self, job_id: str) -> Job: ...

    def recent(self, limit: int = 50, status: JobStatus | None = None) -> list[Job]: ...

    def counts(self) -> dict[str, int]: ...

    def record_bot_commit(self, sha: str) -> None: ...

    def is_bot_commit(self, sha: str) -> bool: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...
