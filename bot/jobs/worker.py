"""Workers: claim a job, keep its lease alive while the pipeline runs, record how it ended.

``JobError`` decides the end: transient → back to the queue with backoff; permanent → failed;
:class:`SkipJob` → skipped. A worker that dies leaves the job ``running`` until its lease runs
out, then another worker claims it again.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable

from bot.errors import PermanentJobError, SkipJob, TransientJobError
from bot.jobs.model import Job, JobStore, Outcome

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker loop over a store; the job logic is a callable (the pipeline)."""

    def __init__(
        self,
        store: JobStore,
        run_job: Callable[[Job], Outcome],
        *,
        lease_seconds: float,
        poll_seconds: float = 1.0,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.run_job = run_job
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.name = name or worker_name()

    def run_once(self) -> Job | None:
        """Claim and run one job; ``None`` when nothing was ready."""
        job = self.store.claim(self.name, self.lease_seconds)
        return None if job is None else self.run_claimed(job)

    def run_job_id(self, job_id: str) -> Job | None:
        """Claim and run this job (a queue message named it); ``None`` when it is not to run now."""
        job = self.store.claim_job(job_id, self.name, self.lease_seconds)
        return None if job is None else self.run_claimed(job)

    def run_claimed(self, job: Job) -> Job:
        """Run a job this worker holds the lease of, renewing the lease meanwhile; the job as stored after."""
        log.info(
            "worker %s runs job %s (%s@%s, attempt %d)",
            self.name,
            job.id,
            job.repo,
            job.sha[:8],
            job.attempts,
        )
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, stop), daemon=True)
        beat.start()
        try:
            self._run(job)
        finally:
            stop.set()
            beat.join()
        return self.store.get(job.id)

    def _run(self, job: Job) -> None:
        try:
            outcome = self.run_job(job)
        except SkipJob as e:
            recorded = self.store.finish(job.id, self.name, "skipped", e.reason)
        except TransientJobError as e:
            log.warning("job %s: transient error, will retry: %s", job.id, e)
            recorded = self.store.retry_later(job.id, self.name, e.reason)
        except PermanentJobError as e:
            log.info("job %s failed: %s", job.id, e)
            recorded = self.store.finish(job.id, self.name, "failed", e.reason)
        except Exception as e:  # a bug or an unforeseen outside failure: bounded retries
            log.exception("job %s: unexpected error", job.id)
            recorded = self.store.retry_later(job.id, self.name, f"internal error: {type(e).__name__}: {e}")
        else:
            if outcome.pr_commit:
                self.store.record_bot_commit(outcome.pr_commit)
            recorded = self.store.finish(job.id, self.name, outcome.status, outcome.reason, outcome.pr_url)
        if not recorded:
            log.warning("job %s: lease lost before the outcome was recorded; another worker owns it", job.id)

    def _heartbeat(self, job_id: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            if not self.store.heartbeat(job_id, self.name, self.lease_seconds):
                log.warning("worker %s lost the lease of job %s", self.name, job_id)
                return

    def run_forever(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; errors of the store are logged, not fatal."""
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                log.exception("worker %s: store error", self.name)
                ran = None
            if ran is None:
                stop.wait(self.poll_seconds)
