"""The action's steps: export → job summary → (pull request) → step outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from export_action import gha
from export_action.config import FORMAT_NAMES, ActionConfig
from export_action.errors import ValidationFailedError
from export_action.export import ExportResult, run_exporter
from export_action.publish import PublishRequest, PullRequestResult, check_file_sizes, connect, publish

#: The exported files are committed with the human-readable report; ``report.json`` (with timings)
#: stays in the workspace so that an unchanged export makes an unchanged tree.
COMMITTED_REPORT = "report.md"


@dataclass(frozen=True, kw_only=True)
class ActionOutcome:
    export: ExportResult
    pull_request: PullRequestResult | None


def run(config: ActionConfig) -> ActionOutcome:
    """Run every step; raises :class:`ValidationFailedError` last, after the summary and outputs."""
    with gha.group(f"Export {config.model_label}"):
        result = run_exporter(config)
    return conclude(config, result)


def conclude(config: ActionConfig, result: ExportResult) -> ActionOutcome:
    """Everything after the export: summary, outputs, the pull request, and the validation verdict."""
    report_md = result.report_md.read_text(encoding="utf-8")
    gha.append_summary(config.summary_file, report_md)
    gha.set_outputs(config.output_file, {"status": result.status, "report-path": str(result.report_json)})
    pull = None
    if result.status == "passed" and config.open_pr:
        pull = open_pull_request(config, result, report_md)
    gha.set_outputs(
        config.output_file,
        {"pr-url": pull.url if pull else "", "pr-number": str(pull.number) if pull else ""},
    )
    if result.status == "failed":
        error = ValidationFailedError(result.report_json, list(result.failures))
        if config.fail_on_validation_error:
            raise error
        gha.annotate("warning", f"{error} (fail-on-validation-error is false)")
    return ActionOutcome(export=result, pull_request=pull)


def open_pull_request(config: ActionConfig, result: ExportResult, report_md: str) -> PullRequestResult | None:
    """Check sizes, then commit the files and open or update the pull request."""
    if config.event_name == "pull_request":
        gha.annotate(
            "warning",
            "open-pr is ignored on pull_request events (the checkout is a temporary merge commit); "
            "run on push or workflow_dispatch to get a pull request",
        )
        return None
    request = publish_request(config, result, report_md)
    check_file_sizes(request.files, config.max_file_bytes)
    assert config.github_token is not None  # checked by ActionConfig.from_env when open_pr
    pull = publish(connect(config.api_url, config.github_token), request)
    if pull is None:
        print(f"{config.pr_branch}: the base commit already has this export, no pull request needed", flush=True)
        return None
    print(f"Pull request #{pull.number} {pull.operation}: {pull.url}", flush=True)
    gha.append_summary(config.summary_file, f"\nPull request [#{pull.number}]({pull.url}) {pull.operation}.\n")
    return pull


def publish_request(config: ActionConfig, result: ExportResult, report_md: str) -> PublishRequest:
    directory = config.output_repo_path
    names = [*result.files, COMMITTED_REPORT]
    files = {f"{directory}/{name}": result.output_dir / name for name in dict.fromkeys(names)}
    return PublishRequest(
        repository=config.repository or "",
        base_branch=config.base_branch,
        base_sha=config.sha,
        branch=config.pr_branch,
        title=config.pr_title,
        body=pull_request_body(config, report_md, files),
        message=config.pr_title,
        directory=directory,
        files=files,
    )


def pull_request_body(config: ActionConfig, report_md: str, files: dict[str, Path]) -> str:
    """The report, then how to load each exported format."""
    directory = config.output_repo_path
    lines = [report_md.rstrip(), "", "---", "", "**Use the exported files**", ""]
    if f"{directory}/model.onnx" in files:
        lines += [
            "```python",
            "import onnxruntime as ort",
            f'session = ort.InferenceSession("{directory}/model.onnx")',
            "print([i.name for i in session.get_inputs()])  # feed these, as numpy arrays, to session.run",
            "```",
        ]
    if f"{directory}/model.pt" in files:
        lines += [
            "```python",
            "import torch",
            f'module = torch.jit.load("{directory}/model.pt")  # call it with the tensors it was traced with',
            "```",
        ]
    formats = " and ".join(FORMAT_NAMES[name] for name in config.formats)
    lines += [
        "",
        f"<sub>{formats} export of `{config.model_label}` by the hub-exporter GitHub Action"
        + (f" from {config.sha}" if config.sha else "")
        + f". Later runs update this pull request (branch `{config.pr_branch}`).</sub>",
        "",
    ]
    body = "\n".join(lines)
    return body if len(body) <= 65_000 else body[:64_000] + "\n\n… (truncated: the full report is report.md)\n"
