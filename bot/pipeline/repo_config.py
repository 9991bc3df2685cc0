"""``.export-bot.yaml``: how a repo owner steers the bot, read from the snapshot at the commit.

Example::

    enabled: true            # false: the bot skips this repo
    tasks: [sequence-classification]   # default: the exporter picks the task
    opset: 18
    atol: 1.0e-4
    rtol: 1.0e-4             # per element: |onnx - torch| <= atol + rtol * |torch|
    formats: [onnx, torchscript]
    dtypes: [fp32, q8]       # ONNX variants: fp32, fp16, q8 (model_quantized.onnx), q4; fp32 is always built
    notify_failures: true    # false: no discussion when an export fails

The bot fetches it (at most 64 KB) before any weights, so ``enabled: false`` costs one small download.
"""

from __future__ import annotations

from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import RepoConfigError

FILENAME = ".export-bot.yaml"
MAX_BYTES = 64 * 1024
Format = Literal["onnx", "torchscript"]
_ALL_FORMATS: tuple[Format, ...] = ("onnx", "torchscript")
Dtype = Literal["fp32", "fp16", "q8", "q4"]
#: What transformers.js loads without a ``dtype`` option: fp32 in Node, q8 in browsers (docs/bot.md).
DEFAULT_DTYPES: tuple[Dtype, ...] = ("fp32", "q8")


class RepoConfig(BaseModel):
    """Validated repo configuration; every field has a default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    tasks: list[str] | None = Field(default=None, min_length=1, max_length=8)
    opset: int | None = Field(default=None, ge=14, le=23)  # the exporter's range
    atol: float | None = Field(default=None, ge=0, le=1)
    rtol: float | None = Field(default=None, ge=0, le=1)
    formats: list[Format] = Field(default_factory=lambda: list(_ALL_FORMATS), min_length=1)
    dtypes: list[Dtype] = Field(default_factory=lambda: list(DEFAULT_DTYPES), min_length=1)
    notify_failures: bool = True

    @field_validator("tasks")
    @classmethod
    def _task_names(cls, tasks: list[str] | None) -> list[str] | None:
        for task in tasks or []:
            if not task or not all(c.isalnum() or c in "-_" for c in task):
                raise ValueError(f"task {task!r} is not a task name")
        return list(dict.fromkeys(tasks)) if tasks else tasks

    def task_list(self) -> list[str | None]:
        """The tasks to run; ``[None]`` lets the exporter choose."""
        return list(self.tasks) if self.tasks else [None]


def parse_repo_config(data: bytes | None) -> RepoConfig:
    """Validate the file's bytes (``None``: the repo has none, so the defaults)."""
    if data is None:
        return RepoConfig()
    if len(data) > MAX_BYTES:
        raise RepoConfigError(f"{FILENAME} is larger than {MAX_BYTES} bytes")
    try:
        parsed: Any = yaml.safe_load(data.decode("utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise RepoConfigError(f"{FILENAME} is not valid YAML: {e}") from e
    try:
        return RepoConfig.model_validate(parsed or {})
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'file'}: {err['msg']}" for err in e.errors())
        # An invalid file still says whether its author wants to hear about failures.
        notify = not (isinstance(parsed, dict) and parsed.get("notify_failures") is False)
        raise RepoConfigError(f"{FILENAME} is invalid: {problems}", notify=notify) from e
