"""The job store on Redis: the same states, leases and dedup as SQLite, each change one Lua script.

Keys (all under one prefix, so several bots or tests share a server):

- ``P:job:<id>`` the job as JSON; ``P:key:<dedup key>`` → job id (set once, never overwritten)
- ``P:created`` and ``P:status:<status>`` sorted sets by creation time (listing, counts)
- ``P:due`` queued jobs by the time their message is due; ``P:leases`` running jobs by lease expiry
- ``P:bot_commits`` commits the bot made

A script runs atomically, so the job record, its dedup key and its indexes change together. Every
time a job becomes queued (enqueue, retry, operator retry) the store calls ``dispatch(job_id,
delay)``, which sends the engine's message; :meth:`sweep` finds queued jobs whose message never
came and running jobs whose lease ran out, so a lost message only delays a job.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from bot.errors import JobNotFoundError, JobStateError, StoreError
from bot.jobs.model import FINAL, STATUSES, Job, JobSpec, JobStatus, RetryPolicy, duration

Dispatch = Callable[[str, float], None]
_FIELDS = tuple(Job.__dataclass_fields__)

_LIB = """
local p = ARGV[1]
local function load(id)
  local raw = redis.call('GET', p .. ':job:' .. id)
  if not raw then return nil end
  return cjson.decode(raw)
end
local function save(job, old)
  redis.call('SET', p .. ':job:' .. job.id, cjson.encode(job))
  if old ~= job.status then
    redis.call('ZREM', p .. ':status:' .. old, job.id)
    redis.call('ZADD', p .. ':status:' .. job.status, job.created_at, job.id)
  end
  redis.call('ZREM', p .. ':due', job.id)
  redis.call('ZREM', p .. ':leases', job.id)
  if job.status == 'queued' then redis.call('ZADD', p .. ':due', job.not_before, job.id) end
  if job.status == 'running' then redis.call('ZADD', p .. ':leases', job.lease_expires, job.id) end
  return cjson.encode(job)
end
local function finish(job, status, reason, now)
  local old = job.status
  job.status = status
  job.reason = reason
  job.finished_at = now
  job.updated_at = now
  job.lease_owner = cjson.null
  job.lease_expires = cjson.null
  return save(job, old)
end
local function owned(job, worker)
  return job and job.status == 'running' and job.lease_owner == worker
end
local function num(value, default)
  if value == nil or value == cjson.null then return default end
  return value
end
local function strikes(job)
  return job.attempts - num(job.transient_failures, 0)
end
"""

# ARGV: prefix, key, job json, id, created_at, private 0/1
_ENQUEUE = """
local existing = redis.call('GET', p .. ':key:' .. ARGV[2])
if existing then
  local job = load(existing)
  if ARGV[6] == '1' and job.private ~= true then  -- once seen private, always private
    job.private = true
    return {0, save(job, job.status)}
  end
  return {0, cjson.encode(job)}
end
redis.call('SET', p .. ':key:' .. ARGV[2], ARGV[4])
redis.call('SET', p .. ':job:' .. ARGV[4], ARGV[3])
redis.call('ZADD', p .. ':created', ARGV[5], ARGV[4])
redis.call('ZADD', p .. ':status:queued', ARGV[5], ARGV[4])
redis.call('ZADD', p .. ':due', ARGV[5], ARGV[4])
return {1, ARGV[3]}
"""

# ARGV: prefix, id, worker, now, lease seconds, max attempts → {claimed 0/1, job json or false}
_CLAIM = """
local job = load(ARGV[2])
if not job then return {0, false} end
local now = tonumber(ARGV[4])
if job.status == 'queued' then
  if job.not_before > now then return {0, cjson.encode(job)} end
elseif job.status == 'running' then
  if job.lease_expires ~= cjson.null and job.lease_expires >= now then return {0, cjson.encode(job)} end
  if strikes(job) >= tonumber(ARGV[6]) then
    local why = 'gave up after ' .. strikes(job) .. ' attempts (worker lost)'
    return {0, finish(job, 'failed', why, now)}
  end
else
  return {0, cjson.encode(job)}
