"""The action's steps: export → job summary → (pull request) → step outputs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from export_action import gha
from export_action.config import FORMAT_NAMES, ActionConfig
from export_action.errors import ValidationGateError
from export_action.export import ExportResult, run_exporter
from export_action.lfs import lfs_url
from export_action.manifest import MANIFEST_NAME, Manifest, check_owned
from export_action.publish import Blob, PublishRequest, PullRequestResult, connect, prepare_blobs, publish

#: The exported files are committed with the human-readable report; ``report.json`` (with timings)
#: stays in the workspace so that an unchanged export makes an unchanged tree.
COMMITTED_REPORT = "report.md"
#: Events whose checkout is a temporary merge commit: export and validate, but propose nothing.
_MERGE_CHECKOUT_EVENTS = ("pull_request", "merge_group")
_SHA = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True, kw_only=True)
class ActionOutcome:
    export: ExportResult
    pull_request: PullRequestResult | None


def run(config: ActionConfig) -> ActionOutcome:
    """Run every step; raises :class:`ValidationGateError` last, after the summary and outputs."""
    check_local_output_dir(config)
    with gha.group(f"Export {config.model_label}"):
        result = run_exporter(config)
    return conclude(config, result)


def check_local_output_dir(config: ActionConfig) -> None:
    """Refuse (before the exporter cleans it) an output folder in the checkout holding files no run wrote."""
    folder = config.output_dir
    if not folder.exists():
        return
    if not folder.is_dir():
        check_owned("in the workspace", config.output_repo_path, [""], None, local=True)
    manifest_path = folder / MANIFEST_NAME
    manifest = Manifest.from_json(manifest_path.read_bytes()) if manifest_path.is_file() else None
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()]
    check_owned("in the workspace", config.output_repo_path, names, manifest, local=True)


def conclude(config: ActionConfig, result: ExportResult) -> ActionOutcome:
    """Everything after the export: summary, outputs, the pull request, and the validation verdict."""
    report_md = result.report_md.read_text(encoding="utf-8")
    gha.append_summary(config.summary_file, report_md)
    outputs = {"status": result.status, "report-path": str(result.report_json)}
    if not config.model_is_local and result.revision and _SHA.match(result.revision):
        outputs["hub-revision"] = result.revision  # keys the Hugging Face cache action.yml saves
    gha.set_outputs(config.output_file, outputs)
    pull = None
    if result.status == "passed":
        request = publish_request(config, result, report_md)
        blobs = prepare_blobs(request)
        for name in (MANIFEST_NAME, ".gitattributes"):  # the checkout mirrors what the commit holds
            if name in blobs:
                content = blobs[name].content
                assert isinstance(content, bytes)
                (result.output_dir / name).write_bytes(content)
        if config.open_pr:
            pull = open_pull_request(config, request, blobs)
    gha.set_outputs(
        config.output_file,
        {
            "pr-url": pull.url if pull else "",
            "pr-number": str(pull.number) if pull else "",
            "operation": pull.operation if pull else "none",
            "head-sha": pull.head_sha if pull else "",
        },
    )
    if result.status == "failed":
        error = ValidationGateError(result.report_json, list(result.failures))
        if config.fail_on_validation_error:
            raise error
        gha.annotate("warning", f"{error} (fail-on-validation-error is false)")
        gha.append_summary(config.summary_file, "\nValidation failed: no pull request was opened or updated.\n")
    return ActionOutcome(export=result, pull_request=pull)


def open_pull_request(
    config: ActionConfig, request: PublishRequest, blobs: Mapping[str, Blob]
) -> PullRequestResult | None:
    """Commit the files (large ones through Git LFS) and open or update the pull request."""
    if config.event_name in _MERGE_CHECKOUT_EVENTS:
        gha.annotate(
            "warning",
            f"open-pr is ignored on {config.event_name} events (the checkout is a temporary merge commit); "
            "run on push or workflow_dispatch to get a pull request",
        )
        return None
    assert config.github_token is not None  # checked by ActionConfig.from_env when open_pr
    pull = publish(connect(config.api_url, config.github_token), request, config.github_token, blobs)
    if pull is None:
        print(f"{config.pr_branch}: the base commit already has this export, no pull request needed", flush=True)
        gha.append_summary(config.summary_file, "\nThe base commit already has this export: no pull request.\n")
        return None
    print(f"Pull request #{pull.number} {pull.operation}: {pull.url}", flush=True)
    gha.append_summary(config.summary_file, f"\nPull request [#{pull.number}]({pull.url}) {pull.operation}.\n")
    return pull


def publish_request(config: ActionConfig, result: ExportResult, report_md: str) -> PublishRequest:
    names = dict.fromkeys([*result.files, COMMITTED_REPORT])
    files = {name: result.output_dir / name for name in names}
    return PublishRequest(
        repository=config.repository or "",
        base_branch=config.base_branch,
        base_sha=config.sha,
        branch=config.pr_branch,
        title=config.pr_title,
        body=pull_request_body(config, report_md, files),
        message=config.pr_title,
        directory=config.output_repo_path,
        files=files,
        lfs_threshold=config.lfs_threshold,
        lfs_url=lfs_url(config.server_url, config.repository or ""),
    )


def pull_request_body(config: ActionConfig, report_md: str, files: dict[str, Path]) -> str:
    """The report, then how to load each exported format."""
    directory = config.output_repo_path
    lines = [report_md.rstrip(), "", "---", "", "**Use the exported files**", ""]
    if "model.onnx" in files:
        lines += [
            "```python",
            "import onnxruntime as ort",
            f'session = ort.InferenceSession("{directory}/model.onnx")',
            "print([i.name for i in session.get_inputs()])  # feed these, as numpy arrays, to session.run",
            "```",
        ]
    if "model.pt" in files:
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
