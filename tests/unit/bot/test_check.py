"""Reading the sandbox output: only verified regular files, never through a symlink."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.errors import ExportMismatchError, UnsafeOutputError
from bot.pipeline.check import check_output
from tests.support.outputs import write_output


def check(out: Path, formats: tuple[str, ...] = ("onnx", "torchscript")) -> object:
    return check_output(out, formats=list(formats), prefix="", max_bytes=1 << 20)


def test_passing_output_maps_to_repo_paths(tmp_path: Path) -> None:
    write_output(tmp_path)
    result = check(tmp_path)
    assert set(result.files) == {"onnx/model.onnx", "torchscript/model.pt"}  # type: ignore[attr-defined]
    assert result.report_md == "### report"  # type: ignore[attr-defined]


def test_failed_validation_is_reported_with_the_numbers(tmp_path: Path) -> None:
    write_output(tmp_path, status="failed")
    with pytest.raises(ExportMismatchError, match=r"onnx batch_size=3 logits: max_abs_diff 0.5 > atol 0"):
        check(tmp_path)


def test_symlink_to_a_secret_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("hf_secret")
    out = tmp_path / "out"
    write_output(out)
    (out / "model.onnx").unlink()
    os.symlink(secret, out / "model.onnx")
    with pytest.raises(UnsafeOutputError, match="regular file"):
        check(out)


def test_symlinked_report_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_output(out)
    (out / "report.json").rename(tmp_path / "elsewhere.json")
    os.symlink(tmp_path / "elsewhere.json", out / "report.json")
    with pytest.raises(UnsafeOutputError):
        check(out)


def test_hash_mismatch_is_refused(tmp_path: Path) -> None:
    write_output(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"pt-bytez")
    with pytest.raises(UnsafeOutputError, match="does not match"):
        check(tmp_path)


def test_missing_format_is_refused(tmp_path: Path) -> None:
    write_output(tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    report["files"] = report["files"][:1]
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(UnsafeOutputError, match="no torchscript file"):
        check(tmp_path)
    assert set(check(tmp_path, ("onnx",)).files) == {"onnx/model.onnx"}  # type: ignore[attr-defined]


def test_garbage_report_is_refused(tmp_path: Path) -> None:
    write_output(tmp_path)
    (tmp_path / "report.json").write_text("[1, 2")
    with pytest.raises(UnsafeOutputError, match="not JSON"):
        check(tmp_path)


def test_a_file_the_exporter_never_writes_is_refused(tmp_path: Path) -> None:
    write_output(tmp_path)
    report = json.loads((tmp_path / "report.json").read_text())
    report["files"].append({"path": "../../etc/passwd", "bytes": 1, "sha256": "0" * 64})
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(UnsafeOutputError, match="not a file the exporter writes"):
        check(tmp_path)
