"""A job's work folder, ``<work_dir>/<job id>/``, and what it keeps between attempts.

- ``attempt-<n>/``: the snapshot and the sandbox outputs of one attempt (a dead worker's orphaned
  export cannot write into a later attempt's folder). Removed when the attempt ends.
- ``checked/``: the outputs of a passing export, moved there after the sandbox ended, with
  ``manifest.json`` written by the bot (repo, commit, repo settings, sha256 of each ``report.json``).
  Kept when the publish step fails with a transient error, so the retry only publishes; the retry
  checks every file again against its report, and the report against the manifest, before upload.
- ``failure.json``: an export that failed, kept when telling the author (a discussion) failed
  with a transient error, so the retry only tells them.

The first attempt of a job (and an operator's retry, which resets attempts) starts from an empty
folder. Everything is removed when the job ends. Kept outputs of all jobs together stay under
``EXPORT_BOT_KEEP_OUTPUTS_BYTES`` (over it, a job keeps nothing and its retry exports again); folders
untouched for longer than a job can be retried (a retry that went to another host) are pruned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bot.errors import JobError, PermanentJobError, SkipJob, UnsafeOutputError
from bot.jobs.model import Job
from bot.pipeline.check import CheckedOutput, check_output
from bot.pipeline.repo_config import RepoConfig

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FAILURE = "failure.json"
_JOB_FOLDER = re.compile(r"[0-9a-f]{32}(\.\d+)?")  # a job id (and the older "<id>.<attempt>" layout)


@dataclass(frozen=True)
class Exported:
    """A verified export ready to publish: the repo settings it used, the model type, one output per task."""

    config: RepoConfig
    model_type: str
    outputs: list[CheckedOutput]


@dataclass(frozen=True)
class Failure:
    """A failed export as the author is told about it, and how the job ends."""

    status: Literal["failed", "skipped"]
    reason: str
    details: str | None = None

    def error(self) -> JobError:
        return (SkipJob if self.status == "skipped" else PermanentJobError)(self.reason, details=self.details)


class JobFolder:
    """The work folder of one job at one attempt."""

    def __init__(self, work_dir: Path, job: Job) -> None:
        self.work_dir = Path(work_dir)
        self.job = job
        self.root = self.work_dir / job.id
        self.checked = self.root / "checked"

    def open(self) -> None:
        """The first attempt (also after an operator's retry) starts from nothing."""
        if self.job.attempts <= 1:
            shutil.rmtree(self.root, ignore_errors=True)

    def begin(self) -> Path:
        """A new folder for this attempt's snapshot and outputs (an earlier attempt's are removed)."""
        for earlier in self.root.glob("attempt-*"):
            shutil.rmtree(earlier, ignore_errors=True)
        attempt = self.root / f"attempt-{self.job.attempts}"
        attempt.mkdir(parents=True)
        return attempt

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    # ---- checked outputs ----------------------------------------------------------------------
    def keep_outputs(self, outputs: list[Path], config: RepoConfig, model_type: str, max_bytes: int) -> Exported:
        """Move the sandbox's output folders under ``checked/``, verify them, record them in the manifest."""
        shutil.rmtree(self.checked, ignore_errors=True)
        self.checked.mkdir(parents=True)
        tasks = config.task_list()
        checked = []
        for i, (output, task) in enumerate(zip(outputs, tasks, strict=True)):
            target = self.checked / f"output-{i}"
            os.rename(output, target)  # the sandbox has ended: nothing writes here any more
            checked.append(
                check_output(target, formats=list(config.formats), prefix=_prefix(task, tasks), max_bytes=max_bytes)
            )
        manifest = {
            "job": self.job.id,
            "repo": self.job.repo,
            "sha": self.job.sha,
            "config": config.model_dump(mode="json"),
            "model_type": model_type,
            "reports": [hashlib.sha256(c.report_json).hexdigest() for c in checked],
            "bytes": sum(entry.bytes for c in checked for entry in c.report.files),
        }
        _write_json(self.checked / MANIFEST, manifest)
        return Exported(config, model_type, checked)

    def kept_outputs(self, max_bytes: int) -> Exported | None:
        """The outputs an earlier attempt kept, verified again; ``None`` when there are none or they fail."""
        manifest = self.checked / MANIFEST
        if self.job.attempts <= 1 or not manifest.is_file():
            return None
        try:
            data = json.loads(manifest.read_bytes())
            if (data["job"], data["repo"], data["sha"]) != (self.job.id, self.job.repo, self.job.sha):
                raise UnsafeOutputError("the kept outputs belong to another job")
            config = RepoConfig.model_validate(data["config"])
            tasks = config.task_list()
            checked = []
            for i, (task, digest) in enumerate(zip(tasks, data["reports"], strict=True)):
                output = check_output(
                    self.checked / f"output-{i}",
                    formats=list(config.formats),
                    prefix=_prefix(task, tasks),
                    max_bytes=max_bytes,
                )
                if hashlib.sha256(output.report_json).hexdigest() != digest:
                    raise UnsafeOutputError(f"report.json of output {i} changed since it was checked")
                checked.append(output)
            return Exported(config, str(data["model_type"]), checked)
        except (OSError, ValueError, KeyError, TypeError, JobError) as e:
            log.warning("job %s: kept outputs do not verify (%s): exporting again", self.job.id, e)
            shutil.rmtree(self.checked, ignore_errors=True)
            return None

    # ---- a failure to tell the author about -----------------------------------------------------
    def save_failure(self, failure: Failure) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json(
            self.root / FAILURE, {"status": failure.status, "reason": failure.reason, "details": failure.details}
        )

    def kept_failure(self) -> Failure | None:
        path = self.root / FAILURE
        if self.job.attempts <= 1 or not path.is_file():
            return None
        try:
            data = json.loads(path.read_bytes())
            return Failure(data["status"], str(data["reason"]), data.get("details"))
        except (OSError, ValueError, KeyError) as e:
            log.warning("job %s: unreadable %s (%s): running again", self.job.id, FAILURE, e)
            return None

    # ---- between attempts -----------------------------------------------------------------------
    def after_transient(self, budget: int, prune_after: float) -> None:
        """Keep what a retry can reuse (checked outputs within ``budget``, a failure); drop the rest."""
        for attempt in self.root.glob("attempt-*"):
            shutil.rmtree(attempt, ignore_errors=True)
        if not (self.checked / MANIFEST).is_file():
            shutil.rmtree(self.checked, ignore_errors=True)
            return
        prune(self.work_dir, prune_after, keep=self.job.id)
        others = sum(kept_bytes(folder) for folder in _job_folders(self.work_dir) if folder.name != self.job.id)
        mine = kept_bytes(self.root)
        if others + mine > budget:
            log.warning(
                "job %s: not keeping %d bytes of checked outputs (%d kept already, limit %d): its retry exports again",
                self.job.id,
                mine,
                others,
                budget,
            )
            shutil.rmtree(self.checked, ignore_errors=True)


def kept_bytes(folder: Path) -> int:
    """Bytes of checked outputs a job folder keeps, as its manifest states (0 when none)."""
    try:
        return int(json.loads((folder / "checked" / MANIFEST).read_bytes())["bytes"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def prune(work_dir: Path, older_than: float, *, keep: str | None = None, now: float | None = None) -> list[str]:
    """Remove job folders untouched for ``older_than`` seconds (their job was retried elsewhere or ended)."""
    now = time.time() if now is None else now
    removed = []
    for folder in _job_folders(work_dir):
        if folder.name == keep:
            continue
        try:
            touched = max(path.stat().st_mtime for path in (folder, *folder.iterdir()))
        except OSError:
            continue
        if now - touched > older_than:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def _job_folders(work_dir: Path) -> list[Path]:
    try:
        return [p for p in Path(work_dir).iterdir() if p.is_dir() and _JOB_FOLDER.fullmatch(p.name)]
    except OSError:
        return []


def _prefix(task: str | None, tasks: list[str | None]) -> str:
    return f"/{task}" if task is not None and len(tasks) > 1 else ""


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
