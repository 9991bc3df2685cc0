"""Workers: claim a job, keep its lease alive while the pipeline runs, record how it ended.

``JobError`` decides the end: transient → back to the queue with backoff for the retry window;
permanent → failed; :class:`SkipJob` → skipped; anything else (a bug) → retried a bounded number of
times. A worker that dies leaves the job ``running`` until its lease runs out, then another worker
claims it again. A worker asked to stop (:meth:`WorkerPool.stop`) finishes its job within the grace
period or hands it back: the lease is released and the attempt is not counted.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.errors import PermanentJobError, SkipJob, TransientJobError
from bot.jobs.model import Job, JobStore, Outcome

log = logging.getLogger(__name__)

HANDED_BACK = "handed back unfinished when its worker stopped (attempt not counted)"
#: After the grace period: how long a cancelled job gets to notice (its sandbox was killed) before
#: the pool releases its lease from outside (a thread stuck in a long download).
CANCEL_SECONDS = 5.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """One worker loop over a store; the job logic is a callable (the pipeline).

    ``on_cancel(job)`` is called when the pool gives up waiting for the job: it stops the job's
    sandbox, so the pipeline returns early and the job is handed back.
    """

    def __init__(
        self,
        store: JobStore,
        run_job: Callable[[Job], Outcome],
        *,
        lease_seconds: float,
        poll_seconds: float = 1.0,
        name: str | None = None,
        on_cancel: Callable[[Job], None] | None = None,
    ) -> None:
        self.store = store
        self.run_job = run_job
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.name = name or worker_name()
        self.on_cancel = on_cancel
        self._cancelled = threading.Event()
        self._lock = threading.Lock()
        self._current: Job | None = None

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._current is not None

    def run_once(self) -> Job | None:
        """Claim and run one job; ``None`` when nothing was ready."""
        job = self.store.claim(self.name, self.lease_seconds)
        return None if job is None else self.run_claimed(job)

    def run_job_id(self, job_id: str) -> Job | None:
        """Claim and run this job (a queue message named it); ``None`` when it is not to run now."""
        if self._cancelled.is_set():
            return None
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
        with self._lock:
            self._current = job
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job.id, stop), daemon=True)
        beat.start()
        try:
            self._run(job)
        finally:
            stop.set()
            beat.join()
            with self._lock:
                self._current = None
        return self.store.get(job.id)

    def _run(self, job: Job) -> None:
        try:
            outcome: Outcome | Exception = self.run_job(job)
        except Exception as e:  # recorded below
            outcome = e
        if self._cancelled.is_set() and isinstance(outcome, Exception):
            log.info("job %s: handed back (%s: %s)", job.id, type(outcome).__name__, outcome)
            recorded = self.store.release(job.id, self.name, HANDED_BACK)
        else:
            recorded = self._record(job, outcome)
        if not recorded:
            log.warning("job %s: lease lost before the outcome was recorded; another worker owns it", job.id)

    def _record(self, job: Job, outcome: Outcome | Exception) -> bool:
        if isinstance(outcome, SkipJob):
            log.info("job %s skipped: %s", job.id, outcome.reason)
            return self.store.finish(job.id, self.name, "skipped", outcome.reason)
        if isinstance(outcome, TransientJobError):
            log.warning("job %s: transient error, will retry: %s", job.id, outcome)
            return self.store.retry_later(job.id, self.name, outcome.reason, transient=True)
        if isinstance(outcome, PermanentJobError):
            log.info("job %s failed: %s", job.id, outcome)
            return self.store.finish(job.id, self.name, "failed", outcome.reason)
        if isinstance(outcome, Exception):  # a bug or an unforeseen outside failure: bounded retries
            log.error("job %s: unexpected error", job.id, exc_info=outcome)
            reason = f"internal error: {type(outcome).__name__}: {outcome}"
            return self.store.retry_later(job.id, self.name, reason, transient=False)
        if outcome.pr_commit:
            self.store.record_bot_commit(outcome.pr_commit)
        log.info("job %s %s: %s", job.id, outcome.status, outcome.reason)
        return self.store.finish(job.id, self.name, outcome.status, outcome.reason, outcome.pr_url)

    def cancel(self) -> None:
        """Stop taking jobs; stop the running job's sandbox so that it is handed back."""
        self._cancelled.set()
        with self._lock:
            job = self._current
        if job is not None and self.on_cancel is not None:
            self.on_cancel(job)

    def hand_back(self) -> bool:
        """Release the running job's lease from outside (its thread is stuck); ``False`` if none was held."""
        with self._lock:
            job = self._current
        return job is not None and self.store.release(job.id, self.name, HANDED_BACK)

    def _heartbeat(self, job_id: str, stop: threading.Event) -> None:
        while not stop.wait(self.lease_seconds / 3):
            if not self.store.heartbeat(job_id, self.name, self.lease_seconds):
                log.warning("worker %s lost the lease of job %s", self.name, job_id)
                return

    def run_forever(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set; errors of the store are logged, not fatal."""
        while not stop.is_set() and not self._cancelled.is_set():
            try:
                ran = self.run_once()
            except Exception:
                log.exception("worker %s: store error", self.name)
                ran = None
            if ran is None:
                stop.wait(self.poll_seconds)


@dataclass
class WorkerPool:
    """The workers running in this process (threads, or Dramatiq's threads) and how to stop them."""

    stop_event: threading.Event
    threads: list[threading.Thread]
    workers: list[Worker] = field(default_factory=list)

    def alive(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)

    def stop(self, grace_seconds: float) -> None:
        """Take no new job; let running jobs finish for ``grace_seconds``, then hand them back."""
        self.stop_event.set()
        deadline = time.monotonic() + grace_seconds
        while self._busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        busy = self._busy()
        for worker in list(self.workers):
            worker.cancel()
        if busy:
            log.warning("stopping: %d job(s) still running after %g s, handing them back", len(busy), grace_seconds)
            deadline = time.monotonic() + CANCEL_SECONDS
            while self._busy() and time.monotonic() < deadline:
                time.sleep(0.05)
            for worker in self._busy():
                worker.hand_back()
        for thread in self.threads:
            thread.join(CANCEL_SECONDS)

    def _busy(self) -> list[Worker]:
        return [worker for worker in list(self.workers) if worker.busy]
