"""The CLI as a user runs it: a subprocess, its exit code, its stdout and stderr."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.errors import (
    CheckpointError,
    ExportFailedError,
    HubError,
    SpecError,
    UnsupportedError,
    ValidationFailedError,
)


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_exit_codes_are_distinct() -> None:
    codes = [
        ValidationFailedError.exit_code,
        CheckpointError.exit_code,
        UnsupportedError.exit_code,
        ExportFailedError.exit_code,
        HubError.exit_code,
        SpecError.exit_code,
    ]
    assert len(set(codes)) == len(codes) and 0 not in codes and 2 not in codes


@pytest.mark.slow
def test_export_passes_with_json(checkpoint_factory, tmp_path: Path) -> None:
    checkpoint = checkpoint_factory("bert", "sequence-classification")
    result = run("export", "--model", str(checkpoint), "--task", "sequence-classification", "--json", str(tmp_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # stdout holds the report and nothing else
    assert report["status"] == "passed"
    assert {fmt["format"] for fmt in report["formats"]} == {"onnx", "torchscript"}
    assert len({json.dumps(s) for s in report["shapes"]}) == 2
    assert (tmp_path / "model.onnx").is_file() and (tmp_path / "model.pt").is_file()
    assert json.loads((tmp_path / "report.json").read_text()) == report


@pytest.mark.slow
def test_zero_tolerance_fails_validation(checkpoint_factory, tmp_path: Path) -> None:
    checkpoint = checkpoint_factory("bert", "sequence-classification")
    result = run("export", "--model", str(checkpoint), "--atol", "0", "--rtol", "0", "--formats", "onnx", str(tmp_path))
    assert result.returncode == 1
    assert "max_abs_diff" in result.stderr
    assert json.loads((tmp_path / "report.json").read_text())["status"] == "failed"


def test_missing_config_exit_code(tmp_path: Path) -> None:
    result = run("export", "--model", str(tmp_path), "--quiet", str(tmp_path / "out"))
    assert result.returncode == CheckpointError.exit_code
    assert "no config.json" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_traceback(tmp_path: Path) -> None:
    result = run("export", "--model", str(tmp_path), "--debug", str(tmp_path / "out"))
    assert result.returncode == CheckpointError.exit_code
    assert "Traceback" in result.stderr


def test_unsupported_task_exit_code(checkpoint_factory, tmp_path: Path) -> None:
    checkpoint = checkpoint_factory("vit", "image-classification")
    result = run("export", "--model", str(checkpoint), "--task", "masked-lm", str(tmp_path))
    assert result.returncode == UnsupportedError.exit_code
    assert "no 'masked-lm' head" in result.stderr


def test_bad_format_is_a_usage_error(checkpoint_factory, tmp_path: Path) -> None:
    checkpoint = checkpoint_factory("bert", "sequence-classification")
    result = run("export", "--model", str(checkpoint), "--formats", "tflite", str(tmp_path))
    assert result.returncode == 2
    assert "unknown format(s) tflite" in result.stderr


def test_bad_option_value_is_a_usage_error(tmp_path: Path) -> None:
    result = run("export", "--model", str(tmp_path), "--opset", "3", str(tmp_path))
    assert result.returncode == 2


def test_hub_unreachable_exit_code(tmp_path: Path) -> None:
    result = run("export", "--model", "someone/some-model", str(tmp_path), env={"HF_ENDPOINT": "http://127.0.0.1:9"})
    assert result.returncode == HubError.exit_code, result.stderr
    assert "someone/some-model" in result.stderr


def test_features() -> None:
    result = run("features", "distilbert")
    assert result.returncode == 0
    assert result.stdout.strip() == (
        "distilbert: default, masked-lm, sequence-classification, token-classification, question-answering, "
        "multiple-choice"
    )
    unknown = run("features", "nope")
    assert unknown.returncode == UnsupportedError.exit_code


def test_features_of_a_type_that_cannot_be_exported_gives_the_reason() -> None:
    from exporter.specs import get_spec

    result = run("features", "longformer")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"longformer: every task not exportable: {get_spec('longformer').not_exportable}"


@pytest.mark.slow
@pytest.mark.heavy
def test_cache_dir_reuses_the_graph_of_the_last_export(tmp_path: Path) -> None:
    from exporter.run import ExportRequest, run_export
    from exporter.sample import build_sample_checkpoint, reweight_checkpoint

    checkpoint = reweight_checkpoint(build_sample_checkpoint(tmp_path / "checkpoint", "bert"), seed=1)
    cache = tmp_path / "cache"
    run_export(ExportRequest(model=str(checkpoint), output_dir=tmp_path / "first", cache_dir=cache))
    reweight_checkpoint(checkpoint, seed=2)
    result = run("export", "--model", str(checkpoint), "--cache-dir", str(cache), str(tmp_path / "second"))
    assert result.returncode == 0, result.stderr
    assert "graph cache: weights written into the graph of" in result.stderr
    report = json.loads((tmp_path / "second" / "report.json").read_text())
    assert report["status"] == "passed" and report["graph_cache"]["reused_from"] == str(checkpoint)
