"""``python -m exporter.onnx``: the old ``transformers.onnx`` command line and its validation log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from exporter.legacy_cli import build_parser, feature_to_task, main, onnx_path_for, render_log
from exporter.report import FormatResult, OutputCheck, Report, ShapeCheck

OLD_FEATURES = (
    "default",
    "default-with-past",
    "masked-lm",
    "causal-lm",
    "causal-lm-with-past",
    "seq2seq-lm",
    "seq2seq-lm-with-past",
    "sequence-classification",
    "token-classification",
    "question-answering",
    "image-classification",
)


def run_legacy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter.onnx", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )


@pytest.mark.slow
def test_distilbert_sequence_classification_prints_the_old_log(checkpoint_factory, tmp_path: Path) -> None:
    checkpoint = checkpoint_factory("distilbert", "sequence-classification")
    out = tmp_path / "out"
    result = run_legacy(
        "--model", str(checkpoint), "--feature", "sequence-classification", "--framework", "pt", str(out)
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    start = lines.index("Validating ONNX model...")
    block = lines[start : start + 5]
    assert block[1] == "\t-[✓] ONNX model output names match reference model ({'logits'})"
    assert block[2] == '\t- Validating ONNX Model output "logits":'
    assert re.fullmatch(r"\t\t-\[✓\] \(2, 2\) matches \(2, 2\)", block[3])
    assert re.fullmatch(r"\t\t-\[✓\] all values close \(atol: [0-9.e-]+\)", block[4])
    assert lines.count("Validating ONNX model...") == 2  # one block per validated shape
    assert "\t\t-[✓] (3, 2) matches (3, 2)" in lines
    assert lines[-1] == f"All good, model saved at: {(out / 'model.onnx').as_posix()}"
    assert (out / "model.onnx").is_file() and (out / "report.json").is_file()
    assert not (out / "model.pt").exists()  # the old tool wrote ONNX only


def test_parser_takes_every_old_argument(tmp_path: Path) -> None:
    argv = [
        "-m",
        "bert-base-uncased",
        "--feature",
        "masked-lm",
        "--opset",
        "17",
        "--atol",
        "1e-5",
        "--framework",
        "pt",
        "--cache_dir",
        str(tmp_path),
        "--preprocessor",
        "tokenizer",
        "--export_with_transformers",
        "out",
    ]
    args = build_parser().parse_args(argv)
    assert (args.model, args.feature, args.opset, args.atol, args.output) == (
        "bert-base-uncased",
        "masked-lm",
        17,
        1e-5,
        Path("out"),
    )


@pytest.mark.parametrize("feature", OLD_FEATURES)
def test_old_features_map_to_tasks(feature: str) -> None:
    assert feature_to_task(feature) == feature


def test_unknown_feature_and_old_framework_exit_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", str(tmp_path), "--feature", "next-sentence-prediction", str(tmp_path / "out")]) == 4
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: feature 'next-sentence-prediction' is not supported") and stderr.count("\n") == 1
    assert main(["--model", str(tmp_path), "--framework", "tf", str(tmp_path / "out")]) == 2
    assert "TensorFlow" in capsys.readouterr().err
    assert main(["--model", str(tmp_path), "--opset", "11", str(tmp_path / "out")]) == 2
    assert "Opset 11 is not sufficient" in capsys.readouterr().err


def test_output_rule_is_the_old_one(tmp_path: Path) -> None:
    assert onnx_path_for(tmp_path / "new") == tmp_path / "new" / "model.onnx"
    existing = tmp_path / "model.onnx"
    existing.write_bytes(b"")
    assert onnx_path_for(existing) == existing


def _report(outputs: list[OutputCheck], error: str | None = None) -> Report:
    check = ShapeCheck(shape={"batch_size": 3, "sequence_length": 11}, outputs=outputs, passed=False, error=error)
    return Report(
        model="m",
        revision=None,
        model_type="distilbert",
        architecture="DistilBertForSequenceClassification",
        task="sequence-classification",
        opset=18,
        export_shape={"batch_size": 2, "sequence_length": 16},
        shapes=[check.shape],
        formats=[FormatResult(format="onnx", file="model.onnx", checks=[check])],
    )


def test_failed_validation_renders_the_old_failure_lines() -> None:
    report = _report(
        [
            OutputCheck(
                name="start_logits",
                shape=[3, 11],
                reference_shape=[3, 11],
                max_abs_diff=0.25,
                max_rel_diff=0.1,
                atol=1e-4,
                passed=False,
            ),
            OutputCheck(
                name="end_logits",
                shape=[3, 12],
                reference_shape=[3, 11],
                max_abs_diff=float("inf"),
                max_rel_diff=float("inf"),
                atol=1e-4,
                passed=False,
            ),
        ]
    )
    lines = render_log(report, Path("out/model.onnx"))
    assert lines[:2] == [
        "Validating ONNX model...",
        "\t-[✓] ONNX model output names match reference model ({'end_logits', 'start_logits'})",
    ]
    assert "\t\t-[x] values not close enough (atol: 0.0001)" in lines
    assert "\t\t-[x] shape (3, 12) doesn't match (3, 11)" in lines
    assert not any(line.startswith("All good") for line in lines)
    errors = [line for line in lines if line.startswith("ValueError: ")]
    assert len(errors) == 2  # every failing output, not only the first
    assert "Got max absolute difference of: 0.25" in errors[0]
