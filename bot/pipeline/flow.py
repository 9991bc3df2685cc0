"""The job logic, the same whatever queue delivers the job: find → fetch → export → publish.

Only this trusted process holds the token; the export runs in the sandbox and this code reads
nothing of it but the checked output files. What a failed publish step needs again (the checked
outputs, or a failure to tell the author about) is kept in the job's folder so that a retry does
only that step (:mod:`bot.pipeline.workdir`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import psutil

from bot.errors import HubRefusedError, JobError, RepoConfigError, SkipJob, TransientJobError
from bot.hub import BotDiscussion, BotPullRequest, HubClient, OpenedPullRequest
from bot.jobs.model import Job, Outcome
from bot.pipeline.pr_text import failure_description, failure_title, pr_description, pr_title, usage_comment
from bot.pipeline.repo_config import FILENAME as REPO_CONFIG
from bot.pipeline.sandboxed_export import ExportLimits, export_in_sandbox
from bot.pipeline.snapshot import Listing, fetch_snapshot, read_listing
from bot.pipeline.workdir import Exported, Failure, JobFolder, prune
from bot.sandbox import SandboxRunner
from bot.settings import BotSettings
from exporter.graph_cache import evict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class OpenPrs:
    """The bot's open PRs on a repo, relative to the job's commit."""

    same: BotPullRequest | None
    newer: list[BotPullRequest]
    older: list[BotPullRequest]


class JobPipeline:
    """Runs one job; raises a :class:`bot.errors.JobError` when it cannot succeed or skip."""

    def __init__(self, settings: BotSettings, hub: HubClient, runner: SandboxRunner) -> None:
        self.settings = settings
        self.hub = hub
        self.runner = runner
        self.work_dir = Path(settings.work_dir)
        # A job folder untouched this long belongs to a job that ended or was retried on another host.
        self.prune_after = (
            max(settings.retry_window_seconds, settings.export_timeout) + settings.backoff_max_seconds + 3600
        )
        prune(self.work_dir, self.prune_after)

    @property
    def limits(self) -> ExportLimits:
        return ExportLimits(
            timeout=self.settings.export_timeout,
            memory_bytes=self.settings.memory_bytes,
            max_file_bytes=4 * self.settings.max_checkpoint_bytes,
            threads=self.settings.sandbox_threads,
            max_processes=self.settings.sandbox_max_processes,
            tmp_bytes=self.settings.sandbox_tmp_bytes,
        )

    def run(self, job: Job) -> Outcome:
        folder = JobFolder(self.work_dir, job)
        folder.open()
        try:
            outcome = self._run_in(job, folder)
        except TransientJobError:
            folder.after_transient(self.settings.keep_outputs_bytes, self.prune_after)
            raise
        except BaseException:
            if not self.settings.keep_work_dirs:
                folder.remove()
            raise
        if not self.settings.keep_work_dirs:
            folder.remove()
        return outcome

    def repo_cache(self, repo: str) -> Path | None:
        """The repo's own graph-cache folder (named by a hash of its id), made on first use; ``None``: off."""
        root = self.settings.graph_cache_root()
        if root is None:
            return None
        path = root / hashlib.sha256(repo.encode()).hexdigest()[:32]
        path.mkdir(parents=True, exist_ok=True)
        return path

    def evict_graphs(self) -> None:
        """Least recently used graph-cache entries out until the cache fits its size limit."""
        root = self.settings.graph_cache_root()
        if root is not None:
            for path in evict(root, self.settings.graph_cache_max_bytes):
                log.info("graph cache: evicted %s", path.relative_to(root))

    def cancel(self, job: Job) -> None:
        """Kill the job's sandbox (its process group), found by the job folder in its command line."""
        marker = str(self.work_dir.resolve() / job.id)
        for child in psutil.Process().children():
            with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
                if os.getpgid(child.pid) == child.pid and any(marker in arg for arg in child.cmdline()):
                    log.warning("job %s: killing its sandbox (pid %d)", job.id, child.pid)
                    os.killpg(child.pid, signal.SIGKILL)

    def _run_in(self, job: Job, folder: JobFolder) -> Outcome:
        done = self._settled(job)  # e.g. a retry after the PR was opened but the answer was lost
        if done is not None:
            return done
        merged = self.hub.merged_bot_pr(job.repo, job.sha)
        if merged is not None:
            return Outcome("skipped", f"commit is the merge of the bot's pull request #{merged}")
        failure = folder.kept_failure()
        if failure is not None:  # the export failed; telling the author did not, last time
            self._tell_author(job, failure)
            raise failure.error()
        exported = folder.kept_outputs(self.limits.max_file_bytes)
        if exported is None:
            exported = self._export(job, folder)
        else:
            log.info("job %s: publishing the outputs an earlier attempt checked (no export)", job.id)
        done = self._settled(job)  # the export took a while: look again before opening a PR
        if done is not None:
            return done
        opened = self._publish(job, exported)
        reason = f"opened pull request #{opened.num} ({exported.model_type})"
        return Outcome("succeeded", reason, opened.url, opened.commit)

    # ---- export ---------------------------------------------------------------------------------
    def _export(self, job: Job, folder: JobFolder) -> Exported:
        try:
            listing = read_listing(self.hub, job.repo, job.sha)
        except RepoConfigError as error:
            self._failed(job, folder, error, notify=error.notify)
        if not listing.config.enabled:
            raise SkipJob(f"disabled by {REPO_CONFIG} (enabled: false)")
        try:
            return self._export_checked(job, folder, listing)
        except JobError as error:
            if isinstance(error, TransientJobError):
                raise
            self._failed(job, folder, error, notify=listing.config.notify_failures)

    def _export_checked(self, job: Job, folder: JobFolder, listing: Listing) -> Exported:
        attempt = folder.begin()
        limit = self.settings.max_checkpoint_bytes
        snapshot, checkpoint = fetch_snapshot(self.hub, listing, attempt / "snapshot", limit)
        outputs = []
        cache = self.repo_cache(job.repo)
        try:
            for i, task in enumerate(listing.config.task_list()):
                output = attempt / f"output-{i}"
                export_in_sandbox(
                    self.runner, snapshot, output, listing.config, task, self.limits,
                    repo=job.repo, sha=job.sha, cache=cache,
                )  # fmt: skip
                outputs.append(output)
        finally:
            self.evict_graphs()
        shutil.rmtree(snapshot, ignore_errors=True)  # publishing needs only the outputs
        model_type = str(checkpoint.model_config["model_type"])
        return folder.keep_outputs(outputs, listing.config, model_type, self.limits.max_file_bytes)

    def _failed(self, job: Job, folder: JobFolder, error: JobError, *, notify: bool) -> NoReturn:
        """Tell the author (one discussion per commit) when they can act on it and want to hear; re-raise."""
        if notify and error.author_facing and self.settings.failure_discussions:
            failure = Failure("skipped" if isinstance(error, SkipJob) else "failed", error.reason, error.details)
            folder.save_failure(failure)
            self._tell_author(job, failure)
        raise error

    # ---- the bot's pull requests and discussions --------------------------------------------------
    def _settled(self, job: Job) -> Outcome | None:
        """The bot's open PRs decide first: one for this commit (a retry or replay) or a newer one."""
        prs = self._classify(job)
        if prs.same is not None:
            for pr in prs.older:
                self.hub.supersede(job.repo, pr, prs.same.num, prs.same.url)
            reason = f"pull request #{prs.same.num} already open for this commit"
            return Outcome("succeeded", reason, prs.same.url)
        if prs.newer:
            newest = prs.newer[0]
            return Outcome("skipped", f"newer commit {newest.sha} already has pull request #{newest.num}")
        return None

    def _classify(self, job: Job) -> OpenPrs:
        """Sort the bot's open PRs on the repo into: this commit, newer commits, older ones."""
        same, newer, older = None, [], []
        history: dict[str, set[str]] = {}
        for pr in self.hub.open_bot_prs(job.repo):
            if pr.sha is None:
                continue  # not one the bot can place: leave it alone
            if pr.sha == job.sha:
                same = same or pr
            elif self._is_newer(job, pr.sha, history):
                newer.append(pr)
            else:  # an ancestor, or history rewritten by a force-push: this commit supersedes it
                older.append(pr)
        return OpenPrs(same, newer, older)

    def _is_newer(self, job: Job, sha: str, history: dict[str, set[str]]) -> bool:
        """Whether ``sha`` descends from the job's commit (histories cached in ``history``)."""
        for commit in (job.sha, sha):
            if commit not in history:
                history[commit] = self.hub.history(job.repo, commit)
        return sha not in history[job.sha] and job.sha in history[sha]

    def _publish(self, job: Job, exported: Exported) -> OpenedPullRequest:
        """One PR with the verified files; older bot PRs get a pointer to it and are closed."""
        config, outputs = exported.config, exported.outputs
        files: dict[str, Path | bytes] = {}
        for output, task in zip(outputs, config.task_list(), strict=True):
            files.update(output.files)
            prefix = f"/{task}" if task is not None and len(outputs) > 1 else ""
            files[f"onnx{prefix}/report.json"] = output.report_json
        onnx_paths = sorted(p for p in files if p.endswith("model.onnx"))
        guess = self.hub.next_discussion_num(job.repo)
        description = pr_description(
            repo=job.repo,
            sha=job.sha,
            reports=[o.report_md for o in outputs],
            paths=sorted(files),
            onnx_paths=onnx_paths,
            pr_ref=f"refs/pr/{guess}",
        )
        older = self._classify(job).older
        title = pr_title(list(config.formats), job.sha)
        opened = self.hub.open_pr(job.repo, job.sha, files, title=title, description=description)
        if opened.num != guess and onnx_paths:
            self.hub.comment(job.repo, opened.num, usage_comment(job.repo, onnx_paths[0], opened.num))
        for pr in older:
            self.hub.supersede(job.repo, pr, opened.num, opened.url)
        log.info("opened %s for %s@%s", opened.url, job.repo, job.sha[:8])
        if self.settings.failure_discussions:
            self._close_notices(job, None, f"Commit `{job.sha[:7]}` exported: #{opened.num} ({opened.url}).")
        return opened

    def _tell_author(self, job: Job, failure: Failure) -> None:
        """One discussion per failing commit (a retry or replay finds it); older open ones are closed."""
        notices = self.hub.failure_discussions(job.repo, job.sha)
        if any(notice.sha == job.sha for notice in notices):
            return
        description = failure_description(sha=job.sha, reason=failure.reason, details=failure.details)
        opened = self.hub.open_discussion(job.repo, failure_title(job.sha), description)
        log.info("job %s: told the author in discussion #%d", job.id, opened.num)
        self._close_notices(job, notices, f"Superseded by #{opened.num}: the newer commit `{job.sha[:7]}` failed too.")

    def _close_notices(self, job: Job, notices: list[BotDiscussion] | None, comment: str) -> None:
        """Close the bot's open failure discussions about this commit or older ones (best effort)."""
        try:
            found = self.hub.failure_discussions(job.repo, job.sha) if notices is None else notices
            history: dict[str, set[str]] = {}
            for notice in found:
                if notice.status != "open" or notice.sha is None:
                    continue
                if notice.sha == job.sha or not self._is_newer(job, notice.sha, history):
                    self.hub.close_discussion(job.repo, notice.num, comment)
        except (TransientJobError, HubRefusedError) as e:
            log.warning("job %s: could not close older failure discussions: %s", job.id, e)
