"""The embedded job store: SQLite, polled by worker threads in the same process.

SQLite runs in WAL mode with ``synchronous=FULL``: when :meth:`enqueue` returns, the job is on
disk, so the webhook can answer 202. Workers :meth:`claim` a job with a lease and renew it with
:meth:`heartbeat`; a job whose lease ran out (its worker died) is claimed again. Writes by a
worker are guarded by its lease, so a worker that lost its lease cannot overwrite the outcome.

The distributed backend (``redis://``, :mod:`bot.jobs.redis_store` with the Dramatiq glue in
:mod:`bot.jobs.engine`) implements the same Protocol; :mod:`bot.jobs.backends` picks one by URL scheme.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bot.errors import ConfigError, JobNotFoundError, JobStateError, StoreError
from bot.jobs.model import FINAL, STATUSES, Job, JobSpec, JobStatus, JobStore, RetryPolicy, give_up_reason
from bot.jobs.worker import Worker, WorkerPool

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    repo TEXT NOT NULL,
    sha TEXT NOT NULL,
    settings TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('queued','running','succeeded','failed','skipped')),
    attempts INTEGER NOT NULL DEFAULT 0,
    reason TEXT,
    pr_url TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    not_before REAL NOT NULL,
    lease_owner TEXT,
    lease_expires REAL,
    private INTEGER NOT NULL DEFAULT 0,
    failing_since REAL,
    transient_failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs (status, not_before);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
CREATE TABLE IF NOT EXISTS bot_commits (sha TEXT PRIMARY KEY, created_at REAL NOT NULL);
"""
# Columns added after the first release: a store file written by an older bot gets them on open.
_ADDED_COLUMNS = {
    "private": "INTEGER NOT NULL DEFAULT 0",
    "failing_since": "REAL",
    "transient_failures": "INTEGER NOT NULL DEFAULT 0",
}


