"""User specs for unknown architectures: ``examples/custom_spec.py`` end to end, and malformed spec files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from exporter import ExportRequest, register_spec, run_export
from exporter.errors import SpecError
from exporter.sample import TINY_CONFIGS
from exporter.specs import SPECS, get_spec
from exporter.user_spec import load_spec

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "custom_spec.py"
TINY_MEGATRON = TINY_CONFIGS["bert"]  # megatron-bert takes the same small BERT-style sizes


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    """Specs registered by a test do not leak into the others."""
    saved = dict(SPECS)
    yield
    SPECS.clear()
    SPECS.update(saved)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )


def _tiny_megatron(path: Path) -> Path:
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.for_model(
        "megatron-bert", architectures=["MegatronBertForSequenceClassification"], **TINY_MEGATRON
    )
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_config(config).save_pretrained(path)
    return path


@pytest.mark.slow
def test_megatron_example_exports_end_to_end(tmp_path: Path) -> None:
    assert "megatron-bert" not in SPECS  # the point of the example: the exporter does not know it
    checkpoint = _tiny_megatron(tmp_path / "megatron-bert")
    out = tmp_path / "out"
    result = run_cli(
        "export", "--spec", f"{EXAMPLE}:MEGATRON", "--model", str(checkpoint), "--task", "sequence-classification",
        "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert (report["status"], report["model_type"], report["task"]) == (
        "passed",
        "megatron-bert",
        "sequence-classification",
    )
    assert [fmt["format"] for fmt in report["formats"]] == ["onnx", "torchscript"]
    assert all(fmt["passed"] for fmt in report["formats"])


def test_fully_custom_example_exports(tmp_path: Path) -> None:
    spec = load_spec(f"{EXAMPLE}:SENSOR")
    config = spec.model_class.config_class()  # type: ignore[union-attr]
    torch.manual_seed(0)
    spec.model_class(config).save_pretrained(tmp_path / "sensor")  # type: ignore[misc]
    request = ExportRequest(model=str(tmp_path / "sensor"), output_dir=tmp_path / "out", task="sequence-classification")
    report = run_export(request)
    assert report.status == "passed"
    assert report.architecture == "SensorClassifier"


def test_register_spec_api() -> None:
    spec = load_spec(f"{EXAMPLE}:MEGATRON")
    assert get_spec("megatron-bert") is spec
    with pytest.raises(SpecError, match="exists"):
        register_spec(spec)  # built-in and registered specs are not shadowed by accident
    assert register_spec(spec, replace=True) is spec


def test_malformed_spec_file_exits_7_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad_spec.py"
    bad.write_text("BROKEN = {'model_type': 'megatron-bert'}  # a dict, not an exporter.ModelSpec\n")
    result = run_cli("export", "--spec", f"{bad}:BROKEN", "--model", str(tmp_path), str(tmp_path / "out"))
    assert result.returncode == SpecError.exit_code == 7
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "expected exporter.ModelSpec" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("source", "reference", "message"),
    [
        ("SPEC = (\n", "{file}:SPEC", "importing .* failed: SyntaxError"),
        ("import not_a_module_anywhere\n", "{file}:SPEC", "importing .* failed: ModuleNotFoundError"),
        ("OTHER = 1\n", "{file}:SPEC", "defines no 'SPEC'"),
        ("SPEC = 1\n", "{file}", "takes path.py:Name"),
        ("SPEC = 1\n", "{missing}:SPEC", "not found"),
    ],
    ids=["syntax-error", "import-error", "no-such-name", "no-name", "no-file"],
)
def test_malformed_spec_references(tmp_path: Path, source: str, reference: str, message: str) -> None:
    spec_file = tmp_path / "user_spec.py"
    spec_file.write_text(source)
    with pytest.raises(SpecError, match=message) as caught:
        load_spec(reference.format(file=spec_file, missing=tmp_path / "missing.py"))
    assert caught.value.exit_code == 7
    assert "\n" not in str(caught.value)


def test_spec_with_malformed_fields_is_refused(tmp_path: Path) -> None:
    spec_file = tmp_path / "fields_spec.py"
    spec_file.write_text("from exporter import ModelSpec\nSPEC = ModelSpec(model_type='x', inputs=('input_ids',))\n")
    with pytest.raises(SpecError):
        load_spec(f"{spec_file}:SPEC")
