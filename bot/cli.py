"""``export-bot``: thin commands over the library (serve, worker, webhook create, jobs, retry)."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from bot.errors import BotError
from bot.settings import SETTINGS_FILE_ENV, BotSettings

app = typer.Typer(help="The Hub export bot: webhook → sandboxed export → pull request.", no_args_is_help=True)
webhook_app = typer.Typer(help="Manage the Hub webhook that calls the bot.", no_args_is_help=True)
app.add_typer(webhook_app, name="webhook")

SettingsOption = Annotated[
    Path | None,
    typer.Option("--settings", help="YAML settings file (environment variables win).", exists=True),
]
_debug = False


def _remember_debug(value: bool) -> bool:
    global _debug
    _debug = _debug or value
    return value


DebugOption = Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.", callback=_remember_debug)]


def _settings(path: Path | None, debug: bool) -> BotSettings:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    for noisy in ("httpx", "httpx2", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if debug else logging.WARNING)
    if path is not None:
        os.environ[SETTINGS_FILE_ENV] = str(path)
    return BotSettings()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", help="In-process worker threads (0: run `worker` apart).")] = 1,
    settings_file: SettingsOption = None,
    debug: DebugOption = False,
) -> None:
    """Serve the webhook endpoint (and, by default, one in-process worker)."""
    import uvicorn

    from bot.runtime import open_settings_store, preflight_sandbox
    from bot.web.app import create_app

    settings = _settings(settings_file, debug)
    if workers > 0:
        preflight_sandbox(settings)
    store = open_settings_store(settings)
    # The bot writes the access log itself, with query values (a ?secret=) redacted: bot.web.access_log.
    uvicorn.run(create_app(settings, store, workers=workers), host=host, port=port, log_level="info", access_log=False)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", help="Worker threads in this process.")] = 1,
    settings_file: SettingsOption = None,
    debug: DebugOption = False,
) -> None:
    """Run workers apart from the web process: threads polling SQLite, or a Dramatiq worker on Redis.

    SIGTERM or Ctrl-C: running jobs get EXPORT_BOT_STOP_GRACE_SECONDS to finish, then are handed back.
    """
    import threading

    from bot.runtime import open_settings_store, preflight_sandbox, start_workers

    settings = _settings(settings_file, debug)
    preflight_sandbox(settings)
    store = open_settings_store(settings)
    pool = start_workers(settings, store, concurrency)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    try:
        while pool.alive() and not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    logging.getLogger(__name__).info("stopping: grace period %g s", settings.stop_grace_seconds)
    pool.stop(settings.stop_grace_seconds)


@webhook_app.command("create")
def webhook_create(
    repo: Annotated[list[str], typer.Option("--repo", help="Model repo to watch (repeatable).")],
    url: Annotated[str, typer.Option("--url", help="Public URL of POST /webhooks/hub.")],
    settings_file: SettingsOption = None,
    debug: DebugOption = False,
) -> None:
    """Create a Hub webhook on the repos with a fresh secret, and print the secret."""
    from huggingface_hub import HfApi

    from bot.hub import hub_errors

    settings = _settings(settings_file, debug)
    secret = secrets.token_urlsafe(32)
    api = HfApi(endpoint=settings.hf_endpoint, token=settings.token())
    with hub_errors("creating the webhook"):
        info = api.create_webhook(
            url=url,
            watched=[{"type": "model", "name": name} for name in repo],
            domains=["repo"],
            secret=secret,
        )
    typer.echo(f"webhook {info.id} → {url}")
    typer.echo(f"secret: {secret}")
    typer.echo("Set it for the bot: EXPORT_BOT_WEBHOOK_SECRET=<secret>")


@app.command()
def jobs(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array.")] = False,
    settings_file: SettingsOption = None,
) -> None:
    """List recent jobs."""
    from bot.jobs.backends import open_store

    found = open_store(_settings(settings_file, False).store_url).recent(limit)
    if as_json:
        typer.echo(json.dumps([job.to_dict() for job in found], indent=2))
        return
    for job in found:
        typer.echo(f"{job.id}  {job.status:<9} {job.repo}@{job.sha[:8]}  {job.reason or ''}  {job.pr_url or ''}")


@app.command()
def retry(
    job_id: Annotated[str, typer.Argument(help="Job id (from `export-bot jobs`).")],
    settings_file: SettingsOption = None,
) -> None:
    """Queue a finished job again (attempts reset)."""
    from bot.jobs.backends import open_store

    job = open_store(_settings(settings_file, False).store_url).requeue(job_id)
    typer.echo(f"job {job.id} queued again ({job.repo}@{job.sha[:8]})")


def _report_error(error: BaseException) -> int:
    """One line on stderr (the traceback too with ``--debug``); the exit code (see :mod:`bot.errors`)."""
    if _debug:
        traceback.print_exception(error)
    if isinstance(error, BotError):
        typer.echo(f"error: {error}", err=True)
        return error.exit_code
    hint = "" if _debug else " (rerun with --debug for the traceback)"
    typer.echo(f"internal error: {type(error).__name__}: {error}{hint}", err=True)
    return 70


def main() -> None:
    """Entry point: the one place errors become a message and an exit code."""
    try:
        app()  # usage errors and Ctrl-C are typer's: exit 2 and 1
    except Exception as e:
        sys.exit(_report_error(e))


__all__ = ["app", "main"]