class SQLiteJobStore:
    """The embedded default: one SQLite file shared by the web process and worker processes."""

    def __init__(
        self, path: Path | str, *, policy: RetryPolicy | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = str(path)
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._lock = threading.Lock()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=30000")
        self._db.executescript(_SCHEMA)
        with self._tx() as db:
            have = {row["name"] for row in db.execute("PRAGMA table_info(jobs)")}
            for name, declaration in _ADDED_COLUMNS.items():
                if name not in have:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {declaration}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """An IMMEDIATE transaction: the write lock is taken up front, so claims never race."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def enqueue(self, spec: JobSpec) -> tuple[Job, bool]:
        now = self._clock()
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO jobs (id, key, repo, sha, settings, status, created_at, updated_at,"
                " not_before, private) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (uuid.uuid4().hex, spec.key, spec.repo, spec.sha, spec.settings, now, now, now, int(spec.private)),
            )
            if spec.private and cursor.rowcount == 0:  # once seen private, always private
                db.execute("UPDATE jobs SET private = 1 WHERE key = ?", (spec.key,))
            row = db.execute("SELECT * FROM jobs WHERE key = ?", (spec.key,)).fetchone()
        return _job(row), cursor.rowcount == 1

    def claim(self, worker: str, lease_seconds: float) -> Job | None:
        """Take the oldest ready job (queued and due, or running with an expired lease)."""
        return self._claim(worker, lease_seconds, "", ())

    def claim_job(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        return self._claim(worker, lease_seconds, " AND id = ?", (job_id,))

    def _claim(self, worker: str, lease_seconds: float, where: str, args: tuple[str, ...]) -> Job | None:
        while True:
            now = self._clock()
            with self._tx() as db:
                row = db.execute(
                    "SELECT * FROM jobs WHERE ((status = 'queued' AND not_before <= ?)"
                    f" OR (status = 'running' AND lease_expires < ?)){where}"
                    " ORDER BY not_before, created_at LIMIT 1",
                    (now, now, *args),
                ).fetchone()
                if row is None:
                    return None
                strikes = row["attempts"] - row["transient_failures"]
                if row["status"] == "running" and strikes >= self.policy.max_attempts:
                    db.execute(
                        "UPDATE jobs SET status = 'failed', reason = ?, finished_at = ?, updated_at = ?,"
                        " lease_owner = NULL, lease_expires = NULL WHERE id = ?",
                        (f"gave up after {strikes} attempts (worker lost)", now, now, row["id"]),
                    )
                    continue
                db.execute(
                    "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_owner = ?,"
                    " lease_expires = ?, started_at = ?, updated_at = ? WHERE id = ?",
                    (worker, now + lease_seconds, now, now, row["id"]),
                )
                return _job(db.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone())

    def heartbeat(self, job_id: str, worker: str, lease_seconds: float) -> bool:
        now = self._clock()
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE jobs SET lease_expires = ?, updated_at = ? WHERE id = ? AND lease_owner = ?"
                " AND status = 'running'",
                (now + lease_seconds, now, job_id, worker),
            )
        return cursor.rowcount == 1

    def finish(
        self, job_id: str, worker: str, status: JobStatus, reason: str | None, pr_url: str | None = None
    ) -> bool:
        if status not in FINAL:
            raise ValueError(f"{status} is not a final status")
        now = self._clock()
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = ?, reason = ?, pr_url = COALESCE(?, pr_url), finished_at = ?,"
                " updated_at = ?, lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (status, reason, pr_url, now, now, job_id, worker),
            )
        return cursor.rowcount == 1

    def retry_later(self, job_id: str, worker: str, reason: str, *, transient: bool = True) -> bool:
        """Back to the queue after an error, or failed once the policy gives up."""
        now = self._clock()
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM jobs WHERE id = ? AND lease_owner = ? AND status = 'running'", (job_id, worker)
            ).fetchone()
            if row is None:
                return False
            job = _job(row)
            failing_since = (job.failing_since if job.failing_since is not None else now) if transient else None
            transient_failures = job.transient_failures + int(transient)
            gave_up = give_up_reason(self.policy, job, now, reason, transient=transient)
            if gave_up is not None:
                db.execute(
                    "UPDATE jobs SET status = 'failed', reason = ?, finished_at = ?, updated_at = ?,"
                    " lease_owner = NULL, lease_expires = NULL, transient_failures = ?,"
                    " failing_since = COALESCE(?, failing_since) WHERE id = ?",
                    (gave_up, now, now, transient_failures, failing_since, job_id),
                )
            else:
                delay = self.policy.delay(transient_failures if transient else job.attempts)
                db.execute(
                    "UPDATE jobs SET status = 'queued', reason = ?, not_before = ?, updated_at = ?,"
                    " lease_owner = NULL, lease_expires = NULL, transient_failures = ?,"
                    " failing_since = COALESCE(?, failing_since) WHERE id = ?",
                    (f"retrying: {reason}", now + delay, now, transient_failures, failing_since, job_id),
                )
        return True

    def release(self, job_id: str, worker: str, reason: str) -> bool:
        now = self._clock()
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'queued', attempts = MAX(attempts - 1, 0), reason = ?, not_before = ?,"
                " updated_at = ?, lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND lease_owner = ? AND status = 'running'",
                (reason, now, now, job_id, worker),
            )
        return cursor.rowcount == 1

    def requeue(self, job_id: str) -> Job:
        """Operator retry: back to queued now, attempts reset."""
        now = self._clock()
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE jobs SET status = 'queued', attempts = 0, reason = 'retried by operator',"
                " not_before = ?, updated_at = ?, finished_at = NULL, failing_since = NULL, transient_failures = 0,"
                " lease_owner = NULL, lease_expires = NULL"
                " WHERE id = ? AND status != 'running'",
                (now, now, job_id),
            )
            row = db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {job_id}")
        if cursor.rowcount == 0:
            raise JobStateError(f"job {job_id} is running; wait for it or for its lease to expire")
        return _job(row)

    def get(self, job_id: str) -> Job:
        with self._lock:
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise JobNotFoundError(f"no job {job_id}")
        return _job(row)

    def recent(self, limit: int = 50, status: JobStatus | None = None) -> list[Job]:
        query, args = "SELECT * FROM jobs", []
        if status is not None:
            query, args = query + " WHERE status = ?", [status]
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created_at DESC LIMIT ?", [*args, limit]).fetchall()
        return [_job(row) for row in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status").fetchall()
        found = {row["status"]: row["n"] for row in rows}
        return {status: found.get(status, 0) for status in STATUSES}

    def record_bot_commit(self, sha: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO bot_commits (sha, created_at) VALUES (?, ?)",
                (sha.lower(), self._clock()),
            )

    def is_bot_commit(self, sha: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM bot_commits WHERE sha = ?", (sha.lower(),)).fetchone()
        return row is not None

    def ping(self) -> None:
        try:
            with self._lock:
                self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise StoreError(f"SQLite store {self.path}: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _job(row: sqlite3.Row) -> Job:
    data = {key: row[key] for key in row.keys()}  # noqa: SIM118 — sqlite3.Row has no iteration of keys
    return Job(**{**data, "private": bool(data["private"])})


def open_sqlite_store(url: str, policy: RetryPolicy) -> SQLiteJobStore:
    """``sqlite:///relative.db`` or ``sqlite:////absolute/path.db``."""
    path = url.removeprefix("sqlite://")
    path = path[1:] if path.startswith("/") else path  # sqlite:///rel.db → rel.db, sqlite:////abs → /abs
    if not path:
        raise ConfigError(f"store URL {url!r} names no file")
    return SQLiteJobStore(path, policy=policy)


def start_polling_workers(store: JobStore, make_worker: Callable[[JobStore], Worker], count: int) -> WorkerPool:
    """``count`` worker threads polling the store; :meth:`WorkerPool.stop` stops them."""
    pool = WorkerPool(threading.Event(), [])
    for i in range(count):
        worker = make_worker(store)
        thread = threading.Thread(
            target=worker.run_forever, args=(pool.stop_event,), name=f"export-worker-{i}", daemon=True
        )
        thread.start()
        pool.threads.append(thread)
        pool.workers.append(worker)
    return pool
