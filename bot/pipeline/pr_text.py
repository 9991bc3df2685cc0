"""What the bot writes on the Hub: its pull request, and its discussion when an export failed."""

from __future__ import annotations

from bot.hub import failure_marker, marker
from bot.pipeline.repo_config import FILENAME

DETAILS_MAX_CHARS = 50_000

_FORMAT_NAMES = {"onnx": "ONNX", "torchscript": "TorchScript"}


def pr_title(formats: list[str], sha: str) -> str:
    names = " and ".join(_FORMAT_NAMES.get(f, f) for f in formats)
    return f"Add {names} export (validated) for {sha[:7]}"


def pr_description(
    *, repo: str, sha: str, reports: list[str], paths: list[str], onnx_paths: list[str], pr_ref: str
) -> str:
    """Marker line, the files, the exporter's markdown report(s), a usage snippet and how to opt out."""
    parts = [
        marker(sha),
        "",
        f"This PR adds exported files for commit `{sha}`, validated against eager PyTorch.",
        "",
    ]
    parts += ["Files: " + ", ".join(f"`{path}`" for path in paths), ""]
    parts += [report.strip() + "\n" for report in reports]
    if onnx_paths:
        parts += [_usage(repo, onnx_paths[0], pr_ref)]
    parts += [
        "### Opt out",
        f"Add `{FILENAME}` with `enabled: false` at the repo root, or delete the webhook. The same file "
        "sets `tasks`, `opset`, `atol`, `rtol`, `formats` and `dtypes`.",
        "",
    ]
    return "\n".join(parts)


def usage_comment(repo: str, onnx_path: str, num: int) -> str:
    """Posted when the PR got another number than the description assumed."""
    snippet = _usage(repo, onnx_path, f"refs/pr/{num}")
    return f"The snippet above names the wrong ref; this PR is `refs/pr/{num}`:\n\n{snippet}"


def _usage(repo: str, onnx_path: str, pr_ref: str) -> str:
    return f"""### Try it before merging
```python
import onnxruntime as ort
from huggingface_hub import hf_hub_download

path = hf_hub_download("{repo}", "{onnx_path}", revision="{pr_ref}")
session = ort.InferenceSession(path)
print([i.name for i in session.get_inputs()])
```
"""


def failure_title(sha: str) -> str:
    """Names the short commit id: the bot finds its discussion for a commit by it."""
    return f"Export bot: the export of {sha[:7]} failed"


def failure_description(*, sha: str, reason: str, details: str | None) -> str:
    """Marker line, why the export failed and what the author can do, the exporter's report, how to opt out."""
    parts = [
        failure_marker(sha),
        "",
        f"The export bot could not export commit `{sha}`, so it opened no pull request.",
        "",
        f"**Why:** {reason}",
        "",
    ]
    if details:
        report = details.strip()
        if len(report) > DETAILS_MAX_CHARS:
            report = report[:DETAILS_MAX_CHARS] + "\n\n… (cut)"
        parts += ["<details><summary>The exporter's report</summary>", "", report, "", "</details>", ""]
    parts += [
        "The bot tries again on every new commit; when one exports, it opens a pull request and closes "
        "this discussion.",
        "",
        "### Opt out",
        f"Add `notify_failures: false` to `{FILENAME}` at the repo root to get no such discussion, or "
        "`enabled: false` to stop the bot on this repo.",
        "",
    ]
    return "\n".join(parts)
