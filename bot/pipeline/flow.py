"""The job logic, the same whatever queue delivers the job: find → fetch → export → publish.

Only this trusted process holds the token; the export runs in the sandbox and this code reads
nothing of it but the checked output files.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError, PermanentJobError
from bot.hub import BotPullRequest, HubClient, OpenedPullRequest
from bot.jobs.model import Job, Outcome
from bot.pipeline.check import CheckedOutput
from bot.pipeline.pr_text import pr_description, pr_title, usage_comment
from bot.pipeline.repo_config import RepoConfig, load_repo_config
from bot.pipeline.sandboxed_export import ExportLimits, export_in_sandbox
from bot.pipeline.snapshot import check_model_size, fetch_snapshot, read_model_config
from bot.sandbox import SandboxRunner
from bot.settings import BotSettings

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

    def run(self, job: Job) -> Outcome:
        done = self._settled(job)
        if done is not None:
            return done
        merged = self.hub.merged_bot_pr(job.repo, job.sha)
        if merged is not None:
            return Outcome("skipped", f"commit is the merge of the bot's pull request #{merged}")
        workdir = Path(self.settings.work_dir) / f"{job.id}.{job.attempts}"
        for earlier in Path(self.settings.work_dir).glob(f"{job.id}.*"):
            shutil.rmtree(earlier, ignore_errors=True)  # a retried job starts clean
        # A folder per attempt: a dead worker's orphaned export (a docker container) cannot write into it.
        workdir.mkdir(parents=True)
        try:
            return self._export_and_publish(job, workdir)
        finally:
            if not self.settings.keep_work_dirs:
                shutil.rmtree(workdir, ignore_errors=True)

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
        history: set[str] | None = None
        for pr in self.hub.open_bot_prs(job.repo):
            if pr.sha is None:
                continue  # not one the bot can place: leave it alone
            if pr.sha == job.sha:
                same = same or pr
                continue
            history = history if history is not None else self.hub.history(job.repo, job.sha)
            if pr.sha not in history and job.sha in self.hub.history(job.repo, pr.sha):
                newer.append(pr)
            else:  # an ancestor, or history rewritten by a force-push: this commit supersedes it
                older.append(pr)
        return OpenPrs(same, newer, older)

    def _export_and_publish(self, job: Job, workdir: Path) -> Outcome:
        snapshot = fetch_snapshot(self.hub, job.repo, job.sha, workdir / "snapshot", self.settings.max_checkpoint_bytes)
        try:
            config = load_repo_config(snapshot)
        except ConfigError as e:
            raise PermanentJobError(str(e)) from e
        if not config.enabled:
            return Outcome("skipped", "disabled by .export-bot.yaml (enabled: false)")
        model_config = read_model_config(snapshot)
        check_model_size(model_config, self.settings.max_checkpoint_bytes)
        model_type = model_config["model_type"]
        limits = ExportLimits(
            timeout=self.settings.export_timeout,
            memory_bytes=self.settings.memory_bytes,
            max_file_bytes=4 * self.settings.max_checkpoint_bytes,
            threads=self.settings.sandbox_threads,
        )
        outputs = [
            export_in_sandbox(self.runner, snapshot, workdir / f"output-{i}", config, task, limits)
            for i, task in enumerate(config.task_list())
        ]
        done = self._settled(job)  # the export took a while: look again before opening a PR
        if done is not None:
            return done
        opened = self._publish(job, config, outputs)
        return Outcome("succeeded", f"opened pull request #{opened.num} ({model_type})", opened.url, opened.commit)

    def _publish(self, job: Job, config: RepoConfig, outputs: list[CheckedOutput]) -> OpenedPullRequest:
        """One PR with the verified files; older bot PRs get a pointer to it and are closed."""
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
        return opened