end
local old = job.status
job.status = 'running'
job.attempts = job.attempts + 1
job.lease_owner = ARGV[3]
job.lease_expires = now + tonumber(ARGV[5])
job.started_at = now
job.updated_at = now
return {1, save(job, old)}
"""

# ARGV: prefix, id, worker, now, lease seconds
_HEARTBEAT = """
local job = load(ARGV[2])
if not owned(job, ARGV[3]) then return 0 end
job.lease_expires = tonumber(ARGV[4]) + tonumber(ARGV[5])
job.updated_at = tonumber(ARGV[4])
save(job, job.status)
return 1
"""

# ARGV: prefix, id, worker, now, status, reason or '', pr_url or ''
_FINISH = """
local job = load(ARGV[2])
if not owned(job, ARGV[3]) then return 0 end
if ARGV[7] ~= '' then job.pr_url = ARGV[7] end
finish(job, ARGV[5], ARGV[6] ~= '' and ARGV[6] or cjson.null, tonumber(ARGV[4]))
return 1
"""

# ARGV: prefix, id, worker, now, reason, transient 0/1, max attempts, base seconds, max seconds,
#       window seconds, window as text → job json or false (the rules of bot.jobs.model.give_up_reason)
_RETRY_LATER = """
local job = load(ARGV[2])
if not owned(job, ARGV[3]) then return false end
local now, reason, transient = tonumber(ARGV[4]), ARGV[5], ARGV[6] == '1'
local failures = num(job.transient_failures, 0)
local exponent = job.attempts
if transient then
  failures = failures + 1
  exponent = failures
  if num(job.failing_since, nil) == nil then job.failing_since = now end
end
job.transient_failures = failures
local why = nil
if transient and now - job.failing_since >= tonumber(ARGV[10]) then
  why = 'gave up after ' .. ARGV[11] .. ' of transient errors (' .. job.attempts .. ' attempts): ' .. reason
elseif not transient and strikes(job) >= tonumber(ARGV[7]) then
  why = 'gave up after ' .. strikes(job) .. ' attempts: ' .. reason
