"""Real ``export-bot serve`` / ``export-bot worker`` subprocesses for fault and load tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psutil

from bot.jobs.model import Job, JobStore
from tests.fakes.hub import BOT_TOKEN, BOT_USER
from tests.support.bot_fixtures import SECRET, free_port

ROOT = Path(__file__).resolve().parents[2]
FINAL = ("succeeded", "failed", "skipped")


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def bot_env(tmp_path: Path, hub_url: str, store_url: str, **settings: str) -> dict[str, str]:
    """Fast settings for tests: process sandbox, short leases and backoffs."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path / "home"),
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": hub_url,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_TOKEN": BOT_TOKEN,
        "EXPORT_BOT_WEBHOOK_SECRET": SECRET,
        "EXPORT_BOT_BOT_USER": BOT_USER,
        "EXPORT_BOT_STORE_URL": store_url,
        "EXPORT_BOT_WORK_DIR": str(tmp_path / "work"),
        "EXPORT_BOT_SANDBOX": "process",
        "EXPORT_BOT_LEASE_SECONDS": "2",
        "EXPORT_BOT_POLL_SECONDS": "0.2",
        "EXPORT_BOT_REDISPATCH_SECONDS": "1",
        "EXPORT_BOT_BACKOFF_SECONDS": "0.2",
        "EXPORT_BOT_MAX_ATTEMPTS": "5",
        "EXPORT_BOT_HUB_TIMEOUT": "2",
        "EXPORT_BOT_EXPORT_TIMEOUT": "180",
    }
    env.update({f"EXPORT_BOT_{name.upper()}": value for name, value in settings.items()})
    return env


class BotProcess:
    """One ``python -m bot …`` subprocess with its log file."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill9(self, *, with_children: bool = False) -> None:
        """SIGKILL, optionally with every descendant (a host that dies takes its exports along)."""
        children = psutil.Process(self.pid).children(recursive=True) if with_children and self.alive() else []
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()

    def stop(self) -> None:
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill9(with_children=True)


def start_serve(env: dict[str, str], log: Path, *, workers: int = 0) -> tuple[BotProcess, str]:
    port = free_port()
    args = ["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    process = BotProcess(args, env, log)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.alive(), process.text()[-3000:]
        try:
            return httpx.get(url + "/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, 30, "the bot to serve")
    return process, url


def start_worker(env: dict[str, str], log: Path, concurrency: int = 1) -> BotProcess:
    return BotProcess(["worker", "--concurrency", str(concurrency)], env, log)


def finished(store: JobStore, job_id: str, timeout: float, *logs: BotProcess) -> Job:
    """Wait for the job to reach a final status; on timeout print the processes' logs."""
    try:
        return wait_for(lambda: (job := store.get(job_id)).status in FINAL and job, timeout, f"job {job_id}", 0.2)
    except AssertionError:
        for process in logs:
            print(f"--- {process.args}\n{process.text()[-4000:]}")
        raise
