"""Operators' commands: ``export-bot jobs`` and ``export-bot retry`` on a real store file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.jobs.backends import open_store
from bot.jobs.model import JobSpec
from tests.fakes.hub import BOT_TOKEN, serve_fake_hub

ROOT = Path(__file__).resolve().parents[3]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "EXPORT_BOT_STORE_URL": f"sqlite:///{tmp_path / 'j.db'}"}
    return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True, text=True)


@pytest.fixture
def failed_job(tmp_path: Path) -> str:
    store = open_store(f"sqlite:///{tmp_path / 'j.db'}")
    job, _ = store.enqueue(JobSpec(repo="alice/tiny", sha="e" * 40, settings="t"))
    store.claim("w", 30)
    store.finish(job.id, "w", "failed", "validation failed: onnx logits")
    return job.id


def test_jobs_lists_and_retry_requeues(tmp_path: Path, failed_job: str) -> None:
    listed = cli(tmp_path, "jobs")
    assert listed.returncode == 0 and failed_job in listed.stdout and "validation failed" in listed.stdout
    as_json = json.loads(cli(tmp_path, "jobs", "--json").stdout)
    assert as_json[0]["status"] == "failed"
    retried = cli(tmp_path, "retry", failed_job)
    assert retried.returncode == 0, retried.stderr
    assert json.loads(cli(tmp_path, "jobs", "--json").stdout)[0]["status"] == "queued"


def test_retry_unknown_job_is_one_line(tmp_path: Path, failed_job: str) -> None:
    result = cli(tmp_path, "retry", "nope")
    assert result.returncode == 3 and result.stderr.strip() == "error: no job nope"


def test_worker_process_runs_jobs_and_stops_on_sigterm(tmp_path: Path) -> None:
    """``export-bot worker`` apart from the web process, sharing the SQLite file."""
    with serve_fake_hub(deliver_webhooks=False) as hub:
        hub.create_repo("alice/notes")
        sha = hub.push("alice/notes", {"README.md": b"no checkpoint here"})
        store = open_store(f"sqlite:///{tmp_path / 'j.db'}")
        job, _ = store.enqueue(JobSpec(repo="alice/notes", sha=sha, settings="t"))
        env = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "HOME": str(tmp_path),
            "HF_ENDPOINT": hub.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_TOKEN": BOT_TOKEN,
            "EXPORT_BOT_STORE_URL": f"sqlite:///{tmp_path / 'j.db'}",
            "EXPORT_BOT_WORK_DIR": str(tmp_path / "work"),
            "EXPORT_BOT_POLL_SECONDS": "0.1",
            "EXPORT_BOT_SANDBOX": "process",
        }
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while store.get(job.id).status not in ("skipped", "failed") and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            proc.send_signal(signal.SIGTERM)
            output = proc.communicate(timeout=30)[0].decode()
    done = store.get(job.id)
    assert done.status == "skipped" and "no config.json" in (done.reason or ""), output
    assert proc.returncode == 0, output


@pytest.mark.parametrize(
    ("command", "cli_setting", "expected"),
    [
        (
            ["worker"],
            "no-such-engine --flag",
            "error: container engine 'no-such-engine --flag' not found: install it or choose another sandbox",
        ),
        (["serve", "--port", "9"], "false", "error: sandbox 'container' cannot run a command here: exit status 1"),
    ],
)
def test_start_fails_in_one_line_when_the_sandbox_cannot_run(
    tmp_path: Path, command: list[str], cli_setting: str, expected: str
) -> None:
    """Preflight: a missing engine, or one that cannot run a container, stops the start with exit 4."""
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "EXPORT_BOT_STORE_URL": f"sqlite:///{tmp_path / 'j.db'}",
        "EXPORT_BOT_SANDBOX": "container",
        "EXPORT_BOT_CONTAINER_CLI": cli_setting,
    }
    result = subprocess.run(
        [sys.executable, "-m", "bot", *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 4, result.stderr
    assert result.stderr.strip().splitlines()[-1] == expected
    assert not (tmp_path / "j.db").exists()  # nothing started