end
if why then return finish(job, 'failed', why, now) end
local delay = math.min(tonumber(ARGV[8]) * 2 ^ math.max(exponent - 1, 0), tonumber(ARGV[9]))
job.status = 'queued'
job.reason = 'retrying: ' .. reason
job.not_before = now + delay
job.updated_at = now
job.lease_owner = cjson.null
job.lease_expires = cjson.null
return save(job, 'running')
"""

# ARGV: prefix, id, worker, now, reason → job json or false
_RELEASE = """
local job = load(ARGV[2])
if not owned(job, ARGV[3]) then return false end
job.status = 'queued'
job.attempts = math.max(job.attempts - 1, 0)
job.reason = ARGV[5]
job.not_before = tonumber(ARGV[4])
job.updated_at = tonumber(ARGV[4])
job.lease_owner = cjson.null
job.lease_expires = cjson.null
return save(job, 'running')
"""

# ARGV: prefix, id, now → job json, or an error word
_REQUEUE = """
local job = load(ARGV[2])
if not job then return 'missing' end
if job.status == 'running' then return 'running' end
local old = job.status
local now = tonumber(ARGV[3])
job.status = 'queued'
job.attempts = 0
job.reason = 'retried by operator'
job.failing_since = cjson.null
job.transient_failures = 0
job.not_before = now
job.updated_at = now
job.finished_at = cjson.null
job.lease_owner = cjson.null
job.lease_expires = cjson.null
return save(job, old)
"""

# ARGV: prefix, now, grace seconds, limit → ids that need a new message (their deadline moves on)
_SWEEP = """
local now, grace, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local ids = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. ':due', '-inf', now - grace, 'LIMIT', 0, limit)) do
  redis.call('ZADD', p .. ':due', now, id)
  table.insert(ids, id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', p .. ':leases', '-inf', '(' .. now, 'LIMIT', 0, limit)) do
  redis.call('ZADD', p .. ':leases', now + grace, id)
  table.insert(ids, id)
end
return ids
"""


class RedisJobStore:
    """Jobs in Redis; ``dispatch`` sends the engine's message whenever a job becomes queued."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = "export-bot",
        policy: RetryPolicy | None = None,
        dispatch: Dispatch | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.policy = policy or RetryPolicy()
        self.dispatch = dispatch
        self._clock = clock
        scripts = {
            "enqueue": _ENQUEUE,
            "claim": _CLAIM,
            "heartbeat": _HEARTBEAT,
            "finish": _FINISH,
            "retry_later": _RETRY_LATER,
            "release": _RELEASE,
            "requeue": _REQUEUE,
            "sweep": _SWEEP,
        }
        self._scripts = {name: client.register_script(_LIB + body) for name, body in scripts.items()}

    def _run(self, name: str, *args: object) -> Any:
        try:
            return self._scripts[name](args=[self.prefix, *args])  # type: ignore[list-item]
        except redis.RedisError as e:
            raise StoreError(f"Redis store: {name} failed: {e}") from e

    def _send(self, job: Job) -> None:
        if self.dispatch is not None:
            self.dispatch(job.id, max(job.not_before - self._clock(), 0.0))

    def enqueue(self, spec: JobSpec) -> tuple[Job, bool]:
        now = self._clock()
        job = Job(
            id=uuid.uuid4().hex,
            key=spec.key,
            repo=spec.repo,
            sha=spec.sha,
            settings=spec.settings,
            status="queued",
            attempts=0,
            reason=None,
            pr_url=None,
            created_at=now,
            updated_at=now,
            started_at=None,
            finished_at=None,
            not_before=now,
            lease_owner=None,
            lease_expires=None,
            private=spec.private,
        )
        created, raw = self._run(
            "enqueue", spec.key, json.dumps(job.to_dict()), job.id, now, "1" if spec.private else "0"
        )
        stored = _job(raw)
        if created:
            self._send(stored)  # a crash before this line leaves the job to the sweeper
        return stored, bool(created)

    def claim_job(self, job_id: str, worker: str, lease_seconds: float) -> Job | None:
        """Take this job if it is due (or its lease ran out); ``None`` if it is not to be run now."""
        claimed, raw = self._run("claim", job_id, worker, self._clock(), lease_seconds, self.policy.max_attempts)
        return _job(raw) if claimed else None

    def claim(self, worker: str, lease_seconds: float) -> Job | None:
        """Without a message: the first due job (used by polling workers and tests)."""
        now = self._clock()
        for index in ("due", "leases"):
            ids: list[bytes] = self._call(self.client.zrangebyscore, f"{self.prefix}:{index}", "-inf", now, 0, 20)
            for job_id in ids:
                job = self.claim_job(job_id.decode(), worker, lease_seconds)
                if job is not None:
                    return job
        return None

    def heartbeat(self, job_id: str, worker: str, lease_seconds: float) -> bool:
        return bool(self._run("heartbeat", job_id, worker, self._clock(), lease_seconds))

    def finish(
        self, job_id: str, worker: str, status: JobStatus, reason: str | None, pr_url: str | None = None
    ) -> bool:
        if status not in FINAL:
            raise ValueError(f"{status} is not a final status")
        return bool(self._run("finish", job_id, worker, self._clock(), status, reason or "", pr_url or ""))

    def retry_later(self, job_id: str, worker: str, reason: str, *, transient: bool = True) -> bool:
        p = self.policy
        raw = self._run(
            "retry_later",
            job_id,
            worker,
            self._clock(),
            reason,
            "1" if transient else "0",
            p.max_attempts,
            p.base_seconds,
            p.max_seconds,
            p.window_seconds,
            duration(p.window_seconds),
        )
        if not raw:
            return False
        job = _job(raw)
        if job.status == "queued":
            self._send(job)
        return True

    def release(self, job_id: str, worker: str, reason: str) -> bool:
        raw = self._run("release", job_id, worker, self._clock(), reason)
        if not raw:
            return False
        self._send(_job(raw))
        return True

    def requeue(self, job_id: str) -> Job:
        raw = self._run("requeue", job_id, self._clock())
        if raw == b"missing":
            raise JobNotFoundError(f"no job {job_id}")
        if raw == b"running":
            raise JobStateError(f"job {job_id} is running; wait for it or for its lease to expire")
        job = _job(raw)
        self._send(job)
        return job

    def sweep(self, grace_seconds: float, limit: int = 100) -> list[str]:
        """Ids of jobs due for ``grace_seconds`` without being claimed, or with a lapsed lease."""
        ids = self._run("sweep", self._clock(), grace_seconds, limit)
        return [i.decode() for i in ids]

    def get(self, job_id: str) -> Job:
        raw = self._call(self.client.get, f"{self.prefix}:job:{job_id}")
        if raw is None:
            raise JobNotFoundError(f"no job {job_id}")
        return _job(raw)

    def recent(self, limit: int = 50, status: JobStatus | None = None) -> list[Job]:
        index = f"{self.prefix}:status:{status}" if status else f"{self.prefix}:created"
        ids = self._call(self.client.zrevrange, index, 0, limit - 1)
        if not ids:
            return []
        raws = self._call(self.client.mget, [f"{self.prefix}:job:{i.decode()}" for i in ids])
        return [_job(raw) for raw in raws if raw is not None]

    def counts(self) -> dict[str, int]:
        pipe = self.client.pipeline(transaction=False)
        for status in STATUSES:
            pipe.zcard(f"{self.prefix}:status:{status}")
        return dict(zip(STATUSES, self._call(pipe.execute), strict=True))

    def record_bot_commit(self, sha: str) -> None:
        self._call(self.client.sadd, f"{self.prefix}:bot_commits", sha.lower())

    def is_bot_commit(self, sha: str) -> bool:
        return bool(self._call(self.client.sismember, f"{self.prefix}:bot_commits", sha.lower()))

    def ping(self) -> None:
        self._call(self.client.ping)

    def close(self) -> None:
        self.client.close()

    @staticmethod
    def _call(fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except redis.RedisError as e:
            raise StoreError(f"Redis store: {e}") from e


def _job(raw: bytes | str) -> Job:
    data = json.loads(raw)
    # Records written before a field existed lack it: the dataclass default applies.
    return Job(**{name: data[name] for name in _FIELDS if name in data})
