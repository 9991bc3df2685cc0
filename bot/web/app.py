"""The web process: ``POST /webhooks/hub`` plus read-only views (jobs, health, metrics).

A delivery is answered only after its job is committed to the store (202 with the job id), or
with the precise reason it is refused (401/403/408/413/400/422) or ignored (200). The operators'
views need the operator token or a direct loopback client (:mod:`bot.web.operators`); ``/healthz``
is open and names no repo. Every request is logged with query values redacted (:mod:`bot.web.access_log`).
"""

from __future__ import annotations

import html
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from bot.errors import ConfigError, JobNotFoundError, StoreError
from bot.jobs.model import Job, JobSpec, JobStatus, JobStore
from bot.settings import BotSettings
from bot.web.access_log import AccessLog
from bot.web.metrics import Metrics
from bot.web.operators import PRIVATE_REPO, Access, job_view, operator_access
from bot.web.payloads import Accepted, HubWebhookPayload, decide
from bot.web.webhook import BodyTimeout, BodyTooLarge, Rejection, check_secret, read_body


class OperatorRefused(Exception):
    """An operators' page asked for without the right credentials."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.detail)
        self.rejection = rejection


def operator(request: Request) -> Access:
    """Dependency of the operators' pages: the caller's access, or :class:`OperatorRefused`."""
    access = operator_access(request.app.state.operator_token, request)
    if isinstance(access, Rejection):
        raise OperatorRefused(access)
    return access


OperatorAccess = Annotated[Access, Depends(operator)]


log = logging.getLogger(__name__)


def create_app(settings: BotSettings, store: JobStore, *, workers: int = 0) -> FastAPI:
    """The FastAPI app; with ``workers > 0`` it also runs that many worker threads."""
    if settings.webhook_secret is None or not settings.webhook_secret.get_secret_value():
        raise ConfigError("EXPORT_BOT_WEBHOOK_SECRET is not set: refusing to accept unsigned webhooks")
    secret = settings.webhook_secret.get_secret_value()
    operator_token = settings.operator_token.get_secret_value() if settings.operator_token else None
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if workers <= 0:
            yield
            return
        from bot.runtime import start_workers

        pool = start_workers(settings, store, workers)
        try:
            yield
        finally:  # SIGTERM: running jobs finish within the grace period or are handed back
            await run_in_threadpool(pool.stop, settings.stop_grace_seconds)

    app = FastAPI(title="export-bot", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(AccessLog)
    app.state.operator_token = operator_token

    @app.exception_handler(OperatorRefused)
    async def refused(_: Request, error: OperatorRefused) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.rejection.status == 401 else None
        return JSONResponse({"detail": error.rejection.detail}, status_code=error.rejection.status, headers=headers)

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
            body = await read_body(
                request.stream(),
                request.headers.get("content-length"),
                settings.max_body_bytes,
                settings.body_timeout_seconds,
            )
        except BodyTooLarge as e:
            return answer("too_large", 413, {"detail": str(e)})
        except BodyTimeout as e:  # the rest of the body may still come: close rather than read it
            metrics.webhook("timeout")
            return JSONResponse({"detail": str(e)}, status_code=408, headers={"Connection": "close"})
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
        spec = JobSpec(
            repo=decision.repo, sha=decision.sha, settings=settings.export_fingerprint(), private=decision.private
        )
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
    async def healthz() -> JSONResponse:
        try:
            await run_in_threadpool(store.ping)
        except StoreError as e:  # the reason (it may name the store's address) goes to the log only
            log.warning("health check: the job store does not answer: %s", e)
            return JSONResponse({"status": "unavailable"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/jobs")
    async def jobs(
        access: OperatorAccess,
        limit: int = Query(50, ge=1, le=1000),
        status: JobStatus | None = None,
    ) -> list[dict[str, Any]]:
        found = await run_in_threadpool(store.recent, limit, status)
        return [job_view(job, access) for job in found]

    @app.get("/jobs/{job_id}")
    async def job(job_id: str, access: OperatorAccess) -> Response:
        try:
            found = await run_in_threadpool(store.get, job_id)
        except JobNotFoundError as e:
            return JSONResponse({"detail": str(e)}, status_code=404)
        return JSONResponse(job_view(found, access))

    @app.get("/metrics", dependencies=[Depends(operator)])
    async def prometheus() -> PlainTextResponse:
        text = await run_in_threadpool(metrics.render, store)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    @app.get("/", response_class=HTMLResponse)
    async def index(access: OperatorAccess) -> str:
        return render_jobs_page(await run_in_threadpool(store.recent, 50, None), access)

    return app


def render_jobs_page(jobs: list[Job], access: Access) -> str:
    """A small HTML table of recent jobs: repo, commit, status, reason, PR link (private repos hidden unless allowed)."""
    rows = []
    for job in jobs:
        view = job_view(job, access)
        when = datetime.fromtimestamp(job.updated_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        link = f'<a href="{html.escape(view["pr_url"])}">pull request</a>' if view["pr_url"] else ""
        rows.append(
            f"<tr><td>{html.escape(view['repo'])}</td><td><code>{(view['sha'] or '')[:8]}</code></td>"
            f'<td class="{job.status}">{job.status}</td><td>{job.attempts}</td>'
            f"<td>{html.escape(view['reason'] or '')}</td><td>{link}</td><td>{when}</td></tr>"
        )
    note = "" if access.private else f"<p>Jobs of private repos show as {PRIVATE_REPO} without the operator token.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>export-bot</title><style>"
        "body{font-family:sans-serif}td,th{padding:4px 8px;text-align:left}.failed{color:#b00}"
        ".succeeded{color:#070}</style></head><body><h1>export-bot: recent jobs</h1>"
        f"{note}<table><tr><th>repo</th><th>commit</th><th>status</th><th>attempts</th><th>reason</th><th>PR</th>"
        f"<th>updated (UTC)</th></tr>{''.join(rows)}</table></body></html>"
    )
