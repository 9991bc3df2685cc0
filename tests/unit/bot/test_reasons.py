"""The exporter's refusals reworded for model authors: no command-line advice, something they can do.

The messages come from the exporter's own functions (and torch's loader), not copies, so a change of
wording upstream shows here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.pipeline.reasons import REFUSALS, author_sentence, validation_sentence
from bot.pipeline.sandboxed_export import ExportLimits, failure
from bot.sandbox import SandboxResult
from exporter.errors import ExporterError, first_line
from tests.support.hostile import hostile_pickle

CLI_ADVICE = ("--trust-remote-code", "--spec", "--task", "exporter features", "trust the source", "two options")


def exporter_message(call: object) -> tuple[int, str]:
    """The exit code and stderr line the exporter CLI prints for the error ``call()`` raises."""
    with pytest.raises(ExporterError) as error:
        call()  # type: ignore[operator]
    return error.value.exit_code, f"error: {first_line(error.value)}"


def config_dir(tmp_path: Path, **config: object) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def assert_for_authors(sentence: str, *expected: str) -> None:
    for advice in CLI_ADVICE:
        assert advice not in sentence, sentence
    for text in expected:
        assert text in sentence, sentence


def test_remote_code(tmp_path: Path) -> None:
    from exporter.loading import load_config

    path = config_dir(tmp_path, model_type="bert", auto_map={"AutoModel": "modeling.MyModel"})
    code, line = exporter_message(lambda: load_config(path))
    assert "--trust-remote-code" in line  # what a terminal user reads
    assert_for_authors(author_sentence(code, line), "never runs a repo's code", "safetensors", "without `auto_map`")


def test_unknown_model_type(tmp_path: Path) -> None:
    from exporter.loading import load_config

    code, line = exporter_message(lambda: load_config(config_dir(tmp_path, model_type="florb")))
    assert_for_authors(author_sentence(code, line), "model type 'florb' is not one the exporter supports")


def test_unsupported_model_type() -> None:
    from exporter.specs import get_spec

    code, line = exporter_message(lambda: get_spec("florb"))
    assert_for_authors(author_sentence(code, line), "model type 'florb' is not one the exporter supports")


def test_task_not_inferable_and_unknown_task() -> None:
    from exporter.tasks import get_task, infer_task

    code, line = exporter_message(lambda: infer_task("bert", ["BertMystery"], ("masked-lm",)))
    assert_for_authors(author_sentence(code, line), "cannot tell which task BertMystery is for", "tasks: [")
    code, line = exporter_message(lambda: get_task("summon"))
    assert_for_authors(author_sentence(code, line), "'summon' in the `tasks` of .export-bot.yaml")


def test_pickled_weights(tmp_path: Path) -> None:
    """torch's own refusal, as the exporter wraps it ("cannot load the weights in …: Weights only load failed…")."""
    import torch

    path = tmp_path / "pytorch_model.bin"
    path.write_bytes(hostile_pickle("raise SystemExit('the payload must never run')"))
    with pytest.raises(Exception) as error:
        torch.load(path, weights_only=True)
    line = f"error: cannot load the weights in {tmp_path}: \x1b[1m{first_line(error.value)}\x1b[0m"
    assert "trust the source" in line
    assert_for_authors(author_sentence(3, line, str(tmp_path)), "pickle", "safetensors")


def test_snapshot_path_is_not_shown(tmp_path: Path) -> None:
    line = f"error: cannot load the weights in {tmp_path}: size mismatch for classifier.weight"
    sentence = author_sentence(3, line, str(tmp_path))
    assert str(tmp_path) not in sentence and "size mismatch for classifier.weight" in sentence
    unknown = author_sentence(
        70, f"error: internal error reading {tmp_path}/x; pass --debug for details", str(tmp_path)
    )
    assert unknown == "error: internal error reading the checkpoint/x"


def test_every_refusal_has_a_sentence_that_formats() -> None:
    for refusal in REFUSALS:
        groups = refusal.pattern.groups
        text = refusal.sentence.format(*(f"<{i}>" for i in range(groups)))
        assert_for_authors(text)
        assert all(f"<{i}>" in text for i in range(groups)), refusal.sentence


def test_sandbox_failures_become_job_errors_for_authors(tmp_path: Path) -> None:
    limits = ExportLimits(timeout=1800, memory_bytes=1 << 34, max_file_bytes=1 << 30, threads=2)

    def result(code: int, stderr: str, timed_out: bool = False) -> SandboxResult:
        return SandboxResult(code, "", stderr, timed_out, 1.0)

    remote = failure(
        result(4, "error: x ships its own model code (auto_map); pass --trust-remote-code"), tmp_path, limits
    )
    assert remote.author_facing and remote.reason.startswith("unsupported: this checkpoint ships its own model code")
    timeout = failure(result(-9, "", timed_out=True), tmp_path, limits)
    assert timeout.reason.startswith("export timed out after 1800 s") and timeout.author_facing
    killed = failure(result(-9, "MemoryError"), tmp_path, limits)
    assert "killed by SIGKILL" in killed.reason
    assert "pass --" not in validation_sentence("onnx logits: max_abs_diff 0.5 > atol 0")
