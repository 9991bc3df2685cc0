"""Read what the sandbox wrote — and trust none of it until checked.

The output folder was writable by untrusted code. Only known file names are taken; each must be a
regular file (never a symlink: opened with ``O_NOFOLLOW``), of the size and sha256 the report
states, and under the size limit. ``report.json`` must parse and say ``passed``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import UnsafeOutputError, ValidationFailedError

REPORT_MAX_BYTES = 8 << 20
MARKDOWN_MAX_CHARS = 60_000
# exporter output name → (format it belongs to, folder in the repo)
KNOWN_FILES = {
    "model.onnx": ("onnx", "onnx"),
    "model.onnx.data": ("onnx", "onnx"),
    "model.pt": ("torchscript", "torchscript"),
}


@dataclass(frozen=True)
class CheckedOutput:
    """A passing export: report data and markdown, and verified files keyed by repo path."""

    report: dict[str, Any]
    report_json: bytes
    report_md: str
    files: dict[str, Path]


def read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file that is not a symlink and not larger than ``max_bytes``."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise UnsafeOutputError(f"{path.name}: cannot open as a regular file ({e.strerror})") from e
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeOutputError(f"{path.name} is not a regular file")
        if info.st_size > max_bytes:
            raise UnsafeOutputError(f"{path.name} is {info.st_size} bytes, over the {max_bytes} limit")
        return handle.read(max_bytes + 1)[:max_bytes]


def _sha256_regular(path: Path, max_bytes: int) -> tuple[int, str]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        raise UnsafeOutputError(f"{path.name}: cannot open as a regular file ({e.strerror})") from e
    digest, size = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise UnsafeOutputError(f"{path.name} is not a regular file")
        for block in iter(lambda: handle.read(1 << 20), b""):
            size += len(block)
            if size > max_bytes:
                raise UnsafeOutputError(f"{path.name} is over the {max_bytes} bytes limit")
            digest.update(block)
    return size, digest.hexdigest()


def read_report(output_dir: Path) -> tuple[bytes, dict[str, Any]]:
    """``report.json`` as bytes and data; a missing or malformed report is unsafe output."""
    raw = read_regular(output_dir / "report.json", REPORT_MAX_BYTES)
    try:
        report = json.loads(raw)
    except ValueError as e:
        raise UnsafeOutputError(f"report.json is not JSON: {e}") from e
    if not isinstance(report, dict) or not isinstance(report.get("files", []), list):
        raise UnsafeOutputError("report.json has an unexpected shape")
    return raw, report


def failure_summary(report: dict[str, Any], limit: int = 3) -> str:
    """``onnx batch=3,sequence=7 logits: max_abs_diff 0.2 > atol 0`` for the first failing checks."""
    lines = []
    for fmt in report.get("formats", []):
        for check in fmt.get("checks", []):
            where = f"{fmt.get('format')} " + ",".join(f"{k}={v}" for k, v in (check.get("shape") or {}).items())
            if check.get("error"):
                lines.append(f"{where}: {check['error']}")
            for out in check.get("outputs", []):
                if not out.get("passed"):
                    diff, atol = _number(out.get("max_abs_diff")), _number(out.get("atol"))
                    lines.append(f"{where} {out.get('name')}: max_abs_diff {diff} > atol {atol}")
    more = " …" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more if lines else "no format was validated"


def _number(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)


def check_output(output_dir: Path, *, formats: list[str], prefix: str, max_bytes: int) -> CheckedOutput:
    """Verify a passing export and map its files to repo paths (``onnx/…``, ``torchscript/…``)."""
    raw, report = read_report(output_dir)
    if report.get("status") != "passed":
        raise ValidationFailedError(f"validation failed: {failure_summary(report)}")
    files: dict[str, Path] = {}
    for entry in report.get("files", []):
        name = entry.get("path") if isinstance(entry, dict) else None
        if name not in KNOWN_FILES or KNOWN_FILES[name][0] not in formats:
            continue
        local = output_dir / name
        size, digest = _sha256_regular(local, max_bytes)
        if size != entry.get("bytes") or digest != entry.get("sha256"):
            raise UnsafeOutputError(f"{name} does not match report.json (size or sha256 differs)")
        files[f"{KNOWN_FILES[name][1]}{prefix}/{name}"] = local
    for fmt in formats:
        if not any(KNOWN_FILES[Path(p).name][0] == fmt for p in files):
            raise UnsafeOutputError(f"report.json lists no {fmt} file")
    markdown = read_regular(output_dir / "report.md", REPORT_MAX_BYTES).decode("utf-8", "replace")
    return CheckedOutput(report, raw, markdown[:MARKDOWN_MAX_CHARS], files)
