"""The web process: ``POST /webhooks/hub`` plus read-only views (jobs, health, metrics).

A delivery is answered only after its job is committed to the store (202 with the job id), or
with the precise reason it is refused (401/403/413/400/422) or ignored (200).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from bot.errors import ConfigError, JobNotFoundError
from bot.jobs.model import Job, JobSpec, JobStatus, JobStore
from bot.settings import BotSettings
from bot.web.metrics import Metrics
from bot.web.payloads import Accepted, HubWebhookPayload, decide
from bot.web.webhook import BodyTooLarge, check_secret, read_capped

log = logging.getLogger(__name__)


def create_app(settings: BotSettings, store: JobStore, *, workers: int = 0) -> FastAPI:
    """The FastAPI app; with ``workers > 0`` it also runs that many worker threads."""
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        raise ConfigError("EXPORT_BOT_WEBHOOK_SECRET is not set: refusing to accept unsigned webhooks")
    secret = settings.webhook_secret.get_secret_value()
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if workers <= 0:
            yield
            return
        from bot.runtime import start_workers

        stop, _threads = start_workers(settings, store, workers)
        try:
            yield
        finally:
            stop.set()

    app = FastAPI(title="export-bot", lifespan=lifespan)

    def answer(result: str, status: int, body: dict[str, Any]) -> JSONResponse:
        metrics.webhook(result)
        return JSONResponse(body, status_code=status)

    @app.post("/webhooks/hub")
    async def hub_webhook(request: Request) -> JSONResponse:
        rejected = check_secret(secret, request.headers.get("x-webhook-secret"), request.query_params.get("secret"))
        if rejected is not None:
            return answer(
                "unauthorized" if rejected.status == 401 else "forbidden",
                rejected.status,
                {"detail": rejected.detail},
            )
        try:
            body = await read_capped(request.stream(), request.headers.get("content-length"), settings.max_body_bytes)
        except BodyTooLarge as e:
            return answer("too_large", 413, {"detail": str(e)})
        try:
            data = json.loads(body)
        except ValueError as e:
            return answer("malformed", 400, {"detail": f"body is not JSON: {e}"})
        except RecursionError:
            return answer("malformed", 400, {"detail": "body is not JSON: nested too deeply"})
        try:
            payload = HubWebhookPayload.model_validate(data)
        except ValidationError as e:
            errors = [{"loc": list(err["loc"]), "msg": err["msg"]} for err in e.errors()]
            return answer("malformed", 422, {"detail": "not a Hub webhook v3 payload", "errors": errors})
        decision = decide(payload, watched_branch=settings.watched_branch)
        if not isinstance(decision, Accepted):
            return answer("ignored", 200, {"status": "ignored", "reason": decision.reason})
        if await run_in_threadpool(store.is_bot_commit, decision.sha):
            return answer("ignored", 200, {"status": "ignored", "reason": "commit made by the bot"})
        spec = JobSpec(repo=decision.repo, sha=decision.sha, settings=settings.export_fingerprint())
        job, created = await run_in_threadpool(store.enqueue, spec)
        log.info(
            "webhook %s: job %s for %s@%s",
            "accepted" if created else "duplicate",
            job.id,
            spec.repo,
            spec.sha[:8],
        )
        return answer(
            "accepted" if created else "duplicate",
            202,
            {"job_id": job.id, "status": job.status, "duplicate": not created},
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        await run_in_threadpool(store.ping)
        return {"status": "ok"}

    @app.get("/jobs")
    async def jobs(limit: int = Query(50, ge=1, le=1000), status: JobStatus | None = None) -> list[dict[str, Any]]:
        found = await run_in_threadpool(store.recent, limit, status)
        return [job.to_dict() for job in found]

    @app.get("/jobs/{job_id}")
    async def job(job_id: str) -> Response:
        try:
            found = await run_in_threadpool(store.get, job_id)
        except JobNotFoundError as e:
            return JSONResponse({"detail": str(e)}, status_code=404)
        return JSONResponse(found.to_dict())

    @app.get("/metrics")
    async def prometheus() -> PlainTextResponse:
        text = await run_in_threadpool(metrics.render, store)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return render_jobs_page(await run_in_threadpool(store.recent, 50, None))

    return app


def render_jobs_page(jobs: list[Job]) -> str:
    """A small HTML table of recent jobs: repo, commit, status, reason, PR link."""
    rows = []
    for job in jobs:
        when = datetime.fromtimestamp(job.updated_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        link = f'<a href="{html.escape(job.pr_url)}">pull request</a>' if job.pr_url else ""
        rows.append(
            f"<tr><td>{html.escape(job.repo)}</td><td><code>{job.sha[:8]}</code></td>"
            f'<td class="{job.status}">{job.status}</td><td>{job.attempts}</td>'
            f"<td>{html.escape(job.reason or '')}</td><td>{link}</td><td>{when}</td></tr>"
        )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>export-bot</title><style>"
        "body{font-family:sans-serif}td,th{padding:4px 8px;text-align:left}.failed{color:#b00}"
        ".succeeded{color:#070}</style></head><body><h1>export-bot: recent jobs</h1>"
        "<table><tr><th>repo</th><th>commit</th><th>status</th><th>attempts</th><th>reason</th><th>PR</th>"
        f"<th>updated (UTC)</th></tr>{''.join(rows)}</table></body></html>"
    )
