"""Title and description of the bot's pull request."""

from __future__ import annotations

from bot.hub import marker
from bot.pipeline.repo_config import FILENAME

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
        "sets `tasks`, `opset`, `atol` and `formats`.",
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
