"""Read what the sandbox wrote — and trust none of it until checked.

The output folder was writable by untrusted code. Only known file names are taken; each must be a
regular file (never a symlink: opened with ``O_NOFOLLOW``), of the size and sha256 the report
states, and under the size limit. ``report.json`` must parse and say ``passed``.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ExportMismatchError, UnsafeOutputError
from bot.pipeline.reasons import validation_sentence
from exporter.errors import ReportError
from exporter.files import FORMAT_FOLDERS, format_of, is_graph
from exporter.report import Report

REPORT_MAX_BYTES = 8 << 20
MARKDOWN_MAX_CHARS = 60_000


@dataclass(frozen=True)
class CheckedOutput:
    """A passing export: the report, its raw JSON and markdown, and verified files keyed by repo path."""

    report: Report
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


def read_report(output_dir: Path) -> tuple[bytes, Report]:
    """``report.json`` as bytes and as a :class:`Report`; a missing or malformed report is unsafe output."""
    raw = read_regular(output_dir / "report.json", REPORT_MAX_BYTES)
    try:
        return raw, Report.from_json(raw)
    except ReportError as e:
        raise UnsafeOutputError(str(e)) from e


def check_output(output_dir: Path, *, formats: list[str], prefix: str, max_bytes: int) -> CheckedOutput:
    """Verify a passing export and map its files to repo paths (``onnx/…``, ``torchscript/…``).

    Every file the report lists must be one the exporter writes (:mod:`exporter.files`), of a
    requested format, and match its size and sha256.
    """
    raw, report = read_report(output_dir)
    if report.status != "passed":
        markdown = read_regular(output_dir / "report.md", REPORT_MAX_BYTES).decode("utf-8", "replace")
        reason = f"validation failed: {validation_sentence(report.failure_summary())}"
        raise ExportMismatchError(reason, details=markdown[:MARKDOWN_MAX_CHARS])
    files: dict[str, Path] = {}
    for entry in report.files:
        fmt = format_of(entry.path)
        if fmt is None or fmt not in formats:
            raise UnsafeOutputError(f"report.json lists {entry.path!r}, not a file the exporter writes here")
        local = output_dir / entry.path
        size, digest = _sha256_regular(local, max_bytes)
        if size != entry.bytes or digest != entry.sha256:
            raise UnsafeOutputError(f"{entry.path} does not match report.json (size or sha256 differs)")
        files[f"{FORMAT_FOLDERS[fmt]}{prefix}/{entry.path}"] = local
    for fmt in formats:
        if not any(is_graph(Path(path).name) and format_of(Path(path).name) == fmt for path in files):
            raise UnsafeOutputError(f"report.json lists no {fmt} file")
    markdown = read_regular(output_dir / "report.md", REPORT_MAX_BYTES).decode("utf-8", "replace")
    return CheckedOutput(report, raw, markdown[:MARKDOWN_MAX_CHARS], files)
