"""Action inputs and runner variables, parsed once into a frozen :class:`ActionConfig`."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from export_action.errors import InputError
from exporter import variants
from exporter.errors import UsageError
from exporter.loading import looks_like_repo_id

#: Files above this go through Git LFS. GitHub's blob API refuses requests from about 25 MB (base64
#: adds a third), and git push refuses files above 100 MiB.
LFS_THRESHOLD_BYTES = 10 * 1024 * 1024
MAX_LFS_THRESHOLD_BYTES = 16 * 1024 * 1024
#: GitHub refuses longer pull request titles.
MAX_TITLE_CHARS = 256
FORMATS = ("onnx", "torchscript")
FORMAT_NAMES = {"onnx": "ONNX", "torchscript": "TorchScript"}
_TRUE, _FALSE = ("true", "True", "TRUE"), ("false", "False", "FALSE")
_SHA = re.compile(r"^[0-9a-f]{40}$")
_REPOSITORY = re.compile(r"^[\w.-]+/[\w.-]+$")
_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


@dataclass(frozen=True, kw_only=True)
class ActionConfig:
    """Everything one run of the action needs, validated."""

    model: str  # what the exporter gets: a folder (relative to the workspace when inside) or a Hub repo id
    model_label: str  # the input as written, for titles and the branch slug
    model_is_local: bool
    revision: str | None = None
    task: str | None = None
    opset: int | None = None
    atol: float | None = None
    rtol: float | None = None
    formats: tuple[str, ...] = FORMATS
    dtypes: tuple[str, ...] = ("fp32",)
    output_dir: Path
    open_pr: bool = True
    pr_branch: str
    pr_title: str
    github_token: str | None = field(default=None, repr=False)
    hf_token: str | None = field(default=None, repr=False)
    fail_on_validation_error: bool = True
    repository: str | None = None
    workspace: Path
    api_url: str = "https://api.github.com"
    output_file: Path | None = None
    summary_file: Path | None = None
    sha: str | None = None
    base_branch: str | None = None
    event_name: str | None = None
    server_url: str = "https://github.com"
    lfs_threshold: int = LFS_THRESHOLD_BYTES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ActionConfig:
        """Parse ``INPUT_*`` (as ``action.yml`` maps them) and the runner's ``GITHUB_*`` variables."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        workspace = Path(get("GITHUB_WORKSPACE") or os.getcwd()).resolve()
        model = get("INPUT_MODEL")
        if model is None:
            raise InputError("input 'model' is required: a checkpoint folder in the repository or a Hub repo id")
        model_path = (workspace / model).resolve()
        is_local = model_path.is_dir()
        if not is_local and not looks_like_repo_id(model):
            raise InputError(
                f"input 'model': {model!r} is neither a folder in the workspace ({workspace}) "
                "nor a Hub repo id like 'org/name'"
            )
        revision = get("INPUT_REVISION")
        if revision and is_local:
            raise InputError(f"input 'revision' applies to Hub repo ids only, but {model!r} is a local folder")
        formats = parse_formats(get("INPUT_FORMATS"))
        slug = slugify(model)
        open_pr = parse_bool("open-pr", get("INPUT_OPEN_PR"), default=True)
        output_dir = (workspace / (get("INPUT_OUTPUT_DIR") or f"exports/{slug}")).resolve()
        title = get("INPUT_PR_TITLE") or default_title(model, formats)
        if len(title) > MAX_TITLE_CHARS:
            raise InputError(f"input 'pr-title' is {len(title)} characters; GitHub allows at most {MAX_TITLE_CHARS}")
        repository = get("GITHUB_REPOSITORY")
        token = get("INPUT_GITHUB_TOKEN")
        if open_pr:
            if not output_dir.is_relative_to(workspace) or output_dir == workspace:
                raise InputError(
                    f"input 'output-dir': {output_dir} must be a folder inside the workspace ({workspace}) "
                    "to be committed in a pull request"
                )
            if repository is None or not _REPOSITORY.match(repository):
                raise InputError(f"GITHUB_REPOSITORY must be 'owner/name' to open a pull request, got {repository!r}")
            if token is None:
                raise InputError("input 'github-token' is empty: it is needed to open a pull request (open-pr: true)")
        if is_local and (
            output_dir == model_path or output_dir in model_path.parents or model_path in output_dir.parents
        ):
            raise InputError(
                f"input 'output-dir': {output_dir} overlaps the checkpoint folder {model_path}; the action never "
                "writes beside or over your files: use a folder of its own (the default is exports/<model slug>)"
            )
        sha = get("GITHUB_SHA")
        if sha is not None and not _SHA.match(sha):
            raise InputError(f"GITHUB_SHA must be a 40-character commit sha, got {sha!r}")
        return cls(
            model=_exporter_model(model_path, workspace) if is_local else model,
            model_label=model,
            model_is_local=is_local,
            revision=revision,
            task=get("INPUT_TASK"),
            opset=parse_opset(get("INPUT_OPSET")),
            atol=parse_atol(get("INPUT_ATOL")),
            rtol=parse_tolerance("rtol", get("INPUT_RTOL")),
            formats=formats,
            dtypes=parse_dtypes(get("INPUT_DTYPES")),
            output_dir=output_dir,
            open_pr=open_pr,
            pr_branch=parse_branch(get("INPUT_PR_BRANCH") or f"exporter/{slug}"),
            pr_title=title,
            github_token=token,
            hf_token=get("INPUT_HF_TOKEN"),
            fail_on_validation_error=parse_bool(
                "fail-on-validation-error", get("INPUT_FAIL_ON_VALIDATION_ERROR"), default=True
            ),
            repository=repository,
            workspace=workspace,
            api_url=(get("GITHUB_API_URL") or "https://api.github.com").rstrip("/"),
            output_file=_optional_path(get("GITHUB_OUTPUT")),
            summary_file=_optional_path(get("GITHUB_STEP_SUMMARY")),
            sha=sha,
            base_branch=get("GITHUB_BASE_REF") or _branch_ref_name(env),
            event_name=get("GITHUB_EVENT_NAME"),
            server_url=(get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/"),
            lfs_threshold=parse_lfs_threshold(get("EXPORT_ACTION_LFS_THRESHOLD_BYTES")),
        )

    @property
    def output_repo_path(self) -> str:
        """``output_dir`` relative to the workspace, with ``/`` separators (its path in the repository)."""
        return self.output_dir.relative_to(self.workspace).as_posix()


def parse_bool(name: str, value: str | None, *, default: bool) -> bool:
    """Booleans the way ``@actions/core`` ``getBooleanInput`` reads them (YAML 1.2 core schema)."""
    if value is None:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise InputError(f"input '{name}': {value!r} is not a boolean; use true or false")


def parse_opset(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        opset = int(value)
    except ValueError:
        raise InputError(f"input 'opset': {value!r} is not an integer (e.g. 18)") from None
    if not 7 <= opset <= 99:
        raise InputError(f"input 'opset': {opset} is out of range (ONNX opsets start at 7)")
    return opset


def parse_atol(value: str | None) -> float | None:
    return parse_tolerance("atol", value)


def parse_tolerance(name: str, value: str | None) -> float | None:
    """``atol`` or ``rtol``: a finite number >= 0, ``None`` when empty (the per-task default)."""
    if value is None:
        return None
    try:
        tolerance = float(value)
    except ValueError:
        raise InputError(f"input '{name}': {value!r} is not a number (e.g. 1e-4)") from None
    if not math.isfinite(tolerance) or tolerance < 0:
        raise InputError(f"input '{name}': {value!r} must be a finite number >= 0")
    return tolerance


def parse_formats(value: str | None) -> tuple[str, ...]:
    if value is None:
        return FORMATS
    names = [part.strip().lower() for part in value.replace("\n", ",").split(",") if part.strip()]
    unknown = [name for name in names if name not in FORMATS]
    if unknown or not names:
        raise InputError(f"input 'formats': {value!r} must be a comma-separated subset of {', '.join(FORMATS)}")
    return tuple(dict.fromkeys(names))


def parse_dtypes(value: str | None) -> tuple[str, ...]:
    """``fp32,q8`` → ``("fp32", "q8")``; empty: fp32 alone. fp32 is always built (the others derive from it)."""
    if value is None:
        return ("fp32",)
    try:
        return variants.parse_dtypes(value.replace("\n", ","))
    except UsageError:
        raise InputError(
            f"input 'dtypes': {value!r} must be a comma-separated subset of {', '.join(variants.DTYPES)}"
        ) from None


def parse_branch(value: str) -> str:
    """Reject branch names git would refuse (a subset of ``git check-ref-format``)."""
    parts = value.split("/")
    if (
        _BAD_REF_CHARS.search(value)
        or ".." in value
        or "@{" in value
        or value == "@"
        or value.endswith(".")
        or any(not part or part.startswith(".") or part.endswith(".lock") for part in parts)
    ):
        raise InputError(f"input 'pr-branch': {value!r} is not a valid git branch name")
    return value


def parse_lfs_threshold(value: str | None) -> int:
    """``EXPORT_ACTION_LFS_THRESHOLD_BYTES``: 0 sends every exported file through Git LFS."""
    if value is None:
        return LFS_THRESHOLD_BYTES
    if not value.isdigit() or int(value) > MAX_LFS_THRESHOLD_BYTES:
        raise InputError(
            f"EXPORT_ACTION_LFS_THRESHOLD_BYTES: {value!r} must be an integer from 0 to {MAX_LFS_THRESHOLD_BYTES} "
            "(GitHub's blob API refuses larger requests)"
        )
    return int(value)


def slugify(model: str) -> str:
    """``./models/Tiny BERT/`` → ``models-tiny-bert``: safe in a branch name and a folder name."""
    slug = re.sub(r"[^a-z0-9_-]+", "-", model.strip().strip("./").lower()).strip("-_")
    if not slug:
        raise InputError(f"input 'model': cannot derive a branch name from {model!r}; set pr-branch")
    return slug


def default_title(model: str, formats: tuple[str, ...]) -> str:
    return f"Export {model} to " + " and ".join(FORMAT_NAMES[name] for name in formats)


def _branch_ref_name(env: Mapping[str, str]) -> str | None:
    """``GITHUB_REF_NAME`` when the run is on a branch (not a tag)."""
    if env.get("GITHUB_REF_TYPE", "branch") != "branch":
        return None
    return env.get("GITHUB_REF_NAME", "").strip() or None


def _exporter_model(path: Path, workspace: Path) -> str:
    """A local checkpoint relative to the workspace (the exporter runs there), so reports name it portably."""
    return path.relative_to(workspace).as_posix() if path.is_relative_to(workspace) else str(path)


def _optional_path(value: str | None) -> Path | None:
    return Path(value) if value else None
